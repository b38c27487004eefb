#!/usr/bin/env bash
# Passthrough added latency: pixgate in front of an nginx origin against that origin directly,
# for the target "passthrough p99 added latency vs direct origin <= 1 ms", with a peer proxy in
# the same run: a second nginx as a plain reverse proxy (proxy_pass to the origin over an
# upstream keepalive pool of 32, HTTP/1.1, no proxy_cache, its own prefix dir, free port).
#
# The origin (nginx static, its own prefix dir, foreground, free 127.0.0.1 port) serves
#   /page.html  2 KiB HTML  and  /style.css  30 KiB CSS,  both `Cache-Control: no-store`,
# so pixgate's shield cache stores neither: every request through pixgate is a passthrough.
# For each body and each load (wrk -t1 -c1: one connection, latency without queueing; and
# -t2 -c16: moderate load) each round runs direct / nginx-proxy / pixgate, odd rounds in that
# order and even rounds reversed (ROUNDS rounds), to spread drift over all three; the table
# gives p50/p90/p99 and req/s of every run, then the mean over rounds, the added latency of
# each proxy (proxy minus direct) at p50 and p99, and the ratio pixgate added / nginx added.
# wrk (4.x, not wrk2) records latency in 1 us bins and prints percentiles with 2 decimals of
# their unit: 1 us resolution below 1 ms, 10 us from 1 ms to 10 ms; enough for sub-ms values.
# wrk's client shares the machine's cores with the servers (and with the proxies' origin fetch),
# so p99 on a small machine carries scheduler noise: compare rounds before trusting one.
#
# Usage: benches/peers/passthrough_latency.sh
# Env: PIXGATE_BIN (default target/release/pixgate; used as it is, never built),
#      LAT_SECS (default 15, seconds per wrk run), ROUNDS (default 2),
#      NGINX_WORKERS (default 1; origin and peer proxy alike), PIXGATE_THREADS (default 2),
#      LAT_WORK (default target/passthrough-latency: one dir per run, kept).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${LAT_SECS:-15}
rounds=${ROUNDS:-2}
nginx_workers=${NGINX_WORKERS:-1}
pixgate_threads=${PIXGATE_THREADS:-2}
pixgate_src=${PIXGATE_BIN:-target/release/pixgate}
for c in nginx wrk curl python3; do
  command -v $c >/dev/null || { echo "missing: $c (apt-get install nginx-light wrk curl python3)" >&2; exit 1; }
done
[ -x "$pixgate_src" ] || { echo "no pixgate binary at $pixgate_src (set PIXGATE_BIN)" >&2; exit 1; }

work=$(realpath -m "${LAT_WORK:-target/passthrough-latency}")
run=$work/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run/www" "$run/nginx/logs" "$run/nginx/tmp" "$run/nginx-proxy/logs" "$run/nginx-proxy/tmp"
# A private copy: a rebuild during the run cannot swap the binary.
cp "$pixgate_src" "$run/pixgate"
pixgate=$run/pixgate

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$run/pixgate"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port=$(free_port); pixgate_port=$(free_port); admin_port=$(free_port); proxy_port=$(free_port)

# ---- bodies --------------------------------------------------------------------------------
python3 - "$run/www" <<'EOF'
import sys
d = sys.argv[1]
head = "<!doctype html><html><head><title>passthrough</title></head><body>\n"
tail = "</body></html>\n"
line = "<p>pixgate passthrough latency page, filler text to reach two kibibytes.</p>\n"
body = head
while len(body) + len(line) + len(tail) <= 2048:
    body += line
body += " " * (2048 - len(body) - len(tail)) + tail
open(f"{d}/page.html", "w").write(body)
rule = ".c{:05d} {{ margin: 0 auto; padding: 4px 8px; color: #333; }}\n"
css, i = "", 0
while len(css) + len(rule.format(i)) <= 30 * 1024:
    css += rule.format(i); i += 1
css += " " * (30 * 1024 - len(css))
open(f"{d}/style.css", "w").write(css)
EOF

# ---- origin: nginx ---------------------------------------------------------------------------
nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;"
cat > "$run/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes $nginx_workers;
pid $run/nginx/nginx.pid;
error_log $run/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { text/html html; text/css css; }
  default_type application/octet-stream;
  client_body_temp_path $run/nginx/tmp;
  proxy_temp_path $run/nginx/tmp;
  fastcgi_temp_path $run/nginx/tmp;
  uwsgi_temp_path $run/nginx/tmp;
  scgi_temp_path $run/nginx/tmp;
  server {
    listen 127.0.0.1:$origin_port;
    root $run/www;
    add_header Cache-Control "no-store" always;
  }
}
EOF
chmod -R a+rX "$run"
nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" -g 'daemon off;' 2> "$run/nginx.err" &
pids+=($!)

# ---- peer: nginx as a plain reverse proxy (no cache) ---------------------------------------
cat > "$run/nginx-proxy/nginx.conf" <<EOF
$nginx_user
worker_processes $nginx_workers;
pid $run/nginx-proxy/nginx.pid;
error_log $run/nginx-proxy/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $run/nginx-proxy/tmp;
  proxy_temp_path $run/nginx-proxy/tmp;
  fastcgi_temp_path $run/nginx-proxy/tmp;
  uwsgi_temp_path $run/nginx-proxy/tmp;
  scgi_temp_path $run/nginx-proxy/tmp;
  upstream origin {
    server 127.0.0.1:$origin_port;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$proxy_port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
chmod -R a+rX "$run/nginx-proxy"
nginx -p "$run/nginx-proxy" -c "$run/nginx-proxy/nginx.conf" -g 'daemon off;' 2> "$run/nginx-proxy.err" &
pids+=($!)

# ---- pixgate ---------------------------------------------------------------------------------
cat > "$run/pixgate.yaml" <<EOF
listen: 127.0.0.1:$pixgate_port
origin: { url: "http://127.0.0.1:$origin_port" }
server: { threads: $pixgate_threads, grace_period: 0s, upgrade_sock: $run/pixgate.sock }
admin: { listen: "127.0.0.1:$admin_port" }
log: { level: warn, access: { enabled: false } }
EOF
"$pixgate" check-config "$run/pixgate.yaml" >/dev/null
"$pixgate" --config "$run/pixgate.yaml" > "$run/pixgate.out" 2>&1 &
pids+=($!)

wait_up() { # wait_up PORT PATH: until it answers (at most 30 s)
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0
    sleep 0.1
  done
  echo "nothing answers on 127.0.0.1:$1 (see $run/*.out, $run/nginx.err)" >&2
  return 1
}
wait_up "$origin_port" /page.html
wait_up "$proxy_port" /page.html
wait_up "$admin_port" /healthz
wait_up "$pixgate_port" /page.html

# Sanity: same bytes every way, no-store passed through, and pixgate does not cache it.
for p in /page.html /style.css; do
  d=$(curl -sf "http://127.0.0.1:$origin_port$p" | sha256sum)
  x=$(curl -sf "http://127.0.0.1:$pixgate_port$p" | sha256sum)
  n=$(curl -sf "http://127.0.0.1:$proxy_port$p" | sha256sum)
  [ "$d" = "$x" ] || { echo "pixgate and origin bodies differ for $p" >&2; exit 1; }
  [ "$d" = "$n" ] || { echo "nginx-proxy and origin bodies differ for $p" >&2; exit 1; }
done
curl -s -D "$run/headers-nginx-proxy-page.txt" -o /dev/null "http://127.0.0.1:$proxy_port/page.html"
grep -qi '^cache-control: *no-store' "$run/headers-nginx-proxy-page.txt" ||
  { echo "nginx-proxy response lacks Cache-Control: no-store (see $run/headers-nginx-proxy-page.txt)" >&2; exit 1; }
curl -s -D "$run/headers-pixgate-page.txt" -o /dev/null "http://127.0.0.1:$pixgate_port/page.html"
curl -s -D "$run/headers-pixgate-css.txt" -o /dev/null "http://127.0.0.1:$pixgate_port/style.css"
grep -qi '^cache-control: *no-store' "$run/headers-pixgate-page.txt" ||
  { echo "pixgate response lacks Cache-Control: no-store (see $run/headers-pixgate-page.txt)" >&2; exit 1; }
if grep -qi '^x-cache: *hit' "$run/headers-pixgate-page.txt" "$run/headers-pixgate-css.txt"; then
  echo "pixgate answered a no-store response from its cache" >&2; exit 1
fi

# ---- measure ---------------------------------------------------------------------------------
# wrk latency value with unit (us, ms, s) -> microseconds
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
  if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 0;
  printf "%.1f", n * f }'; }
results=$run/results.tsv
: > "$results"
one() { # one LABEL URL THREADS CONNS ROUND
  local label=$1 url=$2 t=$3 c=$4 r=$5 out p50 p90 p99 rps
  out=$run/wrk-$label-$(basename "$url")-c$c-r$r.txt
  wrk -t"$t" -c"$c" -d"${secs}s" --latency "$url" > "$out"
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
  p90=$(to_us "$(awk '$1 == "90%" {print $2}' "$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  if grep -q 'Non-2xx\|Socket errors' "$out"; then
    echo "warning: errors in $out: $(grep 'Non-2xx\|Socket errors' "$out")" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$url")" "$c" "$label" "$r" "$p50" "$p90" "$p99" "$rps" >> "$results"
}
{
  echo "Date: $(date -u '+%F %H:%M') UTC. Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1), $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release). Load before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "pixgate: $("$pixgate" --version 2>/dev/null | head -1) ($pixgate_src), threads $pixgate_threads; origin $(nginx -v 2>&1 | sed 's|nginx version: ||'), $nginx_workers worker(s); peer nginx-proxy: same nginx, $nginx_workers worker(s), proxy_pass over upstream keepalive 32, HTTP/1.1, no cache; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), ${secs}s per run, $rounds rounds of direct/nginx-proxy/pixgate (even rounds reversed). Run dir: $run"
} > "$run/header.md"
cat "$run/header.md" >&2
for path in /page.html /style.css; do
  for load in "1 1" "2 16"; do
    set -- $load
    for r in $(seq 1 "$rounds"); do
      order="direct nginx-proxy pixgate"
      [ $((r % 2)) -eq 0 ] && order="pixgate nginx-proxy direct"
      echo "wrk -t$1 -c$2 -d${secs}s --latency $path  round $r: ${order// /, }" >&2
      for target in $order; do
        case $target in
          direct) port=$origin_port ;;
          nginx-proxy) port=$proxy_port ;;
          pixgate) port=$pixgate_port ;;
        esac
        one "$target" "http://127.0.0.1:$port$path" "$1" "$2" "$r"
      done
    done
  done
done

# ---- report ----------------------------------------------------------------------------------
{
  echo
  cat "$run/header.md"
  echo
  echo "| body | conns | target | round | p50 (us) | p90 (us) | p99 (us) | req/s |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$results"
  echo
  echo "Mean over rounds; added = proxy minus direct; ratio = pixgate added / nginx-proxy added (n/a when nginx added <= 0):"
  echo
  echo "| body | conns | direct p50 | nginx p50 | pixgate p50 | nginx added p50 | pixgate added p50 | ratio p50 | direct p99 | nginx p99 | pixgate p99 | nginx added p99 | pixgate added p99 | ratio p99 | direct req/s | nginx req/s | pixgate req/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' 'function ratio(p, n) { return n > 0 ? sprintf("%.2fx", p / n) : "n/a" }
    { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      n50[k, $3] += $5; n99[k, $3] += $7; rps[k, $3] += $8; cnt[k, $3]++ }
    END { for (i = 1; i <= n; i++) { k = order[i]; split(k, a, "\t")
      d50 = n50[k, "direct"] / cnt[k, "direct"]; p50 = n50[k, "pixgate"] / cnt[k, "pixgate"]
      x50 = n50[k, "nginx-proxy"] / cnt[k, "nginx-proxy"]
      d99 = n99[k, "direct"] / cnt[k, "direct"]; p99 = n99[k, "pixgate"] / cnt[k, "pixgate"]
      x99 = n99[k, "nginx-proxy"] / cnt[k, "nginx-proxy"]
      printf "| %s | %s | %.0f us | %.0f us | %.0f us | %+.0f us | %+.0f us | %s | %.0f us | %.0f us | %.0f us | %+.0f us | %+.0f us | %s | %.0f | %.0f | %.0f |\n",
        a[1], a[2], d50, x50, p50, x50 - d50, p50 - d50, ratio(p50 - d50, x50 - d50),
        d99, x99, p99, x99 - d99, p99 - d99, ratio(p99 - d99, x99 - d99),
        rps[k, "direct"] / cnt[k, "direct"], rps[k, "nginx-proxy"] / cnt[k, "nginx-proxy"],
        rps[k, "pixgate"] / cnt[k, "pixgate"] } }' "$results"
} | tee "$run/report.md"
