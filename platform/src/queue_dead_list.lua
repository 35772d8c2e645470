-- A page of dead jobs.
-- KEYS dead; ARGV offset limit. Flat: id type attempts err hist died...
local ids = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[1]),
  tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', 'bh:job:' .. id, 'type', 'attempts', 'err',
    'hist', 'died')
  out[#out + 1] = id
  for k = 1, 5 do out[#out + 1] = f[k] or '' end
end
return out
