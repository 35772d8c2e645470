-- Redis's clock in ms: lease deadlines and due times never use a worker's
-- clock, so workers on skewed hosts agree.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
