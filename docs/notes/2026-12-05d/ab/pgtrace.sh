#!/bin/bash
# pgtrace.sh OUT: PostgreSQL 200k half peak with a 10 s execution trace of the server
OUT=$1
SEKISHO_PPROF=1 /tmp/bench-176 -bin /tmp/sek-176 -records 200000 -store "$(cat /tmp/pg14.dsn)" -snapshot /work/pgsnap -duration 10s -only hot_read,hot_read_half_peak -out $OUT > $OUT.log 2>&1 &
BP=$!
for i in $(seq 240); do
  M=$(ps -eo args | grep -v grep | grep -o -- '--metrics-addr [0-9.:]*' | head -1 | awk '{print $2}')
  [ -n "$M" ] && break; sleep 0.5
done
S=$(date +%s)
while [ $(( $(date +%s) - S )) -lt 300 ]; do
  if grep -q '"route":"/v1/collections/{c}/records/{id}"' $OUT/serve.log 2>/dev/null; then break; fi; sleep 0.2; done
sleep 13.5
date -u +%T.%N > $OUT.tracestart
curl -s "http://$M/debug/pprof/trace?seconds=10" > $OUT.trace
wait $BP
