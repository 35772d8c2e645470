-- Publishes the routes of event subscriptions.
-- ARGV quads: event type, consumer, queue, max attempts.
for i = 1, #ARGV, 4 do
  redis.call('HSET', 'bh:routes:' .. ARGV[i], ARGV[i + 1],
    ARGV[i + 2] .. ' ' .. ARGV[i + 3])
  redis.call('SADD', 'bh:queues', ARGV[i + 2])
end
redis.call('SET', 'bh:routes:published', 1)
return 0
