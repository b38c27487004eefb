#!/usr/bin/env bash
# Measures the cached-hit path: requests/s and latency of one cached WebP variant served by
# pixgate, and, in the same run, by nginx's proxy_cache holding the same bytes (the limit for
# serving a stored response). Loopback, wrk, both servers on the same 2 cores as the client.
#
# Usage: scripts/bench-hit.sh [seconds per run] [connections]     (defaults: 10 64)
# Environment: HIT_PATH (default /samples/coffee.jpg, a 35 KB WebP), WRITE_BUFFER (pixgate's
# server.write_buffer, default the built-in one).
# Installs wrk and nginx-light with apt-get when missing; cleans up every process it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
scripts/deps.sh build
for bin in wrk nginx; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq wrk nginx-light >/dev/null
  fi
done
cargo build --release --locked --quiet
work=$(mktemp -d)
pids=()
. scripts/bench-lib.sh
trap cleanup EXIT
chmod 755 "$work"
px_port=$(free_port); admin_port=$(free_port); nx_port=$(free_port); pd_port=$(free_port)

cat > "$work/pixgate.yaml" <<EOF
listen: 127.0.0.1:$px_port
origin: { url: builtin:demo }
server: { threads: 2, grace_period: 0s${WRITE_BUFFER:+, write_buffer: $WRITE_BUFFER} }
admin: { listen: 127.0.0.1:$admin_port }
EOF
PIXGATE_LOG=warn target/release/pixgate --config "$work/pixgate.yaml" > "$work/pixgate.out" 2>&1 &
pids+=($!)
# A second pixgate whose memory tier holds nothing: every hit is a sealed-file read + decrypt.
cat > "$work/pixgate-disk.yaml" <<EOF
listen: 127.0.0.1:$pd_port
origin: { url: builtin:demo }
server: { threads: 2, grace_period: 0s${WRITE_BUFFER:+, write_buffer: $WRITE_BUFFER} }
cache: { memory: { max_bytes: 0 }, disk: { dir: $work/disk, max_bytes: 64MiB } }
EOF
PIXGATE_LOG=warn target/release/pixgate --config "$work/pixgate-disk.yaml" > "$work/pixgate-disk.out" 2>&1 &
pids+=($!)

# nginx caches pixgate's own WebP answer, so both serve the same bytes.
mkdir -p "$work/nginx/cache" "$work/nginx/tmp"
chmod -R 777 "$work/nginx"
[ "$(id -u)" -eq 0 ] && nginx_user="user root;" || nginx_user=""
cat > "$work/nginx.conf" <<EOF
$nginx_user
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  proxy_cache_path $work/nginx/cache levels=1:2 keys_zone=img:10m max_size=100m;
  server {
    listen 127.0.0.1:$nx_port;
    location / {
      proxy_pass http://127.0.0.1:$px_port;
      proxy_cache img;
      proxy_cache_key "\$uri\$http_accept";
      proxy_cache_valid 200 1h;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

path=${HIT_PATH:-/samples/coffee.jpg}
accept='image/webp,*/*'
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$px_port/" && curl -s -o /dev/null "http://127.0.0.1:$nx_port/" &&
    curl -s -o /dev/null "http://127.0.0.1:$pd_port/" && break
  sleep 0.1
done
# Warm both caches and show what is served.
for port in $px_port $nx_port $pd_port; do
  curl -s -o /dev/null -H "Accept: $accept" "http://127.0.0.1:$port$path"
  curl -s -D- -o "$work/body.$port" -H "Accept: $accept" "http://127.0.0.1:$port$path" |
    grep -iE '^(content-type|content-length|x-cache):' | tr -d '\r' | sed "s/^/  :$port /"
done

echo "cached hit, $path as WebP, $conns connections, ${secs}s each, $(nproc) cores, $(date -u +%F)"
run "pixgate (memory hit)" "$px_port"
run "nginx proxy_cache" "$nx_port"
run "pixgate (again)" "$px_port"
sleep 0.5 # the disk write-behind of the warm-up request
run "pixgate (disk hit)" "$pd_port"
python3 - "$work" <<'EOF'
import sys, pathlib
w = pathlib.Path(sys.argv[1])
px = [float((w / f"rps.{n}").read_text().split()[0]) for n in ("pixgate (memory hit)", "pixgate (again)")]
nx = float((w / "rps.nginx proxy_cache").read_text().split()[0])
print(f"pixgate / nginx: {sum(px) / len(px) / nx:.2f} (mean of the two pixgate runs around nginx)")
EOF
