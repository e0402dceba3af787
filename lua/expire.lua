-- expire: release held holds whose time is up. Scripts already do this as they
-- touch the launch; the sweeper calls it so idle launches are tidy too.
-- KEYS: meta free holds expiry confirming cust held evlog shopping
-- ARGV: 1 now_ms, 2 max holds to release (-1 = all)
-- Returns the number released.
local now, max = tonumber(ARGV[1]), tonumber(ARGV[2])

if not is_loaded() then return 0 end
return expire_due(now, max)
