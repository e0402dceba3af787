-- add_units: units committed in Postgres join the free stock, once per outbox id.
-- A unit that continues the pair's fresh run extends it; any other joins the free set.
-- KEYS: meta free fresh allocated applied
-- ARGV: 1 outbox id, 2 "store:sku", 3.. unit numbers (ascending, as Postgres numbers them)
-- Returns {'ok', added} or {'duplicate'} or {'not-loaded'}.
local outbox_id, pair = ARGV[1], ARGV[2]

if not is_loaded() then return {'not-loaded'} end
if outbox_id ~= '' and redis.call('SADD', K_APPLIED, outbox_id) == 0 then return {'duplicate'} end
local top = redis.call('HGET', K_FRESH, pair .. ':t')
top = top and tonumber(top)
local was = top
for i = 3, #ARGV do
  local unit = tonumber(ARGV[i])
  if unit == top then
    top = top + 1
  else
    redis.call('ZADD', K_FREE, 0, pair_member(pair, unit))
  end
end
if top and top > was then
  redis.call('HSET', K_FRESH, pair .. ':t', string.format('%d', top))
  redis.call('HINCRBY', K_FRESH, '#', string.format('%d', top - was))
end
redis.call('HINCRBY', K_ALLOCATED, pair, #ARGV - 2)
return {'ok', #ARGV - 2}
