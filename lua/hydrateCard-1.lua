--[[
  Rebuilds one processor card from Postgres after Redis lost data (hydrate).
  Writes nothing when the card key exists: a registration since the loss is
  newer than the rebuild and wins.

  Input:
    KEYS[1] card key   <base>card:<processor>:<card_id>
    ARGV[1] shopper_id   ARGV[2] status ('active' | 'retired')   ARGV[3] earlier owners   ARGV[4] at_ms

  Output: 1 written; 0 the card key exists (nothing written)
]]

assert(#ARGV == 4, 'hydrateCard takes 4 arguments')
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
assert(ARGV[2] == 'active' or ARGV[2] == 'retired', 'bad card status')
redis.call('HSET', KEYS[1], 'shopper', ARGV[1], 'status', ARGV[2], 'owners', ARGV[3], 'at_ms', ARGV[4])
return 1
