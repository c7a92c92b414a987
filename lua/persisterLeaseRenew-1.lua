--[[
  Renews a persister's lease on one partition, only while it still holds it.

  Input:
    KEYS[1] lease key   <base>lease:persister
    ARGV[1] consumer name (the lease holder's value)
    ARGV[2] lease_ms

  Output: 1 renewed; 0 the lease is held by another consumer or expired
]]
assert(#ARGV == 2, 'persisterLeaseRenew takes 2 arguments')

local lease_key = KEYS[1]
if redis.call('GET', lease_key) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', lease_key, tonumber(ARGV[2]))
return 1
