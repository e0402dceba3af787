-- load: rebuild a launch's hot state from Postgres, in phases so that a large
-- launch never blocks Redis for long. Until 'finish', every script sees "not-loaded".
-- KEYS: meta free fresh holds expiry confirming cust held confirmed allocated applied shopping
-- ARGV: 1 phase
--   'begin'                                   wipe stock state (queue and events kept)
--   'units',  store:sku, unit...              add free units outside the fresh runs
--   'counts', json {alloc={}, confirmed={}, cust={}, fresh={["store:sku"]={n, t}}}
--             (sets fresh '#', the runs' total, too)
--   'finish', selling, hold_ms, limit         publish settings and mark loaded
local phase = ARGV[1]

if phase == 'begin' then
  -- Holds are lost with Redis, and so are the shopping sessions they kept active.
  redis.call('DEL', K_META, K_FREE, K_FRESH, K_HOLDS, K_EXPIRY, K_CONFIRMING, K_CUST,
    K_HELD, K_CONFIRMED, K_ALLOCATED, K_APPLIED, K_SHOPPING)
  redis.call('HSET', K_META, 'loaded', '0')
elseif phase == 'units' then
  local pair = ARGV[2]
  for i = 3, #ARGV do
    redis.call('ZADD', K_FREE, 0, pair_member(pair, tonumber(ARGV[i])))
  end
elseif phase == 'counts' then
  local c = cjson.decode(ARGV[2])
  for pair, n in pairs(c.alloc) do
    redis.call('HSET', K_ALLOCATED, pair, n)
    redis.call('HSET', K_HELD, pair, 0)
    redis.call('HSET', K_CONFIRMED, pair, c.confirmed[pair] or 0)
  end
  local total = 0
  for pair, run in pairs(c.fresh) do
    redis.call('HSET', K_FRESH, pair .. ':n', string.format('%d', run[1]), pair .. ':t', string.format('%d', run[2]))
    total = total + run[2] - run[1]
  end
  redis.call('HSET', K_FRESH, '#', string.format('%d', total))
  for reg, mask in pairs(c.cust) do redis.call('HSET', K_CUST, reg, mask) end
elseif phase == 'finish' then
  redis.call('HSET', K_META, 'selling', ARGV[2], 'hold_ms', ARGV[3], 'limit', ARGV[4], 'loaded', '1')
else
  return redis.error_reply('load: unknown phase ' .. tostring(phase))
end
return 'ok'
