#!/usr/bin/env bash
set -u
L=/tmp/ab/logq
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2; do
  for v in m gap; do
    say "start qh-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/qh-$v-$i > /tmp/ab/qh-$v-$i.out 2>&1
    say "end qh-$v-$i rc=$?"
  done
done
for i in 1 2; do
  for v in m gap; do
    say "start q-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/q-$v-$i > /tmp/ab/q-$v-$i.out 2>&1
    say "end q-$v-$i rc=$?"
  done
done
say done
