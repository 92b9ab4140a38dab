import json,sys,re,datetime
f=sys.argv[1]; thr=float(sys.argv[2]) if len(sys.argv)>2 else 10
gcs=[];reqs=[];t0=None
for line in open(f):
    if line.startswith('gc '):
        m=re.match(r'gc \d+ @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock',line)
        if m: gcs.append((float(m[1]), sum(float(m[i]) for i in (2,3,4))/1000))
        continue
    if not line.startswith('{'): continue
    try: j=json.loads(line)
    except: continue
    t=datetime.datetime.fromisoformat(j['time'].replace('Z','+00:00')).timestamp()
    if t0 is None: t0=t
    if j.get('msg')=='request' and j.get('route','').startswith('/v1/collections/{c}/records/{id}'):
        reqs.append((t-j['duration_ms']/1000, j['duration_ms']))
reqs.sort(); end=reqs[-1][0]; hp=[r for r in reqs if r[0]>end-10]; w0=hp[0][0]
# clusters: group slow requests whose starts are within 20ms
slow=[r for r in hp if r[1]>thr]
cl=[]
for s,d in slow:
    if cl and s-cl[-1][1]<0.02: cl[-1][1]=s; cl[-1][2]+=1; cl[-1][3]=max(cl[-1][3],d)
    else: cl.append([s,s,1,d])
off=float(sys.argv[3]) if len(sys.argv)>3 else -0.04
gw=[(t0+off+g-w0, d*1000) for g,d in gcs if t0+off+g>w0-0.1]
print("slow",len(slow),"clusters",len(cl))
for a,b,n,mx in cl:
    near=[f"gc@{g:.3f}+{d:.0f}ms" for g,d in gw if g-0.05 < a-w0 < g+d/1000+0.02]
    print(f"{a-w0:7.3f}s n={n:3d} max={mx:5.1f}ms {' '.join(near)}")
# instrumentation lines
ev=[]
for line in open(f):
    for tag in ('SLOWCOMMIT','CKPTSYNC','CKPT '):
        i=line.find(tag)
        if i>=0:
            p=line[i:].split(); ev.append((int(p[1])/1e9-w0, float(p[2]), p[0], ' '.join(p[3:])))
ev=[e for e in ev if -0.1<e[0]<10.1]
print("events in window:", len(ev))
for a,b,n,mx in cl:
    near=[f"{k}@{t:.3f}+{d:.1f}ms{(' '+x) if x else ''}" for t,d,k,x in ev if t-0.03 < a-w0 < t+d/1000+0.005]
    print(f"{a-w0:7.3f}s n={n:3d} max={mx:5.1f}  {' | '.join(near[:6])}")
import collections
c=collections.Counter(k for t,d,k,x in ev); print(c)
sc=[d for t,d,k,x in ev if k=='SLOWCOMMIT']; sc.sort(); print("slow commits ms: n",len(sc),"p50",sc[len(sc)//2] if sc else 0,"max",sc[-1] if sc else 0, ">10ms", sum(1 for d in sc if d>10))
