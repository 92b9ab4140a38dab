#!/bin/bash
# hp.sh LABEL BIN [env...] : one half-peak run from the 1M snapshot; prints the key numbers
L=$1; B=$2; shift 2
O=/tmp/hp-$L-$(date +%H%M%S)
env "$@" /tmp/bench-main -bin $B -records 1000000 -snapshot /work/snap -duration ${DUR:-5s} -only floor,hot_read,hot_read_half_peak,floor_half_peak -out $O > $O.log 2>&1
python3 - "$O/results.json" "$L" <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); w=r["workloads"]
def g(k,f): return w[k][f] if k in w else float('nan')
print(f'{sys.argv[2]:10s} floor {g("floor","throughput_rps"):7.0f} hot {g("hot_read","throughput_rps"):6.0f} ratio {r.get("hot_read_floor_ratio",0):.3f} hp p50 {g("hot_read_half_peak","p50_ms"):5.2f} p99 {g("hot_read_half_peak","p99_ms"):6.2f} p999 {g("hot_read_half_peak","p99_9_ms") if "p99_9_ms" in w.get("hot_read_half_peak",{}) else g("hot_read_half_peak","p999_ms"):6.2f} floorhp p99 {g("floor_half_peak","p99_ms"):5.2f} commit p99 hp {w["hot_read_half_peak"].get("commit_p99_ms",0):5.2f} hot {w["hot_read"].get("commit_p99_ms",0):5.2f} rss {r.get("rss_peak_mib",0):.0f}')
PY
