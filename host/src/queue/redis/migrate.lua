if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[4], '0', 'MKSTREAM')
end
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '1', '*', 'n', '1')
return 1
