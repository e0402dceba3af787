-- rate_limit: take one request from each allowance, or from none. An allowance is a
-- bucket of `burst` requests refilled one per `interval_ms` (GCRA), kept as the time it
-- is full again; a full one is forgotten (it would start full anyway).
-- KEYS: limits
-- ARGV: 1 now_ms, then per allowance: member ("<limit>|<subject>"), interval_ms, burst
-- Returns {0, 0} (taken), or {ms until the refusing one has room, its index from 1}.
local now = tonumber(ARGV[1])

-- A few forgotten a call: the set stays the size of its live buckets, in bounded work.
local full = redis.call('ZRANGEBYSCORE', K_LIMITS, '-inf', now, 'LIMIT', 0, 20)
if #full > 0 then redis.call('ZREM', K_LIMITS, unpack(full)) end

local wait, refused, taken, last = 0, 0, {}, now
for i = 2, #ARGV, 3 do
  local member, interval, burst = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local full_at = math.max(tonumber(redis.call('ZSCORE', K_LIMITS, member) or now), now)
  local after = full_at + interval
  -- Room for one more while the bucket is full again within burst intervals.
  local room_at = after - burst * interval
  if room_at > now and room_at - now > wait then
    wait, refused = room_at - now, (i + 1) / 3
  end
  taken[#taken + 1], taken[#taken + 2] = after, member
  last = math.max(last, after)
end
if refused > 0 then return {math.ceil(wait), refused} end
redis.call('ZADD', K_LIMITS, unpack(taken))
if redis.call('PTTL', K_LIMITS) < last - now then
  redis.call('PEXPIRE', K_LIMITS, math.ceil(last - now))
end
return {0, 0}
