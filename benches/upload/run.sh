#!/usr/bin/env bash
# Upload throughput (issue 19): POST /api/v1/images?format=webp on each image, 2 clients, closed
# loop, against libwebp's own `cwebp` run as 2 parallel loops on the same files with the same
# settings (quality 78, method 4, no metadata) in the same run: the ratio is what the service
# (HTTP, multipart-free raw body, screening, decode, encode, store, JSON) costs over the bare
# encoder.
#
# Usage: benches/upload/run.sh [seconds per cell] IMAGE...   (default 15 s)
# Env: PIXGATE_BIN (default target/release/pixgate), LOADGEN_BIN (target/release/examples/loadgen).
# Installs cwebp (Debian package webp) when missing. Prints one Markdown table row per image.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 [seconds] IMAGE..." >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
bin=${PIXGATE_BIN:-$target/release/pixgate}
loadgen=${LOADGEN_BIN:-$target/release/examples/loadgen}
[ -x "$bin" ] || cargo build --release --locked
[ -x "$loadgen" ] || cargo build --release --locked --example loadgen
command -v cwebp >/dev/null || {
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq webp >/dev/null
}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
up=$(port); px=$(port)
cat > "$work/pixgate.yaml" <<YAML
listen: 127.0.0.1:$px
origin: { url: "builtin:demo" }
log: { level: warn, access: { enabled: false } }
upload:
  listen: 127.0.0.1:$up
  rate_limit: null
  uploads_per_hour: null
  bytes_per_day: null
  retention: 60s
YAML
"$bin" --config "$work/pixgate.yaml" >/dev/null 2>"$work/stderr" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$up/api/v1/info" >/dev/null && break; sleep 0.1; done
echo "| image | pixels | in bytes | pixgate uploads/s (p50 / p99 ms) | out bytes | cwebp encodes/s | out bytes | pixgate / cwebp |"
echo "|---|---|---|---|---|---|---|---|"
for img in "$@"; do
  name=$(basename "$img")
  case "$img" in *.png) ct=image/png ;; *.webp) ct=image/webp ;; *) ct=image/jpeg ;; esac
  # one upload for the sizes
  one=$(curl -s --data-binary @"$img" -H "Content-Type: $ct" "http://127.0.0.1:$up/api/v1/images?format=webp&quality=78")
  read -r w h ob < <(python3 -c 'import json,sys;f=json.loads(sys.argv[1])["files"][0];print(f["width"],f["height"],f["output_bytes"])' "$one")
  res=$("$loadgen" --url "http://127.0.0.1:$up/api/v1/images?format=webp&quality=78" \
        --body "$img" --content-type "$ct" --connections 2 --seconds "$secs")
  read -r rate p50 p99 < <(python3 -c 'import json,sys;r=json.loads(sys.argv[1]);print(round(r["rate"],2),round(r["p50_ms"]),round(r["p99_ms"]))' "$res")
  # cwebp: 2 parallel loops for the same time
  cw() { local n=0 end=$((SECONDS + secs)); while [ $SECONDS -lt $end ]; do cwebp -quiet -q 78 -m 4 -metadata none "$img" -o "$work/$1.webp"; n=$((n+1)); done; echo $n; }
  t0=$(date +%s.%N)
  cw a > "$work/na" & pa=$!
  cw b > "$work/nb" & pb=$!
  wait $pa $pb
  t1=$(date +%s.%N)
  n=$(( $(cat "$work/na") + $(cat "$work/nb") ))
  crate=$(python3 -c "print(round($n/($t1-$t0),2))")
  cb=$(stat -c %s "$work/a.webp")
  ratio=$(python3 -c "print(round($rate/$crate,2))")
  echo "| $name | ${w}×${h} | $(stat -c %s "$img") | $rate ($p50 / $p99) | $ob | $crate | $cb | ${ratio}× |"
done
