-- Extends a lease.
-- KEYS leased job; ARGV id token lease_ms. Returns 0 renewed, 1 lost.
-- include: queue_clock.lib.lua
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 1 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[1])
return 0
