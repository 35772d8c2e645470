-- Acknowledges a finished job and leases the next one in one round trip (the
-- hot path of a busy worker).
-- KEYS ready leased job; ARGV id token lease_ms.
-- Returns {acked (0, or 1 when the lease was lost), job fields...}.
-- include: queue_clock.lib.lua
-- include: queue_reserve.lib.lua
local lost = 1
if redis.call('HGET', KEYS[3], 'lease') == ARGV[2]
   and redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  lost = 0
end
local job = reserve(KEYS[1], KEYS[2], ARGV[3])
if not job then return {lost} end
table.insert(job, 1, lost)
return job
