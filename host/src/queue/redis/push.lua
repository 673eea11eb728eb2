local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local size = tonumber(ARGV[2])
if held > 0 and held + size > tonumber(ARGV[3]) then
  return {0, held}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[5], '0', 'MKSTREAM')
end
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('INCRBY', KEYS[2], size)
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '1', '*', 'n', '1')
return {1, id}
