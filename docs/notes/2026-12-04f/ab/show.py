import json, os, sys
for f in sys.argv[1:]:
    try: d=json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{f}.results.json")))
    except Exception as e: print(f, "-"); continue
    w=d["workloads"]
    fl=(w.get("floor_tls") or w.get("floor"))["throughput_rps"]
    extra=""
    if "hot_read_mtls" in w: extra=f' mtls/floor {w["hot_read_mtls"]["throughput_rps"]/fl:.3f}'
    print(f"{f:12s}", "  ".join(f'{k}: {v["throughput_rps"]:5.0f} rps p50 {v["p50_ms"]:.1f} p99 {v["p99_ms"]:.1f} {1000*v["cpu_s_per_1k"]:.0f}µs' for k,v in w.items() if k!="import"), f'| dpop/floor {w["hot_read"]["throughput_rps"]/fl:.3f}'+extra)
