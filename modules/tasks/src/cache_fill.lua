-- Fills the cache only while the fill lease holds the caller's token, then
-- drops the lease: a writer that invalidated meanwhile took the lease away.
-- KEYS lease, entry. ARGV token, entry text, TTL in ms. Returns 1 filled, 0 not.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
