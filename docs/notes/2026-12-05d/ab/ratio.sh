#!/bin/bash
# ratio.sh LABEL BIN : -rounds 4 -duration 3s floor,hot_read from the 1M snapshot
L=$1; B=$2; shift 2
O=/tmp/rt-$L-$(date +%H%M%S)
env "$@" /tmp/bench-main -bin $B -records 1000000 -snapshot /work/snap -rounds 4 -duration 3s -only floor,hot_read -out $O > $O.log 2>&1
python3 - "$O/results.json" "$L" <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); w=r["workloads"]
rs=[x.get("hot_read_floor_ratio") for x in r.get("rounds",[])]
print(f'{sys.argv[2]:8s} floor {w["floor"]["throughput_rps"]:7.0f} hot {w["hot_read"]["throughput_rps"]:6.0f} cpu/1k {w["hot_read"]["cpu_s_per_1k"]:.3f} ratio {r.get("hot_read_floor_ratio",0):.3f} rounds {rs}')
PY
