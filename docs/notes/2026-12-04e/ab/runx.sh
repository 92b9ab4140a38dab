#!/usr/bin/env bash
set -u
L=/tmp/ab/logx
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  for v in m alx; do
    b=$v; [[ $v == alx ]] && b=al
    say "start x-$v-$i"
    EXP_NOSAVE=1 /tmp/ab/bench-$b -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/x-$v-$i > /tmp/ab/x-$v-$i.out 2>&1
    say "end x-$v-$i rc=$?"
  done
done
say done
