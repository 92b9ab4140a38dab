import json, os, sys
for f in sys.argv[1:]:
    d=json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{f}.results.json"))); w=d["workloads"]
    hp=w["hot_read_half_peak"]; fh=w["floor_half_peak"]
    print(f"{f:10s} floor {w['floor']['throughput_rps']:6.0f} hot {w['hot_read']['throughput_rps']:5.0f} ratio {d['hot_read_floor_ratio']:.3f} | half-peak {hp['throughput_rps']:5.0f} rps p50 {hp['p50_ms']:.1f} p99 {hp['p99_ms']:.1f} | floor half p99 {fh['p99_ms']:.1f} | server p99 {hp.get('server_p99_ms','-')}")
