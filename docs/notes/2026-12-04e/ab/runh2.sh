#!/usr/bin/env bash
set -u
L=/tmp/ab/logh
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 4 5 6; do
  for v in m nc; do
    say "start h-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/h-$v-$i > /tmp/ab/h-$v-$i.out 2>&1
    say "end h-$v-$i rc=$?"
  done
done
say done
