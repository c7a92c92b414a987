--[[
  Rebuilds a shopper pointer from Postgres after Redis lost data (hydrate),
  only when the shopper key does not exist (a trip created since wins).

  Input:
    KEYS[1] shopper key  <base>shopper:<shopper_id>
    ARGV[1] latest trip id   ARGV[2] created_ms (the shopper's first trip)

  Output: 1 written; 0 the key exists
]]
assert(#ARGV == 2, 'hydrateShopper takes 2 arguments')

local shopper_key = KEYS[1]
if redis.call('EXISTS', shopper_key) == 1 then return 0 end
redis.call('HSET', shopper_key, 'trip', ARGV[1], 'created_ms', ARGV[2])
return 1
