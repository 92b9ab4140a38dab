#!/usr/bin/env bash
# PostgreSQL hot path before (9432374, schema 3) and after (8e45a6f, audit_entries partitioned):
# 200k records, floor + hot_read + create, alternating, each run on a fresh database.
set -u
cd /work/main
DSN=$(cat /tmp/pg12.dsn)
for i in 1 2 3; do
  for b in 9432374 8e45a6f; do
    out=/tmp/pgab-$b-$i
    /tmp/bench-$b -records 200000 -store "$DSN" -bin /tmp/sekisho-$b -only floor,hot_read,create -out $out > $out.log 2>&1
    echo "$b run $i $(date -u +%T): $(python3 -c "
import json; r=json.load(open('$out/results.json'))
w={x['name']:x for x in r['workloads']} if isinstance(r.get('workloads'),list) else r['workloads']
def g(n,k):
  try: return w[n][k]
  except Exception: return None
print('floor', g('floor','throughput_rps'), 'hot_read', g('hot_read','throughput_rps'), 'p99', g('hot_read','p99_ms'), 'cpu1k', g('hot_read','cpu_s_per_1k'), 'create_cpu1k', g('create','cpu_s_per_1k'), 'create', g('create','throughput_rps'), 'ratio', r.get('hot_read_floor_ratio'))
" 2>&1)"
  done
done
