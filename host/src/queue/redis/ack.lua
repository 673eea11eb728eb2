local acked = 0
local removed = 0
local freed = 0
for i = 3, #ARGV, 2 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    removed = removed + 1
    freed = freed + tonumber(ARGV[i + 1])
  end
end
if acked > 0 and redis.call('HINCRBY', KEYS[2], ARGV[2], -acked) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if freed > 0 then
  redis.call('DECRBY', KEYS[3], freed)
end
return {removed, freed}
