-- Puts a dead job back on its queue with a fresh set of attempts.
-- ARGV id. Returns 1 when it went back, 0 when it was not dead.
-- include: queue_clock.lib.lua
local key = 'bh:job:' .. ARGV[1]
local queue = redis.call('HGET', key, 'queue')
if not queue then return 0 end
if redis.call('ZREM', 'bh:q:' .. queue .. ':dead', ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', key, 'attempts', 0, 'ready', now_ms())
redis.call('HDEL', key, 'died')
redis.call('LPUSH', 'bh:q:' .. queue .. ':ready', ARGV[1])
return 1
