#!/usr/bin/env bash
set -u
L=/tmp/ab/logy
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3 4; do
  for v in m y1 cd; do
    say "start y-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/y-$v-$i > /tmp/ab/y-$v-$i.out 2>&1
    say "end y-$v-$i rc=$?"
  done
done
say done
