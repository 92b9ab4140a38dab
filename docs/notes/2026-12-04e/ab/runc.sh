#!/usr/bin/env bash
set -u
L=/tmp/ab/logc
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  for c in 16 32; do
    say "start c$c-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-m -tls -records 1000000 -snapshot /work/snap-s9 -concurrency $c -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/c$c-$i > /tmp/ab/c$c-$i.out 2>&1
    say "end c$c-$i rc=$?"
  done
done
say done
