-- Acknowledges finished jobs and leases the next ready one; when the type of
-- that job takes batches, also leases the jobs of the same type queued right
-- behind it, up to the type's batch size. It stops at the first job of
-- another type, so a batch is exactly the jobs that single reserves would
-- have handed out next: nothing is skipped, reordered or starved.
-- KEYS ready leased; ARGV lease_ms (0: acknowledge only, lease nothing)
-- n_acks, n_acks pairs (id token), then pairs (batch type, batch size).
-- Returns {n_acks lost flags (0 acked, 1 lease lost), 10 fields per job...}.
-- include: queue_clock.lib.lua
-- include: queue_reserve.lib.lua
local n_acks = tonumber(ARGV[2])
local out = {}
for i = 0, n_acks - 1 do
  local id, token = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local key = 'bh:job:' .. id
  local lost = 1
  if redis.call('HGET', key, 'lease') == token
     and redis.call('ZREM', KEYS[2], id) == 1 then
    redis.call('DEL', key)
    lost = 0
  end
  out[#out + 1] = lost
end
if tonumber(ARGV[1]) == 0 then return out end
local sizes = {}
for i = 3 + 2 * n_acks, #ARGV - 1, 2 do
  sizes[ARGV[i]] = tonumber(ARGV[i + 1])
end
local job = reserve(KEYS[1], KEYS[2], ARGV[1])
if not job then return out end
local taken, size = 1, sizes[job[4]] or 1
while true do
  for _, f in ipairs(job) do out[#out + 1] = f end
  if taken >= size then break end
  local id = redis.call('LINDEX', KEYS[1], -1)
  if not id or redis.call('HGET', 'bh:job:' .. id, 'type') ~= job[4] then break end
  job = reserve(KEYS[1], KEYS[2], ARGV[1])
  if not job then break end
  taken = taken + 1
end
return out
