-- Reads both login counters and their remaining lives.
-- KEYS account, address. Returns {count, ttl ms} for each key, flat.
local r = {}
for _, k in ipairs(KEYS) do
  r[#r + 1] = tonumber(redis.call('GET', k) or '0')
  r[#r + 1] = redis.call('PTTL', k)
end
return r
