#!/bin/bash
# trace.sh BIN OUT: half-peak run (10s) with a 4 s execution trace from the middle of hot_read_half_peak
BIN=$1; OUT=$2
SEKISHO_PPROF=1 /tmp/bench-main -bin $BIN -records 1000000 -snapshot /work/snap-s10 -duration 10s -only floor,hot_read,hot_read_half_peak -out $OUT > $OUT.log 2>&1 &
BP=$!
for i in $(seq 120); do
  M=$(ps -eo args | grep -o -- '--metrics-addr [0-9.:]*' | head -1 | awk '{print $2}')
  [ -n "$M" ] && break; sleep 0.5
done
# wait for half peak: the request log of the server gives the rate; just wait for hot_read to end
S=$(date +%s)
while [ $(( $(date +%s) - S )) -lt 120 ]; do
  if grep -q '"route":"/v1/collections/{c}/records/{id}"' $OUT/serve.log 2>/dev/null; then break; fi; sleep 0.5; done
sleep 16   # hot_read 2+10 s, then half-peak warm-up
curl -s "http://$M/debug/pprof/trace?seconds=4" > $OUT.trace
wait $BP
