#!/usr/bin/env bash
set -u
L=/tmp/ab/logg
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  for v in m g4 al2g4; do
    b=m; [[ $v == al2g4 ]] && b=al2
    say "start g-$v-$i"
    /tmp/ab/bench-$b -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/g-$v-$i > /tmp/ab/g-$v-$i.out 2>&1
    say "end g-$v-$i rc=$?"
  done
done
say done
