-- add_units: units committed in Postgres join the free stock, once per outbox id.
-- KEYS: meta free allocated applied
-- ARGV: 1 outbox id, 2 "store:sku", 3.. unit numbers
-- Returns {'ok', added} or {'duplicate'} or {'not-loaded'}.
local outbox_id, pair = ARGV[1], ARGV[2]

if not is_loaded() then return {'not-loaded'} end
if outbox_id ~= '' and redis.call('SADD', K_APPLIED, outbox_id) == 0 then return {'duplicate'} end
for i = 3, #ARGV do
  redis.call('ZADD', K_FREE, 0, pair .. ':' .. string.format('%08d', tonumber(ARGV[i])))
end
redis.call('HINCRBY', K_ALLOCATED, pair, #ARGV - 2)
return {'ok', #ARGV - 2}
