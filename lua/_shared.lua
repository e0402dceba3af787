-- Prepended to every script at load time, so each stays one atomic operation.
-- Each script names the keys it touches in its header (`-- KEYS: meta free ...`); the
-- loader binds those to locals K_META, K_FREE, ... in that order (KEYS[1], KEYS[2], ...)
-- and leaves the others nil, so a script is sent only its own keys. All carry the
-- launch's {hash tag}. What each holds:
--   meta       hash  loaded, selling, hold_ms, limit, suspect, due (see expire_if_due)
--   free       zset  "store:sku:unit" members of free units (score 0, lex order) outside
--                    the fresh runs: units given back, or added out of turn
--   fresh      hash  "store:sku:n" -> first unit of the pair's fresh run, "store:sku:t" ->
--                    one past its last: the units [n, t) are free and never taken yet, so a
--                    launch of a million units costs Redis two fields, not a million
--                    members (78 MB for 600k), and a rebuild does not send them one by one.
--                    Field "#": the units of all its runs together, for admit.
--                    Every free-set member is below n, so lowest-first takes the set first.
--   holds      hash  hold id -> json {r=reg, s=store, k=sku, u=unit, l=slot, e=expires_ms, st, d,
--                    q=queue rank of the turn it was taken in, false when staff vouched}
--   expiry     zset  hold id by expires_ms (holds in state "held")
--   confirming zset  hold id by deadline_ms (holds in state "confirming")
--   cust       hash  registration -> bitmask of limit slots in use (holds + confirmed)
--   held       hash  "store:sku" -> units held
--   confirmed  hash  "store:sku" -> units confirmed
--   allocated  hash  "store:sku" -> units allocated
--   applied    set   outbox ids already applied (idempotency)
--   evlog      list  hold events ("kind|hold|reg|store|sku|at_ms"), drained into Postgres
--   qpos       hash  registration -> queue rank (-1: checked in before the draw)
--   prequeue   list  registrations in order of check-in, until the draw ranks them
--                    (a list: ~5 bytes a waiter where a sorted set took ~95)
--   drawset    list  the pre-queue as the draw took it
--   qmeta      hash  phase, qlen, admitted, credit, last_ms, rate, cap, window_ms,
--                    lapsed, nleft
--   window     zset  rank by deadline_ms: admitted, no hold placed yet
--   shopping   hash  registration -> live holds of an admitted shopper
--   qrank      hash  rank -> registration, for ranks given here (after the draw,
--                    or every rank of a fifo launch); the drawn ones are in Postgres
--   placelog   list  "reg|rank" for each rank given here, drained into Postgres
--                    (queue_places), so a lost Redis gives those places back too
--   limits     zset  "<limit>|<subject>" by the time its rate-limit bucket is full again
--   left       zset  ranks given up (the shopper left the queue or handed back the
--                    turn), scored in the order they left (qmeta 'nleft' counts them):
--                    admission passes them by
--   leftpre    set   registrations that left the pre-queue; draw_finish gives up the
--                    ranks the draw gives them
-- Invariant per store:sku: ZLEXCOUNT(free) + (t - n) + held + confirmed == allocated.
--
-- On the hot path (reserve and what it calls) text becomes a number by `x + 0`, one
-- conversion, where Lua 5.1's tonumber(x) converts twice (it checks, then converts),
-- and a number becomes text by string.format('%d', n), where `..` and redis.call
-- format it as a double. Both were a few per cent of a hold's instructions in Redis.

-- A unit's free-set member: "store:sku:" and its number, zero-padded for lex order.
local function pair_member(pair, unit)
  return pair .. ':' .. string.format('%08d', unit)
end

local function member(store, sku, unit)
  return pair_member(store .. ':' .. sku, unit)
end

-- The lowest free unit of "store:sku" (its number as text), and its free-set member if it
-- is one (nil: the fresh run's first); nil if the pair has none. Takes nothing.
local function find_unit(pair)
  local member = redis.call('ZRANGEBYLEX', K_FREE, '[' .. pair .. ':', '(' .. pair .. ';', 'LIMIT', '0', '1')[1]
  if member then return string.match(member, '^0*(%d+)$', #pair + 2), member end
  local run = redis.call('HMGET', K_FRESH, pair .. ':n', pair .. ':t')
  if run[1] and run[1] + 0 < run[2] + 0 then return run[1], nil end
  return nil
end

-- Takes the unit find_unit gave.
local function take_unit(pair, member)
  if member then
    redis.call('ZREM', K_FREE, member)
  else
    redis.call('HINCRBY', K_FRESH, pair .. ':n', '1')
    redis.call('HINCRBY', K_FRESH, '#', '-1')
  end
end

-- Free units of every pair of the launch together (the free set and the fresh runs).
-- The runs' total is kept beside them: summing the runs was O(pairs), 1.8 ms of Redis
-- for 1,500 pairs on each admission tick of each worker, where holds pay one HINCRBY.
local function free_count()
  return redis.call('ZCARD', K_FREE) + (redis.call('HGET', K_FRESH, '#') or 0)
end

local function is_loaded()
  return redis.call('HGET', K_META, 'loaded') == '1'
end

-- Hold events for the audit trail, drained into Postgres by the sweeper. A list of
-- "kind|hold|reg|store|sku|at_ms" lines (ids never contain '|'): a quarter of what XADD
-- cost a reserve. Bounded if nobody drains it.
local function log_event(kind, id, reg, store, sku, at)
  local n = redis.call('RPUSH', K_EVLOG, kind .. '|' .. id .. '|' .. reg .. '|' .. store .. '|' .. sku .. '|' .. at)
  if n > 200000 then redis.call('LTRIM', K_EVLOG, '-100000', '-1') end
end

local function log(kind, id, h, now)
  log_event(kind, id, h.r, h.s, h.k, now)
end

local function slot_mask(reg)
  return (redis.call('HGET', K_CUST, reg) or 0) + 0
end

local function free_slot(reg, slot)
  if slot == nil then return end  -- a move's hold has no slot: its reservation keeps one
  local mask = bit.band(slot_mask(reg), bit.bnot(bit.lshift(1, slot)))
  if mask == 0 then redis.call('HDEL', K_CUST, reg) else redis.call('HSET', K_CUST, reg, mask) end
end

-- An admitted shopper leaves "active" when their last hold is settled.
local function leave_shopping(h)
  if h.q and redis.call('HINCRBY', K_SHOPPING, h.r, -1) <= 0 then
    redis.call('HDEL', K_SHOPPING, h.r)
  end
end

local function forget_hold(id)
  redis.call('HDEL', K_HOLDS, id)
  redis.call('ZREM', K_EXPIRY, id)
  redis.call('ZREM', K_CONFIRMING, id)
end

-- Returns the hold's unit to stock and its slot to its customer, exactly once.
local function drop_hold(id, h, kind, now)
  forget_hold(id)
  redis.call('ZADD', K_FREE, 0, member(h.s, h.k, h.u))
  redis.call('HINCRBY', K_HELD, h.s .. ':' .. h.k, -1)
  free_slot(h.r, h.l)
  leave_shopping(h)
  log(kind, id, h, now)
end

-- Releases held holds whose time is up (at most `max`; -1 = all). Returns the count.
local function expire_due(now, max)
  local ids = redis.call('ZRANGEBYSCORE', K_EXPIRY, '-inf', now, 'LIMIT', 0, max)
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', K_HOLDS, id)
    if raw then drop_hold(id, cjson.decode(raw), 'expired', now) else redis.call('ZREM', K_EXPIRY, id) end
  end
  return #ids
end

-- meta 'due' is a lower bound on when the next held hold expires: every ZADD to expiry
-- goes through schedule_expiry, which lowers it, and releases only ever raise the true
-- earliest. So a reserve with nothing due reads one more field of a hash it reads anyway
-- instead of querying the sorted set (4% of reserve's instructions in Redis, by
-- callgrind). 'none': nothing is held. Absent (a fresh load):
-- unknown, so look. Returns the bound as it stands afterwards.
local function expire_if_due(now, max, due)
  if due == 'none' or (due and due + 0 > now) then return due end
  expire_due(now, max)
  local first = redis.call('ZRANGE', K_EXPIRY, 0, 0, 'WITHSCORES')[2] or 'none'
  redis.call('HSET', K_META, 'due', first)
  return first
end

-- A held hold's expiry, at `at` (`at_s`: the same as text, if the caller has it);
-- `due` is meta 'due' as the caller last read it.
local function schedule_expiry(id, at, due, at_s)
  at_s = at_s or string.format('%d', at)
  redis.call('ZADD', K_EXPIRY, at_s, id)
  if due == 'none' or (due and due + 0 > at) then redis.call('HSET', K_META, 'due', at_s) end
end

-- Gives up `rank`, once: admission passes it by (no window, no room under the cap, no
-- unit). `count`: it counts as lapsed too (a lottery invites one more for each).
local function give_up(rank, count)
  if redis.call('ZSCORE', K_LEFT, rank) then return end
  redis.call('ZADD', K_LEFT, redis.call('HINCRBY', K_QMETA, 'nleft', 1), rank)
  if count then redis.call('HINCRBY', K_QMETA, 'lapsed', 1) end
end
