#!/usr/bin/env bash
set -u
L=/tmp/ab/logf9
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3 4; do
  for v in ym m gc2; do
    say "start f9-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/f9-$v-$i > /tmp/ab/f9-$v-$i.out 2>&1
    say "end f9-$v-$i rc=$?"
  done
done
for i in 1 2; do
  for v in ym m; do
    say "start c32-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -concurrency 32 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/c32-$v-$i > /tmp/ab/c32-$v-$i.out 2>&1
    say "end c32-$v-$i rc=$?"
  done
done
say done
