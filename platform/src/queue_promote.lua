-- Moves delayed jobs that are due to the ready list.
-- KEYS delayed ready; ARGV limit. Returns how many moved.
-- include: queue_clock.lib.lua
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(),
  'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('LPUSH', KEYS[2], id)
end
return #ids
