-- Returns jobs whose lease expired to their queue, or to the dead letters. An
-- expired lease counts as a failed attempt (the worker died or hung).
-- KEYS leased ready dead; ARGV limit. Returns {requeued, dead}.
-- include: queue_clock.lib.lua
-- include: queue_history.lib.lua
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,
  'LIMIT', 0, tonumber(ARGV[1]))
local requeued, dead = 0, 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local key = 'bh:job:' .. id
  local f = redis.call('HMGET', key, 'attempts', 'max')
  if f[1] then
    local attempts = tonumber(f[1])
    if attempts >= (tonumber(f[2]) or 1) then
      record(key, attempts, now, 'lease expired', nil)
      redis.call('HSET', key, 'died', now)
      redis.call('ZADD', KEYS[3], now, id)
      dead = dead + 1
    else
      record(key, attempts, now, 'lease expired', 0)
      redis.call('HSET', key, 'ready', now)
      redis.call('RPUSH', KEYS[2], id)
      requeued = requeued + 1
    end
  end
end
return {requeued, dead}
