-- Takes the oldest ready job of a queue and leases it: shared by reserve
-- and ack_reserve. Ids whose hash is gone (purged while queued) are dropped
-- on the way. Returns the job's fields, or nil when the queue is empty.
-- Needs queue_clock.lib.lua.
local function reserve(ready, leased, lease_ms)
  local now = now_ms()
  while true do
    local id = redis.call('RPOP', ready)
    if not id then return nil end
    local key = 'bh:job:' .. id
    local f = redis.call('HMGET', key, 'type', 'payload', 'max', 'ready', 'trace', 'req')
    if f[1] then
      local token = redis.call('HINCRBY', key, 'lease', 1)
      local attempts = redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('ZADD', leased, now + tonumber(lease_ms), id)
      return {id, tostring(token), tostring(attempts), f[1], f[2] or '{}', f[3] or '1',
        f[4] or tostring(now), f[5] or '', f[6] or '', tostring(now)}
    end
  end
end
