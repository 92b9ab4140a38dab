#!/usr/bin/env python3
"""Tabulate the seventh session's A/B runs (results.json of go run ./bench) into results.md."""
import glob, json, os
rows = []
for f in sorted(glob.glob("*.results.json"), key=os.path.getmtime):
    d = json.load(open(f))
    w = d["workloads"]
    name = f.removesuffix(".results.json")
    cells = []
    for k in ("floor_tls", "hot_read", "hot_read_mtls", "floor", "hot_read_half_peak", "floor_half_peak"):
        if k in w:
            v = w[k]
            cells.append(f"{k} {v['throughput_rps']:.0f} rps, p99 {v['p99_ms']:.1f} ms, {1000*v['cpu_s_per_1k']:.0f} µs CPU")
    ratio = ""
    if "floor_tls" in w and "hot_read_mtls" in w:
        ratio = f"{w['hot_read_mtls']['throughput_rps']/w['floor_tls']['throughput_rps']:.3f}"
    dpop = ""
    fl = w.get("floor_tls") or w.get("floor")
    if fl and "hot_read" in w:
        dpop = f"{w['hot_read']['throughput_rps']/fl['throughput_rps']:.3f}"
    rows.append(f"| {name} | {ratio} | {dpop} | {'; '.join(cells)} |")
with open("results.md", "w") as o:
    o.write("| run | hot_read_mtls / floor_tls | hot_read (DPoP) / floor | workloads |\n| --- | ---: | ---: | --- |\n")
    o.write("\n".join(rows) + "\n")
print("\n".join(rows))
