-- Mixed workload for scripts/soak.sh (wrk). Per request, by weight:
--   55 %  cached hits: 4 images x 2 Accept variants
--   10 %  cold transforms: a new URL each time (a new cache key), width 64-763
--   20 %  passthrough: an HTML page and a CSS file
--   15 %  bad images: truncated JPEG, PNG bomb, an image 404
-- Each request comes from a random client address in X-Forwarded-For (pixgate trusts the
-- loopback peer), so the per-IP limit does not bite on this traffic.
local hits = {"/coffee.jpg", "/retina.jpg", "/rocket-exif.jpg", "/chelsea-cutout.png"}
local accepts = {"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/webp,*/*"}
local pages = {"/index.html", "/style.css"}
local bad = {"/truncated.jpg", "/bomb.png", "/missing.jpg"}
local n = 0
local seed = tonumber(os.getenv("SOAK_SEED") or "1")

function setup(thread)
  thread:set("tid", seed * 1000 + math.random(999))
end

function init(args)
  math.randomseed(tid)
end

request = function()
  n = n + 1
  local r = math.random(100)
  local path, accept
  if r <= 55 then
    path = hits[math.random(#hits)]
    accept = accepts[math.random(#accepts)]
  elseif r <= 65 then
    -- `v` is not a transform option: it reaches the origin and makes the cache key new.
    path = "/coffee.jpg?w=" .. (64 + (n % 700)) .. "&v=" .. tid .. "-" .. n
    accept = "image/webp,*/*"
  elseif r <= 85 then
    path = pages[math.random(#pages)]
    accept = "text/html,*/*"
  else
    path = bad[math.random(#bad)]
    accept = accepts[1]
  end
  local xff = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format("GET", path, {["Accept"] = accept, ["X-Forwarded-For"] = xff})
end
