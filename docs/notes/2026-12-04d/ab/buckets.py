import json, collections, sys
from datetime import datetime, timezone
f, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3]
rows=[]
for line in open(f):
    if '"msg":"request"' not in line or '/records/{id}' not in line: continue
    d=json.loads(line)
    ts=d["time"].rstrip("Z"); main,_,frac=ts.partition(".")
    t=datetime.fromisoformat(main+"+00:00").timestamp()+float("0."+frac)
    if lo<=main[11:]<=hi: rows.append((t-d["duration_ms"]/1000, d["duration_ms"]))
rows.sort()
b=collections.defaultdict(list)
for st,dur in rows: b[int(st*40)].append(dur)   # 25 ms buckets by start time
for k in sorted(b):
    v=sorted(b[k])
    print(datetime.fromtimestamp(k/40, timezone.utc).strftime("%S.%f")[:6], "%3d"%len(v), "p50 %5.1f max %5.1f"%(v[len(v)//2], v[-1]), "#"*int(v[-1]/2))
