-- wrk script for benches/peers/run.sh: bounds a run in count as well as time (wrk -d): each
-- thread stops after PEERS_MAX_REQUESTS responses. Used for the transform workloads only; the
-- per-response Lua callback would cost the 64-connection cached-hit runs throughput.
-- With PEERS_PATHS (a file of request paths, one a line: the photos workloads), each request
-- takes the next path in turn instead of the URL's, round robin; thread i starts at path i + 1.
local max = tonumber(os.getenv("PEERS_MAX_REQUESTS") or "100000")
local n = 0
function response()
  n = n + 1
  if n >= max then
    wrk.thread:stop()
  end
end

local paths_file = os.getenv("PEERS_PATHS")
if paths_file then
  local threads = 0
  function setup(thread)
    thread:set("first", threads)
    threads = threads + 1
  end
  local paths, i = {}, 0
  function init()
    for line in io.lines(paths_file) do
      paths[#paths + 1] = line
    end
    i = first or 0
  end
  function request()
    i = i % #paths + 1
    return wrk.format(nil, paths[i])
  end
end
