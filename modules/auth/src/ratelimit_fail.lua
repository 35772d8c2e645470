-- Counts one failed login on both keys; the first failure starts the window.
-- KEYS account, address. ARGV window ms. Returns {count, ttl ms} for each key, flat.
local r = {}
for _, k in ipairs(KEYS) do
  local n = redis.call('INCR', k)
  if n == 1 then redis.call('PEXPIRE', k, ARGV[1]) end
  r[#r + 1] = n
  r[#r + 1] = redis.call('PTTL', k)
end
return r
