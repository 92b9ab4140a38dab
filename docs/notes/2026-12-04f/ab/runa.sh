#!/usr/bin/env bash
set -u
L=/tmp/ab/log$1
tag=$1; shift
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
for i in 1 2 3; do
  for v in "$@"; do
    b=/tmp/ab/bench-m; case $v in al*) b=/tmp/ab/bench-al9;; esac
    say "start $tag-$v-$i"
    $b -bin /tmp/ab/sekisho-$v -tls -records 1000000 -snapshot /work/snap-s9 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/$tag-$v-$i > /tmp/ab/$tag-$v-$i.out 2>&1
    say "end $tag-$v-$i rc=$?"
  done
done
say done
