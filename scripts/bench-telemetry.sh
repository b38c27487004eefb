#!/usr/bin/env bash
# What metrics and the access log cost on the cached-hit path: three pixgates in one run,
# identical but for telemetry, driven in turn (A B C, repeated) by wrk on the same cached WebP:
#   full      - metrics.per_request on, access log on (JSON lines to a file)
#   no-log    - metrics.per_request on, access log off
#   bare      - both off (the cache, transform and origin counters remain: they are not
#               per request)
# Usage: scripts/bench-telemetry.sh [seconds per run] [connections] [rounds]   (10 64 2)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
rounds=${3:-2}
scripts/deps.sh build
work=$(mktemp -d)
pids=()
. scripts/bench-lib.sh
trap cleanup EXIT
need_wrk
cargo build --release --locked --quiet

path=/samples/coffee.jpg
accept='image/webp,*/*'
declare -A port
for name in full no-log bare; do
  port[$name]=$(free_port)
  case $name in
    full) tele="log: { access: { destination: $work/access.log } }" ;;
    no-log) tele="log: { access: { enabled: false } }" ;;
    bare) tele="log: { access: { enabled: false } }
metrics: { per_request: false }" ;;
  esac
  cat > "$work/$name.yaml" <<EOC
listen: 127.0.0.1:${port[$name]}
origin: { url: builtin:demo }
server: { threads: 2, grace_period: 0s }
$tele
EOC
  PIXGATE_LOG=warn target/release/pixgate --config "$work/$name.yaml" > "$work/$name.out" 2>&1 &
  pids+=($!)
done
wait_up "${port[full]}" "${port[no-log]}" "${port[bare]}"
for name in full no-log bare; do
  curl -s -o /dev/null -H "Accept: $accept" "http://127.0.0.1:${port[$name]}$path"
  curl -s -o /dev/null -w "  $name: %{http_code} %{content_type} %{size_download} B\n" \
    -H "Accept: $accept" "http://127.0.0.1:${port[$name]}$path"
done
echo "cached hit, $path as WebP, $conns connections, ${secs}s x $rounds rounds, $(nproc) cores, $(date -u +%F)"
for r in $(seq 1 "$rounds"); do
  for name in full no-log bare; do run "$name" "${port[$name]}"; done
done
echo "access log lines written by 'full': $(wc -l < "$work/access.log")"
python3 - "$work" <<'PY'
import sys, pathlib
w = pathlib.Path(sys.argv[1])
mean = {n: sum(map(float, (w / f"rps.{n}").read_text().split())) / len((w / f"rps.{n}").read_text().split())
        for n in ("full", "no-log", "bare")}
for n, v in mean.items():
    print(f"mean {n:7s} {v:10.0f} req/s  ({v / mean['bare']:.3f} of bare)")
print(f"access log costs {1 - mean['full'] / mean['no-log']:+.1%}, per-request metrics {1 - mean['no-log'] / mean['bare']:+.1%}")
PY
