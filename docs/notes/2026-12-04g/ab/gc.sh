#!/usr/bin/env bash
set -u
L=/work/ab10/gc.log
for i in 1 2 3; do
  for v in 200 100; do
    if [ $v = 100 ]; then export GOGC=100; else unset GOGC; fi
    /tmp/ab/bench-s10 -bin /tmp/ab/sekisho-s10 -tls -records 1000000 -snapshot /work/snap-s10 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/gc$v-$i > /tmp/ab/gc$v-$i.out 2>&1
    python3 -c "
import json;d=json.load(open('/tmp/ab/gc$v-$i/results.json'))
w=d['workloads']
print('gc$v-$i', 'mtls %.3f dpop %.3f rss %.0f floor %.0f mtls_cpu %.3f' % (d['hot_read_mtls_floor_ratio'], d['hot_read_floor_ratio'], d['rss_mib'], w['floor_tls']['throughput_rps'], w['hot_read_mtls']['cpu_s_per_1k']))" | tee -a $L
  done
done
