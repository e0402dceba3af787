-- turn: where an admitted shopper's turn stands. The status poll answers from memory;
-- only for a rank it counts as admitted does it ask this, since a turn can end early
-- (its hold confirmed, let go or run out) and memory does not see that.
-- KEYS: cust window shopping
-- ARGV: 1 now_ms, 2 rank, 3 registration id
-- Returns 'holding' (a hold of the turn is live), 'open' (no hold placed yet, window
-- open), 'done' (ended; the customer holds or has reserved units) or 'over' (ended
-- with nothing).
local now, rank, reg = tonumber(ARGV[1]), ARGV[2], ARGV[3]

if redis.call('HEXISTS', K_SHOPPING, reg) == 1 then return 'holding' end
local deadline = redis.call('ZSCORE', K_WINDOW, rank)
if deadline and tonumber(deadline) > now then return 'open' end
-- A customer's limit slots count their holds and reservations on every channel.
if redis.call('HEXISTS', K_CUST, reg) == 1 then return 'done' end
return 'over'
