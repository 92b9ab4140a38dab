#!/usr/bin/env bash
set -u
L=/tmp/ab/log9
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 4 5; do
  for v in main3 dbs; do
    say "start hp $v-$i"
    /tmp/ab/bench-ixf -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s8f -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/h8-$v-$i > /tmp/ab/h8-$v-$i.out 2>&1
    say "end hp $v-$i rc=$?"
  done
done
say done
