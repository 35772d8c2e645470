-- Records a failed run: a retry after delay_ms, or the dead letters.
-- KEYS leased job delayed dead; ARGV id token error delay_ms dead_now.
-- Returns -1 lease lost, 0 retry scheduled, 1 dead.
-- include: queue_clock.lib.lua
-- include: queue_history.lib.lua
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return -1 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end
local now = now_ms()
local f = redis.call('HMGET', KEYS[2], 'attempts', 'max')
local attempts = tonumber(f[1]) or 0
if ARGV[5] == '1' or attempts >= (tonumber(f[2]) or 1) then
  record(KEYS[2], attempts, now, ARGV[3], nil)
  redis.call('HSET', KEYS[2], 'died', now)
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  return 1
end
local delay = tonumber(ARGV[4])
record(KEYS[2], attempts, now, ARGV[3], delay)
redis.call('HSET', KEYS[2], 'ready', now + delay)
redis.call('ZADD', KEYS[3], now + delay, ARGV[1])
return 0
