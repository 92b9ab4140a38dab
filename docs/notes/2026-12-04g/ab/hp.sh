#!/usr/bin/env bash
# half-peak A/B: alternating binaries from one snapshot
set -u
L=/work/ab10/hp.log
tag=$1; shift
for i in 1 2 3; do
  for b in "$@"; do
    n=$tag-$(basename $b)-$i
    /tmp/ab/bench-fin -bin $b -records 1000000 -snapshot /work/snap-s10 -duration 10s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/ab/$n > /tmp/ab/$n.out 2>&1
    python3 - "$n" <<'PY' | tee -a $L
import json,sys,datetime,collections
n=sys.argv[1]
d=json.load(open('/tmp/ab/%s/results.json'%n)); w=d['workloads']
rows=[]
for l in open('/tmp/ab/%s/serve.log'%n):
    if '"route":"/v1/collections/{c}/records/{id}"' not in l: continue
    e=json.loads(l); t=datetime.datetime.fromisoformat(e['time'].replace('Z','+00:00')).timestamp()
    rows.append((t-e['duration_ms']/1000,e['duration_ms']))
rows.sort(); t0=rows[0][0]
sec=collections.Counter(int(t-t0) for t,_ in rows)
hp=sorted(m for t,m in rows if 0.6*w['hot_read_half_peak']['throughput_rps']<sec[int(t-t0)]<1.4*w['hot_read_half_peak']['throughput_rps'])
k=len(hp)
print('%s hot %.0f ratio %.3f | half-peak client p50 %.2f p99 %.2f | server p99 %.2f p999 %.2f | floor hp p99 %.2f' % (n, w['hot_read']['throughput_rps'], d['hot_read_floor_ratio'], w['hot_read_half_peak']['p50_ms'], w['hot_read_half_peak']['p99_ms'], hp[int(k*.99)], hp[int(k*.999)], w['floor_half_peak']['p99_ms']))
PY
  done
done
