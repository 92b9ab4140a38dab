#!/usr/bin/env bash
set -u
L=/tmp/ab/logb
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in m al2; do
    say "start b-$v-$i"
    /tmp/ab/bench-$v -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/b-$v-$i > /tmp/ab/b-$v-$i.out 2>&1
    say "end b-$v-$i rc=$?"
  done
done
say done
