-- Enqueues one job, now or after a delay; a job whose id exists is left alone.
-- KEYS job ready delayed queues; ARGV id type queue payload max delay trace req.
-- Returns 1 when enqueued, 0 when the id was taken.
-- include: queue_clock.lib.lua
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = now_ms()
local delay = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'type', ARGV[2], 'queue', ARGV[3],
  'payload', ARGV[4], 'max', ARGV[5], 'attempts', 0, 'lease', 0,
  'enq', now, 'ready', now + delay, 'trace', ARGV[7], 'req', ARGV[8])
if delay > 0 then
  redis.call('ZADD', KEYS[3], now + delay, ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
redis.call('SADD', KEYS[4], ARGV[3])
return 1
