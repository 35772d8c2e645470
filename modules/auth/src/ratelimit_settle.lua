-- Settles an admitted attempt that did not fail.
-- KEYS account, address. ARGV "ok" (the login succeeded: the account starts
-- afresh) or "void" (no password was checked: the account gets its count
-- back). The address gets its count back either way.
local function give_back(k)
  if tonumber(redis.call('GET', k) or '0') > 0 then
    redis.call('DECR', k)
  end
end
if ARGV[1] == 'ok' then
  redis.call('DEL', KEYS[1])
else
  give_back(KEYS[1])
end
give_back(KEYS[2])
return 1
