#!/usr/bin/env bash
set -u
L=/tmp/ab/logyh
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3 4; do
  for v in y2 m; do
    say "start yt-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/yt-$v-$i > /tmp/ab/yt-$v-$i.out 2>&1
    say "end yt-$v-$i rc=$?"
  done
done
for i in 1 2 3; do
  for v in y2 m; do
    say "start yh-$v-$i"
    /tmp/ab/bench-m -bin /tmp/ab/sekisho-$v -records 1000000 -snapshot /work/snap-s9 -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/yh-$v-$i > /tmp/ab/yh-$v-$i.out 2>&1
    say "end yh-$v-$i rc=$?"
  done
done
say done
