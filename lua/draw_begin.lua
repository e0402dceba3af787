-- draw_begin: freeze the pre-queue for the draw. Check-ins from now on wait in a new
-- pre-queue and join behind the drawn ones, in arrival order, at draw_finish.
-- KEYS: prequeue drawset qmeta
-- ARGV: (none)
-- Returns {'ok', entrants} or {'phase', current phase}.
local phase = redis.call('HGET', K_QMETA, 'phase')
if phase ~= 'pre' then return {'phase', phase or 'none'} end
redis.call('DEL', K_DRAWSET)
if redis.call('EXISTS', K_PREQUEUE) == 1 then redis.call('RENAME', K_PREQUEUE, K_DRAWSET) end
redis.call('HSET', K_QMETA, 'phase', 'drawing')
return {'ok', redis.call('LLEN', K_DRAWSET)}
