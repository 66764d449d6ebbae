import sys, re, collections
samples=[]; cur=None
for line in open(sys.argv[1]):
    m=re.match(r'\s*(\d+)\s+([\d.]+):\s*$',line)
    if m: cur=[float(m.group(2)), int(m.group(1)), []]; samples.append(cur); continue
    if line.strip() and cur: cur[2].append(line.strip().split(None,1)[-1])
t0=min(s[0] for s in samples); t1=max(s[0] for s in samples)
step=float(sys.argv[2]) if len(sys.argv)>2 else 0.05
b=collections.defaultdict(collections.Counter)
for s in samples: b[int((s[0]-t0)/step)][(s[2][0][:70] if s[2] else '?')]+=1
for k in sorted(b): print(round(k*step,3), sum(b[k].values()), b[k].most_common(5))
