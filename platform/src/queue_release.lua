-- Gives a leased job back to the front of its queue without counting the run.
-- KEYS leased job ready; ARGV id token. Returns 0 released, 1 lost.
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 1 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 1 end
redis.call('HINCRBY', KEYS[2], 'attempts', -1)
redis.call('RPUSH', KEYS[3], ARGV[1])
return 0
