#!/usr/bin/env bash
set -u
L=/tmp/ab/log7
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in main2 ixf; do
    snap=/work/snap-s7; [[ $v == ixf ]] && snap=/work/snap-s8f
    say "start hp $v-$i"
    /tmp/ab/bench-$v -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot $snap -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/h7-$v-$i > /tmp/ab/h7-$v-$i.out 2>&1
    say "end hp $v-$i rc=$?"
  done
done
for i in 1 2; do
  for v in main2 ixf; do
    snap=/work/snap-s7; [[ $v == ixf ]] && snap=/work/snap-s8f
    say "start tls $v-$i"
    /tmp/ab/bench-$v -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot $snap -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/t7-$v-$i > /tmp/ab/t7-$v-$i.out 2>&1
    say "end tls $v-$i rc=$?"
  done
done
say done
