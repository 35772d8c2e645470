-- Marks sessions as denied, each key with its own lifetime.
-- KEYS deny keys. ARGV[i] the lifetime in ms of KEYS[i]. Returns how many.
for i, k in ipairs(KEYS) do
  redis.call('SET', k, '1', 'PX', ARGV[i])
end
return #KEYS
