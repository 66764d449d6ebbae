#!/usr/bin/env python3
"""Start `herder up DIR --quiet` on N sleep manifests, sample its CPU (utime+stime from
/proc/PID/stat) every 100 ms, report: time until N sleep children run, CPU by then,
time until idle (no CPU tick over a 1 s window), CPU by then. Then SIGTERM, time to exit."""
import os, sys, time, subprocess, shutil, signal
N = int(sys.argv[1]); herder = sys.argv[2]
perf = len(sys.argv) > 3 and sys.argv[3] == "perf"
root = f"/tmp/scale/run-{N}"; shutil.rmtree(root, ignore_errors=True)
d = f"{root}/herder.d"; os.makedirs(d)
marker = 1000 + N
pairs = os.environ.get("PAIRS") == "1"
for i in range(N):
    if pairs and i % 2 == 1:
        # every other child depends on the one before it (ready)
        open(f"{d}/c{i}.yaml", "w").write(f'name: c{i}\ncommand: ["sleep", "{marker}"]\ndependencies: [{{name: c{i-1}, condition: ready}}]\n')
    else:
        open(f"{d}/c{i}.yaml", "w").write(f'name: c{i}\ncommand: ["sleep", "{marker}"]\n')
hz = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, HERDER_CGROUPS="off")
t0 = time.monotonic()
p = subprocess.Popen([herder, "up", d, "--quiet", "--socket", f"{root}/s.sock", "--state-dir", f"{root}/state"],
                     env=env, stdout=subprocess.DEVNULL, stderr=open(f"{root}/stderr", "w"))
def cpu():
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
def running():
    n = 0
    for t in os.listdir(f"/proc/{p.pid}/task"):
        try: kids = open(f"/proc/{p.pid}/task/{t}/children").read().split()
        except OSError: continue
        for k in kids:
            try:
                if open(f"/proc/{k}/comm").read().strip() == "sleep": n += 1
            except OSError: pass
    return n
t_all = None; samples = []
perfp = None
if perf:
    perfp = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", f"{root}/perf.data", "-p", str(p.pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    time.sleep(0.1)
    now = time.monotonic() - t0; c = cpu(); samples.append((now, c))
    if t_all is None:
        if running() >= N:
            t_all, c_all = now, c
            print(f"N={N}: all {N} running at {t_all:.2f} s, herder CPU {c_all:.2f} s", flush=True)
        elif now > 300: print("timeout"); break
        continue
    # idle: no tick over the last 1 s
    old = [s for s in samples if s[0] <= now - 1.0]
    if old and c - old[-1][1] < 0.015:
        t_idle = old[-1][0]; c_idle = old[-1][1]
        print(f"N={N}: idle from {t_idle:.2f} s ({t_idle - t_all:.2f} s after all running), herder CPU {c_idle:.2f} s ({c_idle - c_all:.2f} s after all running)", flush=True)
        break
    if now > 600: print("no idle"); break
print("timeline (s, cpu):", " ".join(f"{t:.0f}:{c:.2f}" for t, c in samples[9::10]))
if perfp:
    perfp.send_signal(signal.SIGINT); perfp.wait()
kids = [k for t in os.listdir(f"/proc/{p.pid}/task") for k in open(f"/proc/{p.pid}/task/{t}/children").read().split()]
if len(sys.argv) > 3 and sys.argv[3] == "perfexit":
    perfp = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", f"{root}/perf-exit.data", "-p", str(p.pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
t = time.monotonic(); p.send_signal(signal.SIGTERM)
# the last child's exit: poll until no child is left
while True:
    try:
        left = sum(len(open(f"/proc/{p.pid}/task/{t_}/children").read().split()) for t_ in os.listdir(f"/proc/{p.pid}/task"))
    except OSError: left = 0
    if left == 0: break
    time.sleep(0.002)
t_last = time.monotonic()
p.wait()
print(f"N={N}: SIGTERM → last child gone {t_last - t:.3f} s, herder exit {time.monotonic() - t_last:.3f} s after it", flush=True)
if len(sys.argv) > 3 and sys.argv[3] == "perfexit":
    perfp.wait()
print(f"N={N}: SIGTERM to herder exit {time.monotonic() - t:.3f} s (exit {p.returncode})", flush=True)
