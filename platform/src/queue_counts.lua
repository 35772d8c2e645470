-- The sizes of a queue's lists.
-- KEYS ready leased delayed dead.
return {redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4])}
