-- wrk script for tests/bench/run.py.
-- args: 1 mode ("tokens" | "pairs"), 2 file, 3 method, 4 path, 5 body ("" = none),
--       6 first line (pairs, 0-based), 7 wrk threads
-- tokens: each request carries a random token from the file (one token a line);
--         the requests are built in init, so each costs the same whatever the count.
-- pairs:  lines are "token hold_id" (or just "token"); thread i takes lines first+i,
--         first+i+T, ...; "{hold}" in the path becomes the hold id. Past the end it
--         wraps (counted).
-- done() prints one line "WRK_JSON {...}" with statuses (problem type for >= 300),
-- requests sent, wrapped pairs, duration and latency percentiles.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

counts = {}
sent = 0
wrapped = 0
local mode, method, path, body, lines, cursor, step

local function format(token, p)
  return wrk.format(method, p, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

function init(args)
  mode, method, path = args[1], args[3], args[4]
  body = args[5] ~= "" and args[5] or nil
  lines = {}
  for line in io.lines(args[2]) do lines[#lines + 1] = line end
  step = tonumber(args[7] or "1")
  cursor = tonumber(args[6] or "0") + id
  math.randomseed(os.time() * 7919 + id)
  if mode == "tokens" then
    -- Every request built once, before the clock starts: formatting one per call made
    -- a new string each time for a million distinct tokens but found the old one again
    -- for a thousand, so the load generator cost twice as much per request with the
    -- large table, on the cores it shares with the server.
    for i, token in ipairs(lines) do lines[i] = format(token, path) end
  end
end

function request()
  sent = sent + 1
  if mode == "tokens" then
    return lines[math.random(#lines)]
  end
  if cursor >= #lines then wrapped = wrapped + 1 end
  local token, hold = string.match(lines[(cursor % #lines) + 1], "^(%S+) ?(%S*)$")
  cursor = cursor + step
  if hold == "" then return format(token, path) end
  return format(token, (string.gsub(path, "{hold}", hold)))
end

function response(status, headers, resp_body)
  local key = tostring(status)
  if status >= 300 then
    local kind = string.match(resp_body or "", "problems/([%w%-]+)")
    if kind then key = key .. " " .. kind end
  end
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged, total_sent, total_wrapped = {}, 0, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("counts")) do merged[k] = (merged[k] or 0) + v end
    total_sent = total_sent + thread:get("sent")
    total_wrapped = total_wrapped + thread:get("wrapped")
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us": %d, "requests": %d, "sent": %d, "wrapped": %d, '
      .. '"socket_errors": %d, "statuses": {%s}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.duration, summary.requests, total_sent, total_wrapped,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
