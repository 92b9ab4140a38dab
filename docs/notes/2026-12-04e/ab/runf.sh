#!/usr/bin/env bash
set -u
L=/tmp/ab/logf
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3 4; do
  for v in m n; do
    say "start f-$v-$i"
    /tmp/ab/bench-$v -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/f-$v-$i > /tmp/ab/f-$v-$i.out 2>&1
    say "end f-$v-$i rc=$?"
  done
done
for i in 1 2; do
  say "start f32-n-$i"
  /tmp/ab/bench-n -bin /tmp/ab/sekisho-n -tls -records 1000000 -snapshot /work/snap-s9 -concurrency 32 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/f32-n-$i > /tmp/ab/f32-n-$i.out 2>&1
  say "end f32-n-$i rc=$?"
done
for i in 1 2 3; do
  say "start fi-n-$i"
  /tmp/ab/bench-n -bin /tmp/ab/sekisho-n -records 1000000 -only none -duration 1s -out /tmp/ab/fi-n-$i > /tmp/ab/fi-n-$i.out 2>&1
  say "end fi-n-$i rc=$?"
done
for i in 1 2; do
  say "start fh-n-$i"
  /tmp/ab/bench-n -bin /tmp/ab/sekisho-n -records 1000000 -snapshot /work/snap-n9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/fh-n-$i > /tmp/ab/fh-n-$i.out 2>&1
  say "end fh-n-$i rc=$?"
done
say done
