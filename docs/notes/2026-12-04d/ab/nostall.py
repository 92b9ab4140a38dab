import json, sys
from datetime import datetime
f, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3]
rows=[]
for line in open(f):
    if '"msg":"request"' not in line or '/records/{id}' not in line: continue
    d=json.loads(line)
    ts=d["time"].rstrip("Z"); main,_,frac=ts.partition(".")
    t=datetime.fromisoformat(main+"+00:00").timestamp()+float("0."+frac)
    if lo<=main[11:]<=hi: rows.append((t-d["duration_ms"]/1000, d["duration_ms"]))
rows.sort()
import math
all_=sorted(x[1] for x in rows)
t0=rows[0][0]
# phase of the 250 ms indexer: find the phase with most slow requests
best=None
for ph in range(0,250,5):
    slow=sum(1 for st,d in rows if d>10 and ((st-t0)*1000-ph)%250<60)
    if best is None or slow>best[0]: best=(slow,ph)
ph=best[1]
keep=sorted(d for st,d in rows if not (((st-t0)*1000-ph)%250<60))
q=lambda v,p: v[min(len(v)-1,int(len(v)*p))]
print(f"all n={len(all_)} p50 {q(all_,.5):.1f} p99 {q(all_,.99):.1f} | outside a 60 ms window every 250 ms (phase {ph}): n={len(keep)} p50 {q(keep,.5):.1f} p99 {q(keep,.99):.1f}; slow>10ms in window {best[0]} of {sum(1 for x in all_ if x>10)}")
