# Shared by the bench-*.sh scripts (sourced): ports, readiness, one wrk run, cleanup by pid.
# Callers set: work (temp dir), secs, conns, accept, path; and append started pids to `pids`.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

need_wrk() {
  if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq wrk >/dev/null
  fi
}

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

# wait_up PORT...: until each answers (at most 10 s).
wait_up() {
  for port in "$@"; do
    for _ in $(seq 1 100); do
      curl -s -o /dev/null "http://127.0.0.1:$port/" && break
      sleep 0.1
    done
  done
}

# run NAME PORT: one wrk run on $path with $accept; prints a row and leaves rps.NAME in $work.
run() {
  local name=$1 port=$2
  local threads=2; [ "$conns" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "Accept: $accept" "http://127.0.0.1:$port$path" > "$work/wrk.$name"
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.$name")
  p50=$(awk '$1=="50%" {print $2}' "$work/wrk.$name")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.$name")
  printf '%-34s %10s req/s   p50 %-9s p99 %-9s\n' "$name" "$rps" "$p50" "$p99"
  echo "$rps" >> "$work/rps.$name"
}
