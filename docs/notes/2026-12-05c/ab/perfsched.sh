#!/bin/bash
BIN=$1; OUT=$2
/tmp/bench-main -bin $BIN -records 1000000 -snapshot /work/snap-s10 -duration 10s -only floor,hot_read,hot_read_half_peak -out $OUT > $OUT.log 2>&1 &
BP=$!
S=$(date +%s)
while [ $(( $(date +%s) - S )) -lt 120 ]; do
  if grep -q '"route":"/v1/collections/{c}/records/{id}"' $OUT/serve.log 2>/dev/null; then break; fi; sleep 0.2; done
sleep 29
cd /tmp && perf sched record -o $OUT.perf -a -- sleep 4 > /dev/null 2>&1
wait $BP
