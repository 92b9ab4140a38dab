#!/usr/bin/env bash
set -u
L=/tmp/ab/log
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in main low; do
    say "start $v-$i"
    /tmp/ab/bench -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-i17 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/$v-$i > /tmp/ab/$v-$i.out 2>&1
    say "end $v-$i rc=$?"
  done
done
say done
