#!/bin/bash
L=$1; B=$2; C=${3:-32}
O=/tmp/c$C-$L-$(date +%H%M%S); /tmp/bench-main -bin $B -records 1000000 -snapshot /work/snap-s10 -rounds 3 -duration 3s -concurrency $C -only floor,hot_read -out $O > $O.log 2>&1; python3 -c "
import json;r=json.load(open('$O/results.json'));w=r['workloads'];rs=[round(x.get('hot_read_floor_ratio'),3) for x in r.get('rounds',[])];print('$L c$C floor %.0f hot %.0f ratio %.3f p99 %.1f cpu/1k %.3f rounds %s'%(w['floor']['throughput_rps'],w['hot_read']['throughput_rps'],r['hot_read_floor_ratio'],w['hot_read']['p99_ms'],w['hot_read']['cpu_s_per_1k'],rs))"
