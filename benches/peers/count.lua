-- wrk script for benches/peers/run.sh: bounds a run in count as well as time (wrk -d): each
-- thread stops after PEERS_MAX_REQUESTS responses. Used for the transform workloads only; the
-- per-response Lua callback would cost the 64-connection cached-hit runs throughput.
local max = tonumber(os.getenv("PEERS_MAX_REQUESTS") or "100000")
local n = 0
function response()
  n = n + 1
  if n >= max then
    wrk.thread:stop()
  end
end
