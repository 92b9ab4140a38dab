#!/usr/bin/env bash
set -u
L=/tmp/ab/logzh
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 3 4; do
  for v in m cd; do
    say "start zh-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/zh-$v-$i > /tmp/ab/zh-$v-$i.out 2>&1
    say "end zh-$v-$i rc=$?"
  done
done
say done
