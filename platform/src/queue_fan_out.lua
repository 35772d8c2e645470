-- Fans outbox events out to every consumer routed for their type, as one step.
-- ARGV triples: event id, event type, payload. Returns {jobs, queue...}.
-- Refuses (NOROUTES) when the routes are not in Redis at all, for example
-- after Redis came back empty: an event with no route would otherwise be
-- marked sent and lost, rather than kept until the routes are published.
-- include: queue_clock.lib.lua
if redis.call('EXISTS', 'bh:routes:published') == 0 then
  return redis.error_reply('NOROUTES event routes are not published')
end
local now = now_ms()
local jobs, out, touched = 0, {}, {}
for i = 1, #ARGV, 3 do
  local routes = redis.call('HGETALL', 'bh:routes:' .. ARGV[i + 1])
  for j = 1, #routes, 2 do
    local queue, max = string.match(routes[j + 1], '^(%S+) (%d+)$')
    local id = ARGV[i] .. ':' .. routes[j]
    local key = 'bh:job:' .. id
    if queue and redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'type', 'event:' .. routes[j],
        'queue', queue, 'payload', ARGV[i + 2], 'max', max,
        'attempts', 0, 'lease', 0, 'enq', now, 'ready', now,
        'trace', '', 'req', '')
      redis.call('LPUSH', 'bh:q:' .. queue .. ':ready', id)
      jobs = jobs + 1
      if not touched[queue] then
        touched[queue] = true
        out[#out + 1] = queue
      end
    end
  end
end
table.insert(out, 1, jobs)
return out
