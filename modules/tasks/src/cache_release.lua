-- Gives the fill lease up unfilled (the read failed), if it is still ours.
-- KEYS lease. ARGV token. Returns 1 released, 0 not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
