#!/usr/bin/env bash
# Cached small-object hits: pixgate's shield against nginx `proxy_cache` holding the same bytes,
# in one run (issue 20's target: >= 0.9x nginx's req/s).
#
# An nginx origin serves /page.html (2 KiB) and /style.css (30 KiB) with
# `Cache-Control: public, max-age=3600`. In front of it, each on a free 127.0.0.1 port:
#   - nginx proxy_cache (NGINX_WORKERS workers, keys zone in memory, files in the run dir);
#   - one pixgate per binary in PIXGATE_BINS (space-separated; each copied first, so a rebuild
#     cannot swap it), with the shield on (`cache.scope: all`, the default), access log off,
#     and PIXGATE_YAML_EXTRA appended to its `server:` map (e.g. "work_stealing: true").
# Every cache is warmed and checked (same bytes as the origin, a HIT), then each object is
# measured ROUNDS times with `wrk -t2 -cCONNS -dSECS`, the servers in rotating order. Beside
# req/s, the CPU time (user + system, all of the server's processes or threads) per request
# is reported: less sensitive than req/s to what else the 2-core machine runs.
#
# Usage: benches/peers/shield_hits.sh
# Env: PIXGATE_BINS (default target/release/pixgate), SECS (8), CONNS (64), ROUNDS (3),
#      NGINX_WORKERS (2), PIXGATE_YAML_EXTRA (""), HITS_WORK (target/shield-hits).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${SECS:-8}
conns=${CONNS:-64}
rounds=${ROUNDS:-3}
workers=${NGINX_WORKERS:-2}
bins=${PIXGATE_BINS:-target/release/pixgate}
for c in nginx wrk curl python3; do
  command -v $c >/dev/null || { echo "missing: $c (apt-get install nginx-light wrk curl python3)" >&2; exit 1; }
done
run=$(realpath -m "${HITS_WORK:-target/shield-hits}")/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run/www" "$run/nginx/logs" "$run/nginx/tmp" "$run/nginx/cache"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  find "$run" -maxdepth 1 -name 'pixgate-*' -type f -perm -u+x -delete 2>/dev/null || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

python3 - "$run/www" <<'EOF'
import sys
d = sys.argv[1]
page = "<!doctype html><title>hit</title>\n" + "<p>pixgate shield hit benchmark page.</p>\n" * 60
open(f"{d}/page.html", "w").write(page[:2048].ljust(2048))
rule = ".c{:05d} {{ margin: 0 auto; padding: 4px 8px; color: #333; }}\n"
css, i = "", 0
while len(css) + len(rule.format(i)) <= 30 * 1024:
    css += rule.format(i); i += 1
open(f"{d}/style.css", "w").write(css.ljust(30 * 1024))
EOF

origin_port=$(free_port); cache_port=$(free_port)
user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
cat > "$run/nginx/nginx.conf" <<EOF
$user
worker_processes $workers;
pid $run/nginx/nginx.pid;
error_log $run/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  types { text/html html; text/css css; }
  client_body_temp_path $run/nginx/tmp; proxy_temp_path $run/nginx/tmp;
  fastcgi_temp_path $run/nginx/tmp; uwsgi_temp_path $run/nginx/tmp; scgi_temp_path $run/nginx/tmp;
  proxy_cache_path $run/nginx/cache keys_zone=hits:10m;
  server {
    listen 127.0.0.1:$origin_port;
    root $run/www;
    add_header Cache-Control "public, max-age=3600" always;
  }
  server {
    listen 127.0.0.1:$cache_port;
    location / {
      proxy_pass http://127.0.0.1:$origin_port;
      proxy_cache hits;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
chmod -R a+rX "$run"
nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" -g 'daemon off;' 2> "$run/nginx.err" &
nginx_master=$!
pids+=($nginx_master)

names=(nginx); ports=($cache_port)
i=0
for b in $bins; do
  [ -x "$b" ] || { echo "no pixgate binary at $b" >&2; exit 1; }
  i=$((i + 1)); cp "$b" "$run/pixgate-$i"
  port=$(free_port); admin=$(free_port)
  cat > "$run/pixgate-$i.yaml" <<EOF
listen: 127.0.0.1:$port
origin: { url: "http://127.0.0.1:$origin_port" }
server: { threads: 2, grace_period: 0s, upgrade_sock: $run/pixgate-$i.sock, ${PIXGATE_YAML_EXTRA:-} }
admin: { listen: "127.0.0.1:$admin" }
log: { level: warn, access: { enabled: false } }
EOF
  "$run/pixgate-$i" --config "$run/pixgate-$i.yaml" > "$run/pixgate-$i.out" 2>&1 &
  pids+=($!)
  names+=("pixgate-$i"); ports+=($port)
  echo "pixgate-$i = $b ($(git -C "$(dirname "$b")" rev-parse --short HEAD 2>/dev/null || echo '?'))"
done

wait_up() { for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$1/page.html" && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }
wait_up "$origin_port"
for p in "${ports[@]}"; do wait_up "$p"; done

# The processes whose CPU time is counted: nginx's workers, or the pixgate process.
server_pids() { if [ "$1" = nginx ]; then pgrep -P "$nginx_master" -f 'worker process' | tr '\n' ' '; else echo "${pids[$2]}"; fi; }
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }

for obj in page.html style.css; do
  want=$(curl -sf "http://127.0.0.1:$origin_port/$obj" | sha256sum)
  for k in "${!ports[@]}"; do
    for _ in 1 2 3; do curl -sf -o /dev/null "http://127.0.0.1:${ports[$k]}/$obj"; done
    got=$(curl -sf "http://127.0.0.1:${ports[$k]}/$obj" | sha256sum)
    [ "$got" = "$want" ] || { echo "${names[$k]} serves other bytes for $obj" >&2; exit 1; }
  done
done
for k in "${!ports[@]}"; do
  [ "${names[$k]}" = nginx ] && continue
  curl -s -D - -o /dev/null "http://127.0.0.1:${ports[$k]}/style.css" | grep -qi '^x-cache: *hit' ||
    { echo "${names[$k]} does not answer style.css from its cache" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)
results=$run/results.tsv
printf 'object\tround\tserver\treq_s\tcpu_us_per_req\n' > "$results"
n=${#ports[@]}
for obj in page.html style.css; do
  for r in $(seq 1 "$rounds"); do
    for j in $(seq 0 $((n - 1))); do
      k=$(( (j + r - 1) % n ))
      sp=$(server_pids "${names[$k]}" $((k)))
      t0=$(cpu_ticks "$sp")
      out=$(wrk -t2 -c"$conns" -d"${secs}s" "http://127.0.0.1:${ports[$k]}/$obj")
      t1=$(cpu_ticks "$sp")
      echo "$out" > "$run/wrk-$obj-${names[$k]}-r$r.txt"
      if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then echo "errors: $run/wrk-$obj-${names[$k]}-r$r.txt" >&2; fi
      rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      cpu=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $hz / $reqs, 1))")
      printf '%s\t%s\t%s\t%s\t%s\n' "$obj" "$r" "${names[$k]}" "$rps" "$cpu" | tee -a "$results"
    done
  done
done

python3 - "$results" <<'EOF'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("\n| object | server | req/s (mean of rounds) | CPU µs/request | req/s vs nginx | CPU vs nginx |")
print("|---|---|---|---|---|---|")
for obj in dict.fromkeys(r["object"] for r in rows):
    mean = {}
    for s in dict.fromkeys(r["server"] for r in rows):
        sel = [r for r in rows if r["object"] == obj and r["server"] == s]
        mean[s] = (st.mean(float(r["req_s"]) for r in sel), st.mean(float(r["cpu_us_per_req"]) for r in sel))
    for s, (rps, cpu) in mean.items():
        print(f"| {obj} | {s} | {rps:,.0f} | {cpu:.1f} | {rps / mean['nginx'][0]:.2f}× | {cpu / mean['nginx'][1]:.2f}× |")
EOF
echo "run dir: $run"
