-- Deletes a finished job.
-- KEYS leased job; ARGV id token. Returns 0 acked, 1 lease lost.
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then
  return 1
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 1
end
redis.call('DEL', KEYS[2])
return 0
