import json,sys,collections
from datetime import datetime
rows=[]
for l in open(sys.argv[1]):
    if '"msg":"request"' not in l: continue
    m=json.loads(l)
    if m.get('route')!='/v1/collections/{c}/records/{id}': continue
    rows.append((m['time'],m['duration_ms']))
rows.sort()
b=collections.defaultdict(list)
for t,d in rows: b[t[11:21]].append(d)   # 100 ms buckets HH:MM:SS.d
for k in sorted(b):
    v=sorted(b[k])
    if v[-1]>float(sys.argv[2]): print(k, 'n',len(v),'p50',v[len(v)//2],'max',v[-1])
