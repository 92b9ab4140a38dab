import json, collections, sys
from datetime import datetime, timezone
sec=collections.defaultdict(list)
for line in open(sys.argv[1]):
    if '"msg":"request"' not in line or '/records/{id}' not in line: continue
    d=json.loads(line)
    ts=d["time"].rstrip("Z"); main,_,frac=ts.partition("."); t=datetime.fromisoformat(main+"+00:00").timestamp()+float("0."+(frac or "0"))
    sec[int(t)].append((t,d["duration_ms"]))
for s in sorted(sec):
    v=sorted(x[1] for x in sec[s]); n=len(v)
    print(datetime.fromtimestamp(s, timezone.utc).strftime("%H:%M:%S"), n, "p50 %.1f p99 %.1f max %.1f"%(v[n//2], v[int(n*0.99)], v[-1]))
