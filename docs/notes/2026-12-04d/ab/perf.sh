#!/usr/bin/env bash
/tmp/ab/bench-main2 -bin /tmp/ab/sekisho-main2 -tls -records 1000000 -snapshot /work/snap-s7 -duration 25s -only hot_read_mtls -out /tmp/ab/perf1 > /tmp/ab/perf1.out 2>&1 &
for i in $(seq 1 120); do pid=$(pgrep -f "sekisho-main2 serve" | head -1); [[ -n $pid ]] && break; sleep 0.5; done
echo pid=$pid
sleep 18
perf record -F 999 -g -p $pid -o /tmp/ab/perf1.data -- sleep 8 2>&1 | tail -2
wait
