#!/usr/bin/env python3
# Retention lag of the upload store (issue 19): runs pixgate (the binary given) with
# upload.retention 2s, uploads IMAGE 10 times and, for each, times how long after the answer
# the entry is gone from memory (pixgate_cache_entries{store="uploads",tier="memory"} back to
# 0, as the sweeper publishes it), without ever asking for the link.
# Usage: benches/upload/retention_lag.py target/release/pixgate IMAGE.jpg
import json, subprocess, time, urllib.request, socket, sys, os, tempfile
cfg_path=os.path.join(tempfile.mkdtemp(),"pixgate.yaml")
def port():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
up, ad, px = port(), port(), port()
cfg=f"""listen: 127.0.0.1:{px}
origin: {{ url: "builtin:demo" }}
admin: {{ listen: 127.0.0.1:{ad} }}
log: {{ level: warn, access: {{ enabled: false }} }}
upload: {{ listen: 127.0.0.1:{up}, retention: 2s, rate_limit: null }}
"""
open(cfg_path,"w").write(cfg)
p=subprocess.Popen([sys.argv[1],"--config",cfg_path],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{up}/api/v1/info"); break
        except Exception: time.sleep(0.1)
    body=open(sys.argv[2],"rb").read()
    lags=[]; answered=[]
    for i in range(10):
        t0=time.time()
        r=urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{up}/api/v1/images?format=webp",data=body,headers={"Content-Type":"image/jpeg"}))
        j=json.load(r); t_ans=time.time()
        def gauge():
            m=urllib.request.urlopen(f"http://127.0.0.1:{ad}/metrics").read().decode()
            n=[l for l in m.splitlines() if l.startswith('pixgate_cache_entries{store="uploads",tier="memory"}')]
            return float(n[0].split()[-1]) if n else 0.0
        while gauge() < 1: time.sleep(0.01)
        while True:
            m=urllib.request.urlopen(f"http://127.0.0.1:{ad}/metrics").read().decode()
            n=[l for l in m.splitlines() if l.startswith('pixgate_cache_entries{store="uploads",tier="memory"}')]
            if n and float(n[0].split()[-1])==0: break
            time.sleep(0.01)
        lags.append(time.time()-t0)
        answered.append(time.time()-t_ans)
    print("after the answer (s):", ["%.3f"%x for x in answered])
    print("gone from memory after upload start (s), retention 2 s:", ["%.3f"%x for x in lags], "max %.3f"%max(lags))
finally:
    p.kill()
