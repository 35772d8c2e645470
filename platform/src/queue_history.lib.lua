-- Records a failed attempt in the job's hash: its last error, and the
-- attempt history (the last 20 failures, as JSON).
local function record(key, attempt, now, err, retry_in)
  local raw = redis.call('HGET', key, 'hist')
  local hist = raw and cjson.decode(raw) or {}
  local e = {attempt = attempt, at = now, error = err}
  if retry_in then e.retry_in_ms = retry_in end
  hist[#hist + 1] = e
  while #hist > 20 do table.remove(hist, 1) end
  redis.call('HSET', key, 'err', err, 'hist', cjson.encode(hist))
end
