-- add_units: units committed in Postgres join the free stock, once per outbox id.
-- [first, end) extends the fresh run, or is it if that is empty (new units are numbered
-- above all others): O(1) for any count. Units given one by one join the free set.
-- KEYS: meta free fresh allocated applied
-- ARGV: 1 outbox id, 2 "store:sku", 3 first, 4 end, 5.. more units (ascending)
-- Returns {'ok', added} or {'duplicate'} or {'not-loaded'}.
local outbox_id, pair = ARGV[1], ARGV[2]
local first, stop = tonumber(ARGV[3]), tonumber(ARGV[4])

if not is_loaded() then return {'not-loaded'} end
if outbox_id ~= '' and redis.call('SADD', K_APPLIED, outbox_id) == 0 then return {'duplicate'} end
local added = #ARGV - 4
if stop > first then
  added = added + stop - first
  local run = redis.call('HMGET', K_FRESH, pair .. ':n', pair .. ':t')
  local n, t = tonumber(run[1]), tonumber(run[2])
  if n == nil or n == t then
    redis.call('HSET', K_FRESH, pair .. ':n', string.format('%d', first), pair .. ':t', string.format('%d', stop))
    redis.call('HINCRBY', K_FRESH, '#', string.format('%d', stop - first))
  elseif first == t then
    redis.call('HSET', K_FRESH, pair .. ':t', string.format('%d', stop))
    redis.call('HINCRBY', K_FRESH, '#', string.format('%d', stop - first))
  else  -- out of turn: one by one
    for unit = first, stop - 1 do redis.call('ZADD', K_FREE, 0, pair_member(pair, unit)) end
  end
end
for i = 5, #ARGV do redis.call('ZADD', K_FREE, 0, pair_member(pair, tonumber(ARGV[i]))) end
redis.call('HINCRBY', K_ALLOCATED, pair, added)
return {'ok', added}
