#!/usr/bin/env python3
"""The table of results.md from runs/*.json (label: which binary, see results.md)."""
import json, glob, os, sys
labels = dict(l.split(None, 1) for l in open(os.path.join(os.path.dirname(__file__), "labels.txt")).read().splitlines() if l.strip())
print("| run | binary | started (UTC) | load at start | floor_tls req/s | hot_read_mtls req/s | mTLS server CPU ms/read | events/commit | mTLS p99 ms | hot_read_mtls / floor_tls | rounds |")
print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "runs", "*.json")), key=lambda f: json.load(open(f))["started"]):
    r = json.load(open(f)); w = r["workloads"]; n = os.path.basename(f)[:-5]
    if "hot_read_mtls" not in w:
        continue
    m, fl = w["hot_read_mtls"], w["floor_tls"]
    rounds = " ".join("%.3f" % x["hot_read_mtls_floor_ratio"] for x in r.get("rounds") or [])
    print("| %s | %s | %s | %s | %.0f | %.0f | %.3f | %.1f | %.1f | **%.3f** | %s |" % (n, labels.get(n, "?"), r["started"][11:19], r["machine"]["load_avg_at_start"],
          fl["throughput_rps"], m["throughput_rps"], m["cpu_s_per_1k"], m.get("events_per_commit", 0), m["p99_ms"], r["hot_read_mtls_floor_ratio"], rounds))
print()
print("| half-peak run | binary | started (UTC) | load at start | hot_read req/s | half_peak_p99_ms | floor_half_peak p99 ms |")
print("| --- | --- | --- | --- | ---: | ---: | ---: |")
for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "runs", "*.json")), key=lambda f: json.load(open(f))["started"]):
    r = json.load(open(f)); w = r["workloads"]; n = os.path.basename(f)[:-5]
    if "hot_read_half_peak" not in w:
        continue
    print("| %s | %s | %s | %s | %.0f | %.2f | %.2f |" % (n, labels.get(n, "?"), r["started"][11:19], r["machine"]["load_avg_at_start"],
          w["hot_read"]["throughput_rps"], r["half_peak_p99_ms"], w["floor_half_peak"]["p99_ms"]))
