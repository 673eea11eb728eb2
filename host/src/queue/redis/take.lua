if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[5])
  return {}
end
local out = {}
local bytes = 0
local count = tonumber(ARGV[3])
while #out < count and bytes < tonumber(ARGV[4]) do
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if not r then break end
  local e = r[1][2][1]
  out[#out + 1] = e
  bytes = bytes + #e[2][2]
end
local n = #out
local left = redis.call('HINCRBY', KEYS[2], ARGV[5], 0 - n)
if left <= 0 or (n < count and bytes < tonumber(ARGV[4])) then
  redis.call('HDEL', KEYS[2], ARGV[5])
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[5], n)
end
return out
