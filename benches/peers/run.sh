#!/usr/bin/env bash
# Peer harness (issue 7): pixgate against thumbor (PyPI), sharp (npm, prebuilt libvips) and
# nginx proxy_cache, on one machine, in one run, in front of one local origin (nginx static)
# serving a fixed image set made from the demo samples.
#
#   throughput  - each server in turn, fit into 512x512, same format in and out (JPEG 2 MP and
#                 12 MP, PNG, WebP, AVIF), cold AVIF/WebP from JPEG via Accept, 2 connections;
#                 then cached hits at 64 connections (pixgate memory tier vs nginx proxy_cache
#                 holding the same bytes). wrk, bounded by time (-d) and count (count.lua).
#   quality     - bytes and DSSIM (dssim CLI) of each server's default output per format, and
#                 q sweeps for pixgate and sharp to compare bytes at matched DSSIM.
#   photos      - the real-photo set of photos.sh (made once into $PEERS_WORK/photos), class by
#                 class (JPEG 4:2:0/4:2:2/4:4:4, big progressive, EXIF-rotated, PNG photo, PNG
#                 graphic, WebP): pixgate, thumbor and sharp fit each class's images into 512x512
#                 in the same format, checked once each (upright too), then wrk asks for them in
#                 turn (2 connections); req/s, CPU per request, mean bytes and mean DSSIM.
#                 Not part of `all`.
#
# Usage: benches/peers/run.sh [seconds per cell] [throughput|quality|all|photos|serve]
#        (defaults: 15 all; serve: start everything, print the ports, stop after `seconds`: for
#        perf by hand)
# Env: PEERS_WORK (default target/peers: venv, node_modules, image sets, one dir per run),
#      PIXGATE_BIN (default target/release/pixgate, built with cargo only when missing),
#      PHOTO_CLASSES (photos mode: only these classes, space-separated; default all).
# Installs what is missing (apt-get: nginx-light wrk libvips-tools webp libavif-bin imagemagick
# python3-venv nodejs npm; pip: thumbor into a venv; npm: sharp; cargo install dssim) and stops
# every process it started, by pid, on exit. Servers listen on free 127.0.0.1 ports only.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
what=${2:-all}
case $what in
  throughput | quality | all | photos | serve) ;;
  *) echo "usage: benches/peers/run.sh [secs] [throughput|quality|all|photos|serve]" >&2; exit 2 ;;
esac
here=benches/peers
work=$(realpath -m "${PEERS_WORK:-target/peers}")
mkdir -p "$work"

# ---- installs (each only when missing) -------------------------------------------------------
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  echo "installing with apt-get: $*" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v vips >/dev/null || need+=(libvips-tools)  # makes the PNG and 12 MP sources
command -v cwebp >/dev/null || need+=(webp)          # makes the WebP source
command -v avifenc >/dev/null || need+=(libavif-bin) # makes the AVIF source
# ImageMagick resizes the DSSIM reference: a resizer none of the servers uses. (/usr/local/bin
# may hold a stand-in `convert`; the real one is /usr/bin/convert.)
[ -x /usr/bin/convert ] || need+=(imagemagick)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

venv=$work/thumbor-venv
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import thumbor, pycurl" 2>/dev/null; then
  echo "installing thumbor into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # pycurl: thumbor warns without it ("pycurl usage is advised") and falls back to tornado's
  # simple HTTP client for its loader.
  "$venv/bin/pip" install -q --disable-pip-version-check 'thumbor==7.8.*' pycurl
fi
if ! [ -d "$work/sharp/node_modules/sharp" ]; then
  echo "installing sharp into $work/sharp" >&2
  mkdir -p "$work/sharp"
  (cd "$work/sharp" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --silent 'sharp@0.35')
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v dssim >/dev/null; then
  echo "installing dssim (cargo install)" >&2
  cargo install --locked --quiet dssim
fi
# An existing release binary is used as it is: after `cargo test --release`, `cargo build
# --release --bin pixgate` is not a no-op (dev-dependency features unify differently) and would
# recompile part of the tree.
pixgate_src=${PIXGATE_BIN:-target/release/pixgate}
if ! [ -x "$pixgate_src" ]; then
  scripts/deps.sh build
  cargo build --release --locked --quiet --bin pixgate
fi

# ---- the image set (made once into $work/images) ---------------------------------------------
img=$work/images
if ! [ -f "$img/retina-12mp.jpg" ]; then
  mkdir -p "$img"
  cp src/demo/samples/retina.jpg src/demo/samples/coffee.jpg "$img/"
  vips copy "$img/retina.jpg" "$img/retina.png"
  cwebp -quiet -q 90 "$img/retina.png" -o "$img/retina.webp"
  avifenc -j 2 -s 6 --min 10 --max 20 "$img/retina.png" "$img/retina.avif" >/dev/null
  # 12 MP (3464x3464): the 2 MP photo upscaled (Lanczos3), JPEG q90.
  vips resize "$img/retina.jpg" "$img/retina-12mp.jpg[Q=90]" 2.455 --kernel lanczos3
fi
# The real-photo set (photos mode only; made into $work/photos, its listing the last step,
# made again when photos.sh has changed since).
photos=$work/photos
stamp=$(sha1sum $here/photos.sh | cut -d' ' -f1)
if [ "$what" = photos ] && [ "$(cat "$photos/stamp" 2>/dev/null)" != "$stamp" ]; then
  mkdir -p "$photos"
  $here/photos.sh "$photos" > "$photos/classes.tmp"
  mv "$photos/classes.tmp" "$photos/classes.txt"
  echo "$stamp" > "$photos/stamp"
fi

# ---- one run directory, servers, cleanup -----------------------------------------------------
# What else is using the CPU right now (top's second frame: the last second), for the record.
others=$(top -b -n 2 -d 1 -o %CPU | awk '/^top -/ {f++} f == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 5 {
  printf "%s%s %s (nice %s) %s%%", s, $12, $1, $4, $9; s = "; " }')
run=$work/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run/www" "$run/nginx/cache" "$run/nginx/tmp" "$run/thumbor-storage"
cp "$img"/* "$run/www/"
if [ "$what" = photos ]; then
  mkdir -p "$run/www/photos"
  # The class folders (www/photos/<class>/<file>), not the downloaded packages.
  for c in "$photos"/*/; do
    [ "$(basename "$c")" = debs ] || cp -r "$c" "$run/www/photos/"
  done
fi
# A private copy: a rebuild during the run cannot swap the binary under the second start.
cp "$pixgate_src" "$run/pixgate"
pixgate=$run/pixgate
chmod -R a+rX "$run"
chmod -R 777 "$run/nginx"
pids=()
cleanup() {
  local p kids
  for p in "${pids[@]}"; do
    # thumbor --processes forks workers: list them before their parent goes.
    kids=$(pgrep -P "$p" || true)
    kill "$p" 2>/dev/null || true
    for k in $kids; do kill "$k" 2>/dev/null || true; done
  done
  wait 2>/dev/null || true
  rm -f "$run/pixgate"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port=$(free_port); cache_port=$(free_port); pixgate_port=$(free_port); pixgate_admin_port=$(free_port)
pixgate_hit_port=$(free_port); hit_admin_port=$(free_port); thumbor_port=$(free_port); sharp_port=$(free_port)
render() { # render TEMPLATE OUT NAME=VALUE...
  local t=$1 out=$2
  shift 2
  cp "$t" "$out"
  for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
}
nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;"
render $here/nginx.conf.tmpl "$run/nginx.conf" RUN="$run" WWW="$run/www" USER="$nginx_user" \
  ORIGIN_PORT="$origin_port" CACHE_PORT="$cache_port"
render $here/pixgate-transform.yaml.tmpl "$run/pixgate-transform.yaml" RUN="$run" \
  PORT="$pixgate_port" ADMIN_PORT="$pixgate_admin_port" ORIGIN_PORT="$origin_port"
render $here/pixgate-hit.yaml.tmpl "$run/pixgate-hit.yaml" RUN="$run" \
  PORT="$pixgate_hit_port" ADMIN_PORT="$hit_admin_port" ORIGIN_PORT="$origin_port"
render $here/thumbor.conf.tmpl "$run/thumbor.conf" RUN="$run"

nginx -c "$run/nginx.conf" -g 'daemon off;' 2> "$run/nginx.err" &
pids+=($!)
nginx_pid=$!
"$pixgate" --config "$run/pixgate-transform.yaml" > "$run/pixgate-transform.out" 2>&1 &
pids+=($!)
pixgate_pid=$!
"$pixgate" --config "$run/pixgate-hit.yaml" > "$run/pixgate-hit.out" 2>&1 &
pids+=($!)
pixgate_hit_pid=$!
# Two thumbor processes for two cores (thumbor transforms on its single IO loop per process).
"$venv/bin/thumbor" -i 127.0.0.1 -p "$thumbor_port" -c "$run/thumbor.conf" -l warning --processes 2 \
  > "$run/thumbor.out" 2>&1 &
pids+=($!)
thumbor_pid=$!
# One node process; sharp runs libvips on libuv's pool (4 threads), sharp.concurrency() threads
# per image (printed at start).
NODE_PATH="$work/sharp/node_modules" ORIGIN="http://127.0.0.1:$origin_port" PORT=$sharp_port \
  node $here/sharp-server.js > "$run/sharp.out" 2>&1 &
pids+=($!)
sharp_pid=$!

wait_up() { # wait_up PORT PATH: until it answers (at most 30 s)
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0
    sleep 0.1
  done
  echo "nothing answers on 127.0.0.1:$1 (see $run/*.out)" >&2
  return 1
}
wait_up "$origin_port" /coffee.jpg
wait_up "$cache_port" /coffee.jpg
wait_up "$pixgate_admin_port" /healthz
wait_up "$hit_admin_port" /healthz
wait_up "$thumbor_port" /healthcheck
wait_up "$sharp_port" /coffee.jpg

cat > "$run/env.json" <<EOF
{"secs": $secs, "max_requests": 100000, "origin_port": $origin_port, "cache_port": $cache_port,
 "pixgate_port": $pixgate_port, "pixgate_admin_port": $pixgate_admin_port,
 "pixgate_hit_port": $pixgate_hit_port, "thumbor_port": $thumbor_port, "sharp_port": $sharp_port,
 "convert": "/usr/bin/convert", "pids": {"nginx": $nginx_pid, "pixgate": $pixgate_pid,
 "pixgate-hit": $pixgate_hit_pid, "thumbor": $thumbor_pid, "sharp": $sharp_pid}}
EOF

# ---- measure ---------------------------------------------------------------------------------
{
  echo "Date: $(date -u '+%F %H:%M') UTC. Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem/ {print $2}') GiB, $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release)."
  echo "Command: \`benches/peers/run.sh $secs $what\`. Load before: $(cut -d' ' -f1-3 /proc/loadavg);"\
    "other processes over 5 % CPU before the servers started: ${others:-none}."
  echo "Versions: $("$pixgate" --version 2>/dev/null | head -1) ($pixgate_src, built $(date -u -r "$pixgate_src" '+%F %H:%M') UTC; HEAD $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src/ has uncommitted changes')),"\
    "thumbor $("$venv/bin/python" -c 'import thumbor; print(thumbor.__version__)')"\
    "(Pillow $("$venv/bin/python" -c 'import PIL; print(PIL.__version__)'), $("$venv/bin/python" -c 'from PIL import features as f; print("libjpeg-turbo", f.version("libjpeg_turbo"), "libwebp", f.version("webp"), "libavif", f.version("avif"))')),"\
    "$(head -1 "$run/sharp.out"), $(nginx -v 2>&1 | sed 's|nginx version: ||'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), dssim $(dssim --help 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p')."
} > "$run/header.md"
cat "$run/header.md"
py="$venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in benches/peers/
if [ "$what" = serve ]; then
  # For experiments by hand (perf, curl): everything up for $secs seconds, then stopped.
  echo "serving for ${secs}s: $(cat "$run/env.json")"
  # A background sleep, so that a signal to this script runs the cleanup at once.
  sleep "$secs" &
  pids+=($!)
  wait "${pids[-1]}"
  exit 0
fi
if [ "$what" = all ] || [ "$what" = throughput ]; then
  "$py" $here/peers.py bench "$run"
fi
if [ "$what" = all ] || [ "$what" = quality ]; then
  "$py" $here/peers.py quality "$run"
fi
if [ "$what" = photos ]; then
  "$py" $here/peers.py photos "$run"
fi
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)." >> "$run/header.md"
{
  cat "$run/header.md"
  for t in throughput quality photos; do
    [ -f "$run/$t.md" ] && { echo; cat "$run/$t.md"; }
  done
} > "$run/results.md"
cp "$run/results.md" "$work/results-latest.md"
echo
echo "results: $run/results.md (also $work/results-latest.md); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
