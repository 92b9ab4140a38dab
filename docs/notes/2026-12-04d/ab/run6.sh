#!/usr/bin/env bash
set -u
L=/tmp/ab/log6
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  for v in main2 b128; do
    say "start $v-$i"
    /tmp/ab/bench-main2 -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s7 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/h6-$v-$i > /tmp/ab/h6-$v-$i.out 2>&1
    say "end $v-$i rc=$?"
  done
done
say done
