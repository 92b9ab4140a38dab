#!/usr/bin/env bash
set -u
L=/tmp/ab/logl
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 4 5 6; do
  for v in m lg600; do
    say "start l-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/l-$v-$i > /tmp/ab/l-$v-$i.out 2>&1
    say "end l-$v-$i rc=$?"
  done
done
say done
