import json, os, sys
for f in sys.argv[1:]:
    try: d=json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{f}.results.json")))
    except Exception as e: print(f, "-"); continue
    w=d["workloads"]; fl=w["floor_tls"]["throughput_rps"]
    m=w["hot_read_mtls"]; h=w["hot_read"]
    print(f"{f:10s} floor {fl:6.0f} | mtls {m['throughput_rps']:5.0f} {m['throughput_rps']/fl:.3f} cpu {1000*m['cpu_s_per_1k']:.0f}µs epc {m.get('events_per_commit',0):4.1f} p50 {m['p50_ms']:.1f} | dpop {h['throughput_rps']:5.0f} {h['throughput_rps']/fl:.3f} cpu {1000*h['cpu_s_per_1k']:.0f}µs epc {h.get('events_per_commit',0):4.1f}")
