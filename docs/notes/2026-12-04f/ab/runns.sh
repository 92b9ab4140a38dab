#!/usr/bin/env bash
set -u
L=/tmp/ab/logns
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in m ns; do
    say "start ns-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/ns-$v-$i > /tmp/ab/ns-$v-$i.out 2>&1
    say "end ns-$v-$i rc=$?"
  done
done
say done
