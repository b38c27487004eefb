#!/usr/bin/env bash
# The shared tier (`cache.shared`, Redis) at the HTTP level, in one run:
#
#  (a) a shared-tier hit against a local memory hit. K variants (each photo x WIDTHS, Chrome's
#      Accept, so AVIF) are made through node A; a fresh node B then asks for each once (every
#      one a shared hit: X-Cache HIT, B's `tier="shared"` hits move by exactly K, the bytes are
#      A's), timed one by one on one keep-alive connection, then for each again (memory hits),
#      timed the same way; B_REPEATS fresh B nodes in turn. Throughput: `wrk` rotating over the K URLs against node C, whose memory tier
#      (SMALL_MEM) is too small to keep them, so most requests go to Redis, and against B (all
#      memory hits), alternating, ROUNDS rounds.
#  (b) origin fetches and transforms saved: one request mix (MIX_REQUESTS requests, Zipf(ZIPF_S)
#      popularity over the K variants, fixed seed, round robin over 3 nodes, MIX_CLIENTS
#      concurrent clients) against 3 fresh nodes on one Redis, then against 3 fresh independent
#      nodes (no `cache.shared`). Origin requests are nginx access-log lines, transforms the sum
#      of `pixgate_transform_seconds_count` over the nodes.
#
# Everything runs on free 127.0.0.1 ports: redis-server (no persistence), nginx (the origin,
# serving PIXGATE_PHOTOS with `Cache-Control: max-age=3600`) and the pixgate nodes (2 threads
# each, access log off, one cluster key file, the same Host header on every node as behind a
# balancer: the variant key includes the host). Every node has `avif_budget: null` and
# `avif_margin: null` (one encode per variant, no WebP stand-in racing the AVIF), as in
# tests/cluster.rs. All processes are stopped by pid on exit.
#
# Usage: benches/peers/shared_tier.sh
# Env: PIXGATE_BIN (default target/release/pixgate; copied first), PIXGATE_PHOTOS (a folder of
#      photos, searched recursively, `debs/` skipped; default target/peers/photos, made by
#      benches/peers/photos.sh), PER_DIR (photos taken per folder, 2), WIDTHS ("256 512 1024"),
#      B_REPEATS (fresh B nodes, 3), SMALL_MEM (16KiB), SECS (10), CONNS (8), ROUNDS (2), MIX_REQUESTS (2000), MIX_CLIENTS (4),
#      ZIPF_S (1.0), SHARED_WORK (target/shared-tier).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${SECS:-10}
conns=${CONNS:-8}
rounds=${ROUNDS:-2}
per_dir=${PER_DIR:-2}
widths=${WIDTHS:-256 512 1024}
small_mem=${SMALL_MEM:-16KiB}
b_repeats=${B_REPEATS:-3}
mix_requests=${MIX_REQUESTS:-2000}
mix_clients=${MIX_CLIENTS:-4}
zipf_s=${ZIPF_S:-1.0}
bin=${PIXGATE_BIN:-target/release/pixgate}
photos=$(realpath -m "${PIXGATE_PHOTOS:-target/peers/photos}")
host=images.example
for c in nginx redis-server redis-cli wrk curl python3; do
  command -v $c >/dev/null || { echo "missing: $c (apt-get install nginx-light redis-server wrk curl python3)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no pixgate binary at $bin" >&2; exit 1; }
[ -d "$photos" ] || { echo "no photo folder at $photos (benches/peers/photos.sh makes one)" >&2; exit 1; }
run=$(realpath -m "${SHARED_WORK:-target/shared-tier}")/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run/nginx/logs" "$run/nginx/tmp" "$run/redis" "$run/snap"
cp "$bin" "$run/pixgate"
echo "pixgate = $bin ($(git -C "$(dirname "$bin")" rev-parse --short HEAD 2>/dev/null || echo '?')), $(nproc) cores, $(date -u '+%F %H:%M') UTC"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$run/pixgate"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
  for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "nothing at $1" >&2; exit 1
}

# The photos (PER_DIR per folder) and the K variant paths.
python3 - "$photos" "$per_dir" "$widths" > "$run/paths" 2> "$run/photos" <<'EOF'
import os, sys
root, per_dir, widths = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
picked = []
for d, dirs, files in os.walk(root):  # top-down, folders in name order
    dirs[:] = sorted(x for x in dirs if x != "debs")
    imgs = sorted(f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    picked += [os.path.relpath(os.path.join(d, f), root) for f in imgs[:per_dir]]
for p in picked:
    print(f"{p} {os.path.getsize(os.path.join(root, p))}", file=sys.stderr)
    for w in widths:
        print(f"/{p}?w={w}")
EOF
k=$(wc -l < "$run/paths")
echo "photos: $(wc -l < "$run/photos") from $photos, widths: $widths, K = $k variants"

# Redis, no persistence.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$run/redis" \
  --logfile "$run/redis/redis.log" &
pids+=($!)
head -c 32 /dev/urandom > "$run/cluster.key"

# nginx: the origin. Each arm of (b) has its own access log, so its origin requests are its lines.
origin_port=$(free_port)
user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
cat > "$run/nginx/nginx.conf" <<EOF
$user
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  types { image/jpeg jpg jpeg; image/png png; image/webp webp; }
  default_type application/octet-stream;
  client_body_temp_path $run/nginx/tmp; proxy_temp_path $run/nginx/tmp;
  fastcgi_temp_path $run/nginx/tmp; uwsgi_temp_path $run/nginx/tmp; scgi_temp_path $run/nginx/tmp;
  log_format brief '\$msec \$status \$body_bytes_sent \$request_uri';
  server {
    listen 127.0.0.1:$origin_port;
    root $photos;
    access_log $run/nginx/logs/access.log brief;
    add_header Cache-Control "max-age=3600" always;
  }
}
EOF
chmod -R a+rX "$run"
nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" -g 'daemon off;' 2> "$run/nginx.err" &
pids+=($!)
wait_http "http://127.0.0.1:$origin_port/$(head -1 "$run/paths" | sed 's|^/||; s|?.*||')"
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
origin_lines() { wc -l < "$run/nginx/logs/access.log"; }

# node NAME MEMORY PREFIX|-: starts a pixgate node (PREFIX -: no shared tier); sets node_port,
# node_admin, node_pid.
node() {
  local name=$1 mem=$2 prefix=$3 shared=""
  node_port=$(free_port); node_admin=$(free_port)
  [ "$prefix" = - ] || shared="shared: { redis: \"redis://127.0.0.1:$redis_port/0\", key_file: $run/cluster.key, prefix: \"$prefix\" }"
  cat > "$run/$name.yaml" <<EOF
listen: 127.0.0.1:$node_port
origin: { url: "http://127.0.0.1:$origin_port" }
server: { threads: 2, grace_period: 0s, upgrade_sock: $run/$name.sock }
admin: { listen: "127.0.0.1:$node_admin" }
log: { level: warn, access: { enabled: false } }
cache:
  avif_budget: null
  avif_margin: null
  memory: { max_bytes: $mem }
  $shared
EOF
  "$run/pixgate" --config "$run/$name.yaml" > "$run/$name.out" 2>&1 &
  node_pid=$!
  pids+=($node_pid)
  wait_http "http://127.0.0.1:$node_admin/metrics"
  wait_http "http://127.0.0.1:$node_port/"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
snap() { curl -sf "http://127.0.0.1:$1/metrics" > "$run/snap/$2"; }

# The client: timed requests, the populate step and the mix (stdlib only).
cat > "$run/client.py" <<'EOF'
import http.client, json, random, sys, threading, time, hashlib
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
HOST = "images.example"

class Conn:
    def __init__(self, port):
        self.port, self.c = port, None
    def get(self, path):
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                t0 = time.perf_counter()
                self.c.request("GET", path, headers={"Host": HOST, "Accept": CHROME})
                r = self.c.getresponse()
                body = r.read()
                dt = time.perf_counter() - t0
                return r.status, r.getheader("x-cache", ""), r.getheader("content-type", ""), body, dt
            except (http.client.HTTPException, OSError):
                self.c = None
                if attempt:
                    raise

def paths(f):
    return [l.strip() for l in open(f) if l.strip()]

cmd = sys.argv[1]
if cmd == "sequence":  # PATHS PORT OUT [SHA_IN]: each path once, in order, one connection
    ps, port, out = paths(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    want = json.load(open(sys.argv[5])) if len(sys.argv) > 5 else None
    c, rows = Conn(port), []
    for p in ps:
        s, xc, ct, body, dt = c.get(p)
        sha = hashlib.sha256(body).hexdigest()
        rows.append({"path": p, "status": s, "x_cache": xc, "type": ct, "bytes": len(body),
                     "ms": dt * 1000, "sha": sha, "same": want is None or want.get(p) == sha})
    json.dump(rows, open(out, "w"))
elif cmd == "shas":  # IN OUT
    json.dump({r["path"]: r["sha"] for r in json.load(open(sys.argv[2]))}, open(sys.argv[3], "w"))
elif cmd == "mix":  # PATHS PORTS(comma) N CLIENTS ZIPF_S SEED OUT
    ps, ports = paths(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
    n, clients, s, seed, out = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
    rnd = random.Random(seed)
    ranked = ps[:]
    rnd.shuffle(ranked)  # popularity rank independent of photo and width
    weights = [1 / (i + 1) ** s for i in range(len(ranked))]
    seq = rnd.choices(ranked, weights, k=n)
    lock, nxt, rows = threading.Lock(), [0], [None] * n
    def worker():
        conns = [Conn(p) for p in ports]
        while True:
            with lock:
                j = nxt[0]; nxt[0] += 1
            if j >= n:
                return
            node = j % len(ports)
            try:
                st, xc, ct, body, dt = conns[node].get(seq[j])
            except Exception as e:
                st, xc, ct, body, dt = 0, repr(e), "", b"", 0
            rows[j] = {"path": seq[j], "node": node, "status": st, "x_cache": xc, "type": ct, "ms": dt * 1000}
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    json.dump({"wall_s": time.perf_counter() - t0, "distinct": len(set(seq)), "rows": rows}, open(out, "w"))
EOF

cat > "$run/rotate.lua" <<'EOF'
-- Each request takes the next of SHARED_PATHS (round robin; thread i starts i/threads of the
-- way in), with the site's Host and Chrome's Accept.
wrk.headers["Host"] = "images.example"
wrk.headers["Accept"] = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
local threads = 0
function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end
local paths, i = {}, 0
function init()
  for line in io.lines(os.getenv("SHARED_PATHS")) do paths[#paths + 1] = line end
  i = math.floor((first or 0) * #paths / 2)
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
EOF

# ---- (a) shared hit vs memory hit
echo "--- (a) populate through A, then B: shared hits, then memory hits"
node a 256MiB "pa:"; a_port=$node_port; a_admin=$node_admin; a_pid=$node_pid
snap "$a_admin" a0
python3 "$run/client.py" sequence "$run/paths" "$a_port" "$run/a-populate.json"
snap "$a_admin" a1
python3 "$run/client.py" shas "$run/a-populate.json" "$run/a-shas.json"
sleep 1 # A's puts to Redis finish after the response
# B_REPEATS fresh B nodes, each: every variant once from Redis, then once from memory. The last
# one stays for the wrk runs.
for i in $(seq 1 "$b_repeats"); do
  [ "$i" -gt 1 ] && stop "$b_pid"
  node "b$i" 256MiB "pa:"; b_port=$node_port; b_admin=$node_admin; b_pid=$node_pid
  snap "$b_admin" "b$i-0"
  python3 "$run/client.py" sequence "$run/paths" "$b_port" "$run/b$i-shared.json" "$run/a-shas.json"
  snap "$b_admin" "b$i-1"
  python3 "$run/client.py" sequence "$run/paths" "$b_port" "$run/b$i-memory.json" "$run/a-shas.json"
  snap "$b_admin" "b$i-2"
done
redis-cli -p "$redis_port" info memory | grep -E '^used_memory:' > "$run/redis-a.txt"
redis-cli -p "$redis_port" dbsize >> "$run/redis-a.txt"
node c "$small_mem" "pa:"; c_port=$node_port; c_admin=$node_admin; c_pid=$node_pid

echo "--- (a) throughput: wrk -t2 -c$conns -d${secs}s rotating over the K URLs, C (memory $small_mem) vs B"
printf 'round\tnode\n' > "$run/wrk-order.tsv"
for r in $(seq 1 "$rounds"); do
  order="c b"; [ $((r % 2)) -eq 0 ] && order="b c"
  for n in $order; do
    if [ "$n" = c ]; then p=$c_port; ad=$c_admin; else p=$b_port; ad=$b_admin; fi
    snap "$ad" "wrk-$n-r$r-0"
    SHARED_PATHS="$run/paths" wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$run/rotate.lua" \
      "http://127.0.0.1:$p/" > "$run/wrk-$n-r$r.txt"
    snap "$ad" "wrk-$n-r$r-1"
    printf '%s\t%s\n' "$r" "$n" >> "$run/wrk-order.tsv"
    grep -E 'Requests/sec|Non-2xx|Socket errors' "$run/wrk-$n-r$r.txt" | sed "s/^/  $n r$r: /"
  done
done
stop "$a_pid"; stop "$b_pid"; stop "$c_pid"

# ---- (b) the same mix against 3 shared nodes and 3 independent ones
for arm in shared independent; do
  echo "--- (b) $arm: $mix_requests requests, Zipf s=$zipf_s over $k variants, $mix_clients clients, 3 nodes"
  prefix=-; [ "$arm" = shared ] && prefix="pb:"
  ports=(); admins=(); npids=()
  for i in 1 2 3; do
    node "$arm-$i" 256MiB "$prefix"; ports+=($node_port); admins+=($node_admin); npids+=($node_pid)
  done
  for i in 0 1 2; do snap "${admins[$i]}" "$arm-$i-0"; done
  o0=$(origin_lines)
  python3 "$run/client.py" mix "$run/paths" "$(IFS=,; echo "${ports[*]}")" "$mix_requests" \
    "$mix_clients" "$zipf_s" 7 "$run/mix-$arm.json"
  sleep 1
  o1=$(origin_lines)
  for i in 0 1 2; do snap "${admins[$i]}" "$arm-$i-1"; done
  echo "$((o1 - o0))" > "$run/origin-$arm.txt"
  sed -n "$((o0 + 1)),${o1}p" "$run/nginx/logs/access.log" > "$run/origin-$arm.log"
  for p in "${npids[@]}"; do stop "$p"; done
done
redis-cli -p "$redis_port" info memory | grep -E '^used_memory:' > "$run/redis-b.txt"
redis-cli -p "$redis_port" dbsize >> "$run/redis-b.txt"
# pingora logs "failed to acquire reusable stream" (ERROR) when a pooled origin connection is
# still held by its idle watcher; the request opens a new one. Counted apart from other errors.
cat "$run"/*.out | sed 's/\x1b\[[0-9;]*m//g' | grep -iE 'error|panic' > "$run/node-errors.txt" || true

python3 - "$run" "$k" <<'EOF'
import json, re, sys, collections, pathlib
run, k = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def metrics(name):
    out = collections.defaultdict(float)
    for line in (run / "snap" / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'([a-zA-Z_:]+)(\{[^}]*\})? (\S+)', line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
            out[(m.group(1), labels)] += float(m.group(3))
    return out

def val(snap, name, **labels):
    return sum(v for (n, ls), v in snap.items() if n == name and all((a, b) in ls for a, b in labels.items()))

def delta(a, b, name, **labels):
    return val(metrics(b), name, **labels) - val(metrics(a), name, **labels)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]

problems = []
pop = json.load(open(run / "a-populate.json"))
bad = [r for r in pop if r["status"] != 200 or r["x_cache"] != "MISS"]
if bad:
    problems.append(f"populate: {len(bad)} of {len(pop)} not 200 MISS: {bad[:3]}")
types = collections.Counter(r["type"] for r in pop)
print(f"\nK = {k} variants ({sum(r['bytes'] for r in pop):,} bytes; {dict(types)}); "
      f"populate on A: {delta('a0', 'a1', 'pixgate_transform_seconds_count'):.0f} transforms, "
      f"median {pct([r['ms'] for r in pop], 50):.1f} ms per cold request")

print("\n| B asks for each variant once | requests | X-Cache HIT | same bytes as A | tier hits (metric delta) | p50 | p90 | p99 | max | mean |")
print("|---|---|---|---|---|---|---|---|---|---|")
reps = sorted(int(m.group(1)) for f in run.glob("b*-shared.json") if (m := re.match(r"b(\d+)-shared", f.name)))
lat = {}
for tier, a, b in (("shared", 0, 1), ("memory", 1, 2)):
    rows, d, tr = [], collections.Counter(), 0
    for i in reps:
        rs = json.load(open(run / f"b{i}-{tier}.json"))
        rows += rs
        di = {t: delta(f"b{i}-{a}", f"b{i}-{b}", "pixgate_cache_hits_total", tier=t) for t in ("memory", "shared")}
        d.update(di)
        tri = delta(f"b{i}-{a}", f"b{i}-{b}", "pixgate_transform_seconds_count")
        tr += tri
        hits = sum(r["x_cache"] == "HIT" and r["status"] == 200 for r in rs)
        same = sum(r["same"] for r in rs)
        if hits != k or same != k or di[tier] != k or tri:
            problems.append(f"B{i} {tier}: {hits} HIT, {same} same bytes, tier deltas {di}, {tri} transforms (want {k})")
    ms = [r["ms"] for r in rows]
    lat[tier] = ms
    hits = sum(r["x_cache"] == "HIT" and r["status"] == 200 for r in rows)
    same = sum(r["same"] for r in rows)
    print(f"| {tier} hits ({len(reps)} nodes x {k}) | {len(rows)} | {hits} | {same} | shared {d['shared']:.0f}, memory {d['memory']:.0f} | "
          f"{pct(ms, 50):.2f} ms | {pct(ms, 90):.2f} ms | {pct(ms, 99):.2f} ms | {max(ms):.2f} ms | {sum(ms) / len(ms):.2f} ms |")
print(f"\nshared / memory: p50 {pct(lat['shared'], 50) / pct(lat['memory'], 50):.1f}x, "
      f"p90 {pct(lat['shared'], 90) / pct(lat['memory'], 90):.1f}x, "
      f"p99 {pct(lat['shared'], 99) / pct(lat['memory'], 99):.1f}x; "
      f"p50 difference {pct(lat['shared'], 50) - pct(lat['memory'], 50):.2f} ms")
g = sum(delta(f"b{i}-0", f"b{i}-1", "pixgate_shared_op_seconds_count", op="get") for i in reps)
gs = sum(delta(f"b{i}-0", f"b{i}-1", "pixgate_shared_op_seconds_sum", op="get") for i in reps)
rb = sum(delta(f"b{i}-0", f"b{i}-1", "pixgate_shared_bytes_total", direction="read") for i in reps)
if g:
    print(f"B's Redis GETs during the shared passes: {g:.0f}, mean {gs / g * 1000:.2f} ms (pixgate_shared_op_seconds), {rb:,.0f} sealed bytes read")
print("Redis after (a): " + " ".join(open(run / "redis-a.txt").read().split()))

def wrk(f):
    t = open(f).read()
    num = lambda pat: re.search(pat, t)
    def ms(s):
        v, u = float(re.match(r"([\d.]+)(\w+)", s).group(1)), re.match(r"[\d.]+(\w+)", s).group(1)
        return v * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
    lat = {p: ms(num(rf"\n\s+{p}%\s+(\S+)").group(1)) for p in (50, 90, 99)}
    non2xx = num(r"Non-2xx or 3xx responses: (\d+)")
    errs = num(r"Socket errors: (.*)")
    return float(num(r"Requests/sec:\s+([\d.]+)").group(1)), lat, int(non2xx.group(1)) if non2xx else 0, errs.group(1) if errs else ""

print(f"\n| wrk rotating over K | round | req/s | p50 | p90 | p99 | memory hits | shared hits | misses | transforms | Redis GET mean | non-2xx / socket errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
agg = collections.defaultdict(list)
for line in list(open(run / "wrk-order.tsv"))[1:]:
    r, n = line.split()
    rps, l, non2xx, errs = wrk(run / f"wrk-{n}-r{r}.txt")
    a, b = f"wrk-{n}-r{r}-0", f"wrk-{n}-r{r}-1"
    mem = delta(a, b, "pixgate_cache_hits_total", tier="memory")
    sh = delta(a, b, "pixgate_cache_hits_total", tier="shared")
    miss = delta(a, b, "pixgate_cache_requests_total", status="miss")
    tr = delta(a, b, "pixgate_transform_seconds_count")
    gc = delta(a, b, "pixgate_shared_op_seconds_count", op="get")
    gsum = delta(a, b, "pixgate_shared_op_seconds_sum", op="get")
    tot = mem + sh + miss
    label = "C (small memory tier)" if n == "c" else "B (256MiB memory tier)"
    agg[n].append((rps, l))
    if non2xx or errs or tr:
        problems.append(f"wrk {n} r{r}: non-2xx {non2xx}, socket errors '{errs}', {tr:.0f} transforms")
    print(f"| {label} | {r} | {rps:,.0f} | {l[50]:.2f} ms | {l[90]:.2f} ms | {l[99]:.2f} ms | "
          f"{mem / tot:.0%} | {sh / tot:.1%} | {miss:.0f} | {tr:.0f} | "
          f"{(gsum / gc * 1000) if gc else 0:.2f} ms | {non2xx} / {errs or 0} |")
mean = lambda xs: sum(xs) / len(xs)
c_rps, b_rps = mean([x[0] for x in agg["c"]]), mean([x[0] for x in agg["b"]])
print(f"\nmean req/s: C {c_rps:,.0f}, B {b_rps:,.0f}: C/B = {c_rps / b_rps:.2f}x; "
      f"p50 C {mean([x[1][50] for x in agg['c']]):.2f} ms vs B {mean([x[1][50] for x in agg['b']]):.2f} ms")

print("\n| (b) arm | requests | distinct variants | non-200 | X-Cache HIT / MISS | origin requests | transforms (sum of 3 nodes) | per node | shared hits | wall | p50 | p99 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
res = {}
for arm in ("shared", "independent"):
    mix = json.load(open(run / f"mix-{arm}.json"))
    rows = mix["rows"]
    non200 = [r for r in rows if r["status"] != 200]
    xc = collections.Counter(r["x_cache"] for r in rows)
    origin = int(open(run / f"origin-{arm}.txt").read())
    per = [delta(f"{arm}-{i}-0", f"{arm}-{i}-1", "pixgate_transform_seconds_count") for i in range(3)]
    sh = sum(delta(f"{arm}-{i}-0", f"{arm}-{i}-1", "pixgate_cache_hits_total", tier="shared") for i in range(3))
    ms = [r["ms"] for r in rows if r["status"] == 200]
    res[arm] = (origin, sum(per))
    if non200:
        problems.append(f"mix {arm}: {len(non200)} non-200, e.g. {non200[:3]}")
    print(f"| {arm} | {len(rows)} | {mix['distinct']} | {len(non200)} | {xc.get('HIT', 0)} / {xc.get('MISS', 0)} | {origin} | "
          f"{sum(per):.0f} | {' + '.join(f'{x:.0f}' for x in per)} | {sh:.0f} | {mix['wall_s']:.1f} s | "
          f"{pct(ms, 50):.1f} ms | {pct(ms, 99):.0f} ms |")
(o_s, t_s), (o_i, t_i) = res["shared"], res["independent"]
print(f"\nsaved by the shared tier: origin requests {o_i} -> {o_s} ({1 - o_s / o_i:.0%} fewer), "
      f"transforms {t_i:.0f} -> {t_s:.0f} ({1 - t_s / t_i:.0%} fewer)")
coal = collections.Counter()
for i in range(3):
    for r in ("won", "waited", "gave_up"):
        coal[r] += delta(f"shared-{i}-0", f"shared-{i}-1", "pixgate_shared_coalesce_total", result=r)
ops = collections.Counter()
for i in range(3):
    a, b = metrics(f"shared-{i}-0"), metrics(f"shared-{i}-1")
    for (n, ls), v in b.items():
        if n == "pixgate_shared_ops_total":
            d = v - a.get((n, ls), 0)
            if d:
                ops["/".join(x[1] for x in ls)] += d
print(f"shared arm: coalescing {dict(coal)}; Redis ops {dict(sorted(ops.items()))}")
print("Redis after (b): " + " ".join(open(run / "redis-b.txt").read().split()))
lines = (run / "node-errors.txt").read_text().splitlines()
reuse = [l for l in lines if "failed to acquire reusable stream" in l]
other = [l for l in lines if l not in reuse]
print(f"node logs: {len(reuse)} x pingora 'failed to acquire reusable stream', {len(other)} other error lines")
if other:
    problems.append("node logs: " + "\n".join(other[:10]))
print("\nproblems: " + ("none" if not problems else "\n  " + "\n  ".join(problems)))
EOF
echo "run dir: $run"
