local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local max = tonumber(ARGV[1])
local out = {0}
local added, per_tenant, lanes = 0, {}, {}
for i = 5, #KEYS do
  local a = 3 + (i - 5) * 3
  local tenant, size = ARGV[a], tonumber(ARGV[a + 1])
  if held > 0 and held + size > max then
    out[#out + 1] = 0
  else
    if not lanes[KEYS[i]] then
      lanes[KEYS[i]] = true
      if redis.call('EXISTS', KEYS[i]) == 0 then
        redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[2], '0', 'MKSTREAM')
      end
    end
    local id = redis.pcall('XADD', KEYS[i], '*', 'e', ARGV[a + 2])
    if type(id) == 'table' and id.err then
      out[#out + 1] = id.err
    else
      held = held + size
      added = added + size
      per_tenant[tenant] = (per_tenant[tenant] or 0) + 1
      out[#out + 1] = 1
    end
  end
end
if added > 0 then
  redis.call('INCRBY', KEYS[1], added)
  for tenant, n in pairs(per_tenant) do
    redis.call('SADD', KEYS[3], tenant)
    redis.call('HINCRBY', KEYS[2], tenant, n)
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '1', '*', 'n', '1')
end
out[1] = held
return out
