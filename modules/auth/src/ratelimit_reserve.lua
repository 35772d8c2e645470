-- Admits one password check, or refuses it, and counts it in the same step.
-- KEYS account, address. ARGV window ms, account limit, address limit.
-- Refuses when either key is at its limit; otherwise counts the attempt on
-- both (the first count starts the window). Returns {refused, count, ttl ms,
-- count, ttl ms}.
local n1 = tonumber(redis.call('GET', KEYS[1]) or '0')
local n2 = tonumber(redis.call('GET', KEYS[2]) or '0')
local refused = 0
if n1 >= tonumber(ARGV[2]) or n2 >= tonumber(ARGV[3]) then
  refused = 1
else
  n1 = redis.call('INCR', KEYS[1])
  if n1 == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  n2 = redis.call('INCR', KEYS[2])
  if n2 == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
end
return {refused, n1, redis.call('PTTL', KEYS[1]), n2, redis.call('PTTL', KEYS[2])}
