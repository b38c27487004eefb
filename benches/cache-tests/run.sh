#!/usr/bin/env bash
# HTTP caching conformance: the http-tests/cache-tests suite (the one behind cache-tests.fyi)
# against nginx proxy_cache and pixgate (cache.scope: all, the shield), each a reverse proxy in
# front of the suite's own test server, on free 127.0.0.1 ports. Results (the suite's JSON, one
# file per proxy), logs, configs and summary.md go to one run directory.
#
# Usage: benches/cache-tests/run.sh [proxy...]    (proxies: nginx pixgate origin; default: nginx pixgate)
#        (origin = the suite server itself, no cache: a baseline for the harness)
# Env:   CACHE_TESTS_DIR  checkout of github.com/http-tests/cache-tests (default target/cache-tests/suite;
#                         cloned there at CACHE_TESTS_REV when missing, which needs github.com)
#        CACHE_TESTS_REV  commit cloned when CACHE_TESTS_DIR is missing (default below)
#        CACHE_TESTS_OUT  output directory (default target/cache-tests); each run in run-<UTC time>/
#        CACHE_TESTS_ID   run only this test id, printing requests/responses (debugging)
#        CACHE_TESTS_TIMEOUT  seconds one client run may take (default 900)
#        PIXGATE_BIN      pixgate binary (default target/release/pixgate; not built by this script)
#        NGINX_USE_STALE  nginx proxy_cache_use_stale parameters (default off)
# Needs: node (>= 20) + npm (the suite's dependencies are installed with `npm install` from the
# registry into the checkout when missing), nginx, curl, python3. Every process it starts is
# stopped, by pid, on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/cache-tests
default_rev=b55b8bda3dbb8c927c04e85bd8d496a8caa3e4ba # cache-tests master, 2026-07-20
suite=$(realpath -m "${CACHE_TESTS_DIR:-target/cache-tests/suite}")
out=$(realpath -m "${CACHE_TESTS_OUT:-target/cache-tests}")
client_timeout=${CACHE_TESTS_TIMEOUT:-900}
test_id=${CACHE_TESTS_ID:-}
pixgate_src=${PIXGATE_BIN:-target/release/pixgate}
if [ $# -gt 0 ]; then proxies=("$@"); else proxies=(nginx pixgate); fi
for p in "${proxies[@]}"; do
  case $p in nginx|pixgate|origin) ;; *) echo "unknown proxy '$p' (nginx, pixgate, origin)" >&2; exit 2 ;; esac
done

for tool in node npm curl python3; do
  command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
[[ " ${proxies[*]} " != *" nginx "* ]] || command -v nginx >/dev/null ||
  { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
if [[ " ${proxies[*]} " == *" pixgate "* ]] && ! [ -x "$pixgate_src" ]; then
  echo "no pixgate binary at $pixgate_src: cargo build --release --bin pixgate, or set PIXGATE_BIN" >&2
  exit 1
fi

# ---- the suite (a checkout; never committed here) ---------------------------------------------
if ! [ -f "$suite/test-engine/cli.mjs" ]; then
  if [ -n "${CACHE_TESTS_DIR:-}" ]; then
    echo "CACHE_TESTS_DIR=$suite is not a cache-tests checkout (no test-engine/cli.mjs)" >&2
    exit 1
  fi
  rev=${CACHE_TESTS_REV:-$default_rev}
  echo "cloning http-tests/cache-tests at $rev into $suite" >&2
  mkdir -p "$(dirname "$suite")"
  git clone -q https://github.com/http-tests/cache-tests.git "$suite" ||
    { echo "clone failed: get a checkout by other means and set CACHE_TESTS_DIR (see $here/README.md)" >&2; exit 1; }
  git -C "$suite" checkout -q "$rev"
fi
if ! [ -d "$suite/node_modules/undici" ]; then
  # The client needs undici (interim-response tests); liquidjs/marked/npm are listed too. No
  # lock file is published, so this resolves package.json's ranges against the registry.
  echo "installing the suite's npm dependencies into $suite/node_modules" >&2
  (cd "$suite" && npm install --omit=dev --no-audit --no-fund --loglevel=error)
fi
suite_rev=$(git -C "$suite" rev-parse HEAD 2>/dev/null || echo unknown)

# ---- run directory, processes, cleanup ------------------------------------------------------
run=$out/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run/logs" "$run/nginx/cache" "$run/nginx/tmp"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$run/pixgate"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # wait_up NAME PORT PID: until http://127.0.0.1:PORT/ answers (at most 30 s)
  for _ in $(seq 1 300); do
    kill -0 "$3" 2>/dev/null || { echo "$1 exited at start (see $run/logs/)" >&2; return 1; }
    curl -s -m 2 -o /dev/null "http://127.0.0.1:$2/" && return 0
    sleep 0.1
  done
  echo "$1: nothing answers on 127.0.0.1:$2 (see $run/logs/)" >&2
  return 1
}

# The suite's server listens on every interface (server.listen(port)); this preload gives a bare
# port listen 127.0.0.1, so nothing here is reachable from outside.
cat > "$run/loopback.mjs" <<'EOF'
import net from 'node:net'
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const port = args[0]
  if ((typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) &&
      typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  return listen.apply(this, args)
}
EOF

origin_port=$(free_port)
(cd "$suite" && exec env npm_package_config_protocol=http npm_config_port="$origin_port" \
  npm_config_pidfile="$run/server.pid" node --import "$run/loopback.mjs" test-engine/server/server.mjs) \
  > "$run/logs/server.log" 2>&1 &
pids+=($!)
wait_up "suite server" "$origin_port" "$!"

declare -A port
for p in "${proxies[@]}"; do
  case $p in
  origin)
    port[origin]=$origin_port
    ;;
  nginx)
    port[nginx]=$(free_port)
    nginx_user=""
    [ "$(id -u)" -eq 0 ] && nginx_user="user root;" # workers must write the run directory
    cat > "$run/nginx.conf" <<EOF
# nginx proxy_cache for cache-tests: only the origin's headers decide freshness (no
# proxy_cache_valid). proxy_cache_use_stale is \$NGINX_USE_STALE (default off): nginx still
# serves stale where the origin's stale-while-revalidate / stale-if-error allow it, refreshing
# in the background; 'error timeout ...' would also serve stale past must-revalidate.
$nginx_user
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/logs/nginx-error.log warn;
events { worker_connections 512; }
http {
  access_log $run/logs/nginx-access.log;
  client_body_temp_path $run/nginx/tmp;
  proxy_temp_path $run/nginx/tmp;
  fastcgi_temp_path $run/nginx/tmp;
  uwsgi_temp_path $run/nginx/tmp;
  scgi_temp_path $run/nginx/tmp;
  proxy_cache_path $run/nginx/cache levels=1:2 keys_zone=cachetests:10m max_size=256m inactive=60m;
  server {
    listen 127.0.0.1:${port[nginx]};
    location / {
      proxy_pass http://127.0.0.1:$origin_port;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache cachetests;
      proxy_cache_revalidate on;
      proxy_cache_use_stale ${NGINX_USE_STALE:-off};
      proxy_cache_background_update on;
      add_header X-Cache \$upstream_cache_status always;
    }
  }
}
EOF
    nginx -p "$run/nginx" -e "$run/logs/nginx-error.log" -c "$run/nginx.conf" -g 'daemon off;' \
      > "$run/logs/nginx.out" 2>&1 &
    pids+=($!)
    wait_up nginx "${port[nginx]}" "$!"
    ;;
  pixgate)
    port[pixgate]=$(free_port)
    # A private copy: a rebuild during the run cannot swap the binary under it.
    cp "$pixgate_src" "$run/pixgate"
    cat > "$run/pixgate.yaml" <<EOF
# pixgate for cache-tests: the shield stores every GET response a shared cache may keep
# (cache.scope: all), memory tier only (disk: off, the default); admin listener off.
listen: 127.0.0.1:${port[pixgate]}
origin: { url: "http://127.0.0.1:$origin_port" }
server: { threads: 2, grace_period: 0s, upgrade_sock: $run/pixgate-upgrade.sock }
cache: { scope: all, disk: off }
admin: { listen: null }
log: { level: info, access: { enabled: true, destination: $run/logs/pixgate-access.log } }
EOF
    "$run/pixgate" check-config --config "$run/pixgate.yaml" > "$run/logs/pixgate-check.out" 2>&1 ||
      { cat "$run/logs/pixgate-check.out" >&2; exit 1; }
    "$run/pixgate" --config "$run/pixgate.yaml" > "$run/logs/pixgate.out" 2>&1 &
    pids+=($!)
    wait_up pixgate "${port[pixgate]}" "$!"
    ;;
  esac
done

# ---- versions, then the suite against each proxy --------------------------------------------
{
  echo "Date: $(date -u '+%F %H:%M') UTC. Machine: $(nproc) cores, $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release)."
  echo "Command: \`$here/run.sh ${proxies[*]}\`$([ -n "$test_id" ] && echo " (CACHE_TESTS_ID=$test_id)")."
  echo "Suite: http-tests/cache-tests $suite_rev ($suite), node $(node --version)."
  for p in "${proxies[@]}"; do
    case $p in
    nginx) echo "nginx: $(nginx -v 2>&1 | sed 's|nginx version: ||') (config: nginx.conf, proxy_cache_use_stale ${NGINX_USE_STALE:-off})." ;;
    pixgate) echo "pixgate: $("$run/pixgate" --version | head -1), $pixgate_src, sha256 $(sha256sum "$run/pixgate" | cut -c1-12) (config: pixgate.yaml)." ;;
    esac
  done
} > "$run/header.md"
cat "$run/header.md"

status=0
for p in "${proxies[@]}"; do
  base=http://127.0.0.1:${port[$p]}
  echo "== $p ($base)" >&2
  # cli.mjs reads npm's config variables (what `npm run cli --base=...` would set).
  if [ -n "$test_id" ]; then
    (cd "$suite" && npm_config_base=$base npm_config_id=$test_id \
      timeout "$client_timeout" node --no-warnings test-engine/cli.mjs) | tee "$run/$p-$test_id.txt" || status=1
    continue
  fi
  start=$SECONDS
  if ! (cd "$suite" && npm_config_base=$base npm_package_config_id='' \
      timeout "$client_timeout" node --no-warnings test-engine/cli.mjs) \
      > "$run/$p.json" 2> "$run/logs/client-$p.log"; then
    echo "the suite client failed against $p (see $run/logs/client-$p.log)" >&2
    status=1
    continue
  fi
  echo "   $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$run/$p.json") results in $((SECONDS - start)) s" >&2
done
[ -z "$test_id" ] || exit $status

# Test metadata (id, name, kind, depends_on) from the suite's own tests/index.mjs.
(cd "$suite" && node --input-type=module -e "
  const { default: suites } = await import('./tests/index.mjs')
  const out = []
  for (const s of suites) for (const t of s.tests) out.push({ suite: s.id, id: t.id, name: t.name,
    kind: t.kind, depends_on: t.depends_on, browser_only: t.browser_only })
  console.log(JSON.stringify(out))") > "$run/tests.json"

args=()
for p in "${proxies[@]}"; do [ -s "$run/$p.json" ] && args+=("$p=$run/$p.json"); done
[ ${#args[@]} -gt 0 ] || exit 1
export PYTHONDONTWRITEBYTECODE=1
python3 "$here/summarize.py" --tests "$run/tests.json" --header "$run/header.md" \
  --markdown "$run/summary.md" "${args[@]}" | tee "$run/summary.txt"
echo "results: $run" >&2
exit $status
