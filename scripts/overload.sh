#!/usr/bin/env bash
# Behaviour past the sustainable load: finds the rate of cold transforms pixgate sustains
# (closed loop), then offers 1x and 2x that rate open loop (arrivals do not wait for answers,
# as real clients do), once with `limits.overload: original` (fail-open) and once with
# `reject`, while a second open-loop stream asks for a cached variant. Reports status and
# outcome counts, latency percentiles and RSS. Loopback only; every run is bounded in time.
#
# Usage: scripts/overload.sh [seconds-per-step]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
work=$(mktemp -d)
pids=()
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
trap cleanup EXIT

cargo build --release --locked --bin pixgate --example loadgen >&2
bin=target/release/pixgate
gen=target/release/examples/loadgen

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# start MODE: a pixgate on the embedded demo origin; sets port and pid.
start() {
  port=$(free_port)
  cat > "$work/px.yaml" <<EOF
listen: 127.0.0.1:$port
log: { access: { enabled: false } }
cache: { avif_budget: null }
limits: { overload: $1, max_concurrent_transforms: 2, max_queued_transforms: 16, queue_timeout: 2s }
EOF
  "$bin" --config "$work/px.yaml" > "$work/px.$1.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_up "$port"
}

echo "machine: $(nproc) cores, $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(date -u +%F)"
# Cold WebP transforms of the 0.24 MP demo photo, each at a new width so none is a hit.
cold="/samples/coffee.jpg?w={n}"
accept="image/webp,*/*"
for mode in original reject; do
  start "$mode"
  # Warm the cached variant used by the hit stream.
  curl -s -o /dev/null -H "Accept: $accept" "http://127.0.0.1:$port/samples/coffee.jpg"
  closed=$("$gen" --url "http://127.0.0.1:$port$cold" --accept "$accept" --connections 4 --seconds "$secs" --first 200)
  rate=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["rate"], 1))' "$closed")
  echo "[$mode] closed loop, 4 connections: $closed"
  for mult in 1 2; do
    offered=$(python3 -c "print(round($rate * $mult, 1))")
    rss0=$(rss_kib "$pid")
    "$gen" --url "http://127.0.0.1:$port/samples/coffee.jpg" --accept "$accept" --rate 200 --seconds "$secs" > "$work/hits.json" &
    hp=$!
    cold_out=$("$gen" --url "http://127.0.0.1:$port$cold" --accept "$accept" --rate "$offered" --seconds "$secs" --first $((1000 * mult + 10000)))
    wait "$hp"
    rss1=$(rss_kib "$pid")
    echo "[$mode] ${mult}x = $offered/s cold: $cold_out"
    echo "[$mode] ${mult}x hits at 200/s alongside: $(cat "$work/hits.json")"
    echo "[$mode] ${mult}x RSS: $((rss0 / 1024)) MiB -> $((rss1 / 1024)) MiB"
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
