--[[
  Releases a persister's lease on one partition, only when it holds it.

  Input:
    KEYS[1] lease key   <base>lease:persister
    ARGV[1] consumer name

  Output: 1 released; 0 not held by this consumer
]]
assert(#ARGV == 1, 'persisterLeaseRelease takes 1 arguments')

local lease_key = KEYS[1]
if redis.call('GET', lease_key) ~= ARGV[1] then return 0 end
redis.call('DEL', lease_key)
return 1
