#!/usr/bin/env bash
# Load / soak: drives a real pixgate (release build) on loopback with a mixed workload for a
# given time and reports requests, errors by kind, latency percentiles and RSS over time.
#   main load  - wrk + scripts/soak.lua: cached hits, cold transforms, passthrough, bad images
#   abuser     - one wrk connection from one address, hammering: it should get 429s
# The origin is python3's http.server over the demo samples, two fixtures and a page.
# Usage: scripts/soak.sh [seconds] [connections]   (defaults: 600 8). Everything it starts is
# stopped by pid on exit. Env: PIXGATE_BIN (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
conns=${2:-8}
scripts/deps.sh build
work=$(mktemp -d)
pids=()
. scripts/bench-lib.sh
trap cleanup EXIT
need_wrk
# PIXGATE_BIN: a built binary to run (else the release build, made when missing).
bin=${PIXGATE_BIN:-${CARGO_TARGET_DIR:-target}/release/pixgate}
[ -n "${PIXGATE_BIN:-}" ] || cargo build --release --locked --quiet

www="$work/www"
mkdir -p "$www"
cp src/demo/samples/*.jpg src/demo/samples/*.png tests/fixtures/truncated.jpg tests/fixtures/bomb.png "$www/"
printf '<!doctype html><title>soak</title><p>%s</p>\n' "$(head -c 3000 /dev/zero | tr '\0' x)" > "$www/index.html"
printf 'body{margin:0}\n%.0s' $(seq 1 200) > "$www/style.css"
origin_port=$(free_port); px_port=$(free_port); admin_port=$(free_port)
(cd "$www" && exec python3 -m http.server "$origin_port" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
cat > "$work/pixgate.yaml" <<EOC
listen: 127.0.0.1:$px_port
origin: { url: "http://127.0.0.1:$origin_port" }
server: { threads: 2, grace_period: 0s }
admin: { listen: "127.0.0.1:$admin_port" }
log: { level: warn, access: { destination: $work/access.log } }
rate_limit:
  per_ip: { rate: 100, burst: 200 }
  trusted_proxies: [127.0.0.1/32]
EOC
"$bin" --config "$work/pixgate.yaml" > "$work/pixgate.out" 2>&1 &
px_pid=$!
pids+=($px_pid)
wait_up "$px_port" "$admin_port"

rss() { awk '/VmRSS/ {print $2}' "/proc/$px_pid/status"; }
echo "soak: ${secs}s, $conns connections + 1 abuser, $(nproc) cores, $(date -u '+%F %H:%M') UTC"
echo "RSS at start: $(rss) KiB"
(
  t=0
  while [ "$t" -lt "$secs" ]; do
    sleep 10; t=$((t + 10))
    echo "$t $(rss)" >> "$work/rss"
  done
) &
pids+=($!)
wrk -t1 -c1 -d"${secs}s" -H 'X-Forwarded-For: 10.66.66.66' "http://127.0.0.1:$px_port/index.html" > "$work/wrk.abuser" &
abuser=$!
pids+=($abuser)
wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency -s scripts/soak.lua "http://127.0.0.1:$px_port/" > "$work/wrk.main"
wait "$abuser" || true
sleep 1

echo "--- main load (wrk)"
grep -E "Requests/sec|Non-2xx|Socket errors|requests in|^ +(50|75|90|99)%" "$work/wrk.main" || true
echo "--- abuser (wrk, one address)"
grep -E "Requests/sec|Non-2xx|requests in" "$work/wrk.abuser" || true
echo "--- pixgate's counts"
curl -s "http://127.0.0.1:$admin_port/metrics" > "$work/metrics"
python3 - "$work" <<'PY'
import sys, re, pathlib, collections
w = pathlib.Path(sys.argv[1])
m = (w / "metrics").read_text()
def series(name):
    for line in m.splitlines():
        if line.startswith(name + "{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            yield labels, float(line.rsplit(" ", 1)[1])
by = collections.Counter()
for l, v in series("pixgate_requests_total"):
    if l["route"] != "admin" and v:
        by[(l["route"], l["status"])] += v
print("requests by route/status:", dict(sorted(by.items())))
out = collections.Counter()
for l, v in series("pixgate_image_transforms_total"):
    if v:
        out[l["outcome"]] += v
print("transforms by outcome:", dict(out.most_common()))
for name in ("pixgate_rate_limited_total", "pixgate_origin_errors_total"):
    print(name, {tuple(l.values()): v for l, v in series(name) if v})
lines = sum(1 for _ in open(w / "access.log"))
print("access log lines:", lines)
rss = [tuple(map(int, l.split())) for l in (w / "rss").read_text().split("\n") if l.strip()]
if rss:
    print("RSS KiB over time (s: KiB):", ", ".join(f"{t}: {k}" for t, k in rss[:: max(1, len(rss) // 12)]))
    print(f"RSS at end: {rss[-1][1]} KiB, max {max(k for _, k in rss)} KiB")
PY
echo "pixgate still answering: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/healthz")"
