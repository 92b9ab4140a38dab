import json,sys,re,datetime
f=sys.argv[1]; thr=float(sys.argv[2]) if len(sys.argv)>2 else 10
gcs=[];reqs=[];t0=None
for line in open(f):
    if line.startswith('gc '):
        m=re.match(r'gc \d+ @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock',line)
        if m: gcs.append((float(m[1]), sum(float(m[i]) for i in (2,3,4))/1000))
        continue
    if not line.startswith('{'): continue
    j=json.loads(line)
    t=datetime.datetime.fromisoformat(j['time'].replace('Z','+00:00')).timestamp()
    if t0 is None: t0=t-0.0   # first log line ~ program start (bootstrap)
    if j.get('msg')=='request' and j.get('route','').startswith('/v1/collections/{c}/records/{id}'):
        reqs.append((t, j['duration_ms']/1000))
# program start: first gc is @0.021 — anchor t0 at first log line minus ~0.9s? use readyz time; calibrate by best overlap
end=reqs[-1][0]; hp=[r for r in reqs if r[0]>end-10]
def overlap(r,off):
    s,e=r[0]-r[1],r[0]
    for (g,d) in gcs:
        gs=t0+off+g; ge=gs+d
        if gs<e and ge>s: return True
    return False
best=None
for off in [x/1000 for x in range(-1500,500,5)]:
    slow=[r for r in hp if r[1]*1000>thr]
    n=sum(overlap(r,off) for r in slow)
    if best is None or n>best[0]: best=(n,off)
off=best[1]
slow=[r for r in hp if r[1]*1000>thr]
alln=sum(overlap(r,off) for r in hp)
print(f"half-peak window reqs {len(hp)}, slow(>{thr}ms) {len(slow)}, slow overlapping a GC {best[0]} ({best[0]/max(1,len(slow)):.0%}); all overlapping GC {alln/len(hp):.0%}; offset {off:+.3f}s")
gcin=[(g,d) for g,d in gcs if t0+off+g>end-10]
print("GCs in window", len(gcin), "mark ms", [round(d*1000) for g,d in gcin][:30])
