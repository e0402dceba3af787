-- turn: where an admitted shopper's turn stands. The status poll answers from memory;
-- only for a rank it counts as admitted (or lapsed) does it ask this, since a turn can
-- end early (its hold let go or run out), or go on after a confirmation, and memory
-- sees neither.
-- KEYS: meta cust window shopping left
-- ARGV: 1 now_ms, 2 rank, 3 registration id
-- Returns 'holding' (a hold of the turn is live), 'open <deadline_ms> <used> <limit>'
-- (no hold live, time left to place one, and `used` of the customer's `limit` taken),
-- 'left' (handed back), 'done' (ended; the customer holds or has reserved units) or
-- 'over' (ended with nothing).
local now, rank, reg = tonumber(ARGV[1]), ARGV[2], ARGV[3]

if redis.call('HEXISTS', K_SHOPPING, reg) == 1 then return 'holding' end
if redis.call('ZSCORE', K_LEFT, rank) then return 'left' end
local deadline = redis.call('ZSCORE', K_WINDOW, rank)
if deadline and tonumber(deadline) > now then
  local mask, used = tonumber(redis.call('HGET', K_CUST, reg) or '0'), 0
  while mask > 0 do
    used, mask = used + mask % 2, math.floor(mask / 2)
  end
  -- Every slot taken (another channel may have used one): nothing left to choose.
  local limit = tonumber(redis.call('HGET', K_META, 'limit') or '1')
  if used < limit then return string.format('open %d %d %d', tonumber(deadline), used, limit) end
end
-- A customer's limit slots count their holds and reservations on every channel.
if redis.call('HEXISTS', K_CUST, reg) == 1 then return 'done' end
return 'over'
