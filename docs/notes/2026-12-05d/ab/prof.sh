#!/bin/bash
# prof.sh BIN OUT: hot_read at 1M (20 s) with an 8 s CPU profile and an 8 s allocation profile from its middle
BIN=$1; OUT=$2
SEKISHO_PPROF=1 /tmp/bench-main -bin $BIN -records 1000000 -snapshot /work/snap -duration 20s -only floor,hot_read -out $OUT > $OUT.log 2>&1 &
BP=$!
for i in $(seq 240); do
  M=$(ps -eo args | grep -v grep | grep -o -- '--metrics-addr [0-9.:]*' | head -1 | awk '{print $2}')
  [ -n "$M" ] && break; sleep 0.5
done
S=$(date +%s)
while [ $(( $(date +%s) - S )) -lt 300 ]; do
  n=$(grep -c '"route":"/v1/collections/{c}/records/{id}"' $OUT/serve.log 2>/dev/null); [ "${n:-0}" -gt 3000 ] && break; sleep 0.5; done
sleep 3
curl -s "http://$M/debug/pprof/profile?seconds=8" > $OUT.cpu &
curl -s "http://$M/debug/pprof/allocs?seconds=8" > $OUT.allocs
wait %1 2>/dev/null
wait $BP
python3 -c "
import json;r=json.load(open('$OUT/results.json'));w=r['workloads']
print('ratio',r.get('hot_read_floor_ratio'),'floor',w['floor']['throughput_rps'],'hot',w['hot_read']['throughput_rps'])"
