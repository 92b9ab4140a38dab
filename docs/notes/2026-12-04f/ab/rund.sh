#!/usr/bin/env bash
set -u
L=/tmp/ab/logd9
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in f m; do
    say "start d9-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/d9-$v-$i > /tmp/ab/d9-$v-$i.out 2>&1
    say "end d9-$v-$i rc=$?"
  done
done
say done
