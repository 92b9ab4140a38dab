#!/usr/bin/env bash
set -u
L=/tmp/ab/logg9
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3 4; do
  for v in gc ym; do
    say "start g9-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/g9-$v-$i > /tmp/ab/g9-$v-$i.out 2>&1
    say "end g9-$v-$i rc=$?"
  done
done
for i in 1 2; do
  for v in gc ym; do
    say "start gh-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/gh-$v-$i > /tmp/ab/gh-$v-$i.out 2>&1
    say "end gh-$v-$i rc=$?"
  done
done
say done
