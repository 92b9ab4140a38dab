#!/usr/bin/env bash
set -u
L=/tmp/ab/logg2
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  say "start f32-m-$i"
  /tmp/ab/bench-m -bin /tmp/ab/sekisho-m -tls -records 1000000 -snapshot /work/snap-s9 -concurrency 32 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/f32-m-$i > /tmp/ab/f32-m-$i.out 2>&1
  say "end f32-m-$i rc=$?"
done
for i in 1 2; do
  say "start fh-m-$i"
  /tmp/ab/bench-m -bin /tmp/ab/sekisho-m -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/fh-m-$i > /tmp/ab/fh-m-$i.out 2>&1
  say "end fh-m-$i rc=$?"
done
say done
