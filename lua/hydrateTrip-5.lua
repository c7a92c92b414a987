--[[
  Rebuilds one trip's keys from Postgres after Redis lost data (hydrate).
  Writes nothing when the trip key exists: state written since the loss is
  newer than the rebuild and wins.

  Input:
    KEYS[1] trip key     <base>trip:<shopper_id>:<trip_id>
    KEYS[2] items key    <base>trip:<shopper_id>:<trip_id>:items
    KEYS[3] picks key    <base>trip:<shopper_id>:<trip_id>:picks
    KEYS[4] swipes key   <base>trip:<shopper_id>:<trip_id>:swipes
    KEYS[5] auths key    <base>trip:<shopper_id>:<trip_id>:auths

    ARGV[1] last touch + the trip keys' TTL, ms: every key of the trip expires at it rounded up
            as every script rounds it (trip_expire_at_ms, lua/includes/trip.lua)
    ARGV[2] f, then f trip-hash field/value pairs
    then    i, then i item_id / item JSON pairs
    then    k, then k item_id / pick JSON pairs
    then    s, then s score_ms / authorization_id pairs (velocity window)
    then    a, then a authorization ids, newest first

  Output: 1 written; 0 the trip key exists (nothing written)
]]
--- @include "includes/trip"

local trip_key = KEYS[1]
local items_key = KEYS[2]
local picks_key = KEYS[3]
local swipes_key = KEYS[4]
local auths_key = KEYS[5]
local expire_at_ms = trip_expire_at_ms(tonumber(ARGV[1]))

-- Validate before the first write.
if redis.call('EXISTS', trip_key) == 1 then return 0 end
local at = 2
local function section(width)
  local n = tonumber(ARGV[at])
  assert(n and n >= 0, 'bad section count')
  local first = at + 1
  at = at + 1 + width * n
  assert(at - 1 <= #ARGV, 'argument count does not match section counts')
  return first, n
end
local f_at, f_n = section(2)
local i_at, i_n = section(2)
local k_at, k_n = section(2)
local s_at, s_n = section(2)
local a_at, a_n = section(1)
assert(at - 1 == #ARGV, 'trailing arguments')
assert(f_n > 0, 'trip fields missing')

for j = f_at, f_at + 2 * (f_n - 1), 2 do redis.call('HSET', trip_key, ARGV[j], ARGV[j + 1]) end
for j = i_at, i_at + 2 * (i_n - 1), 2 do redis.call('HSET', items_key, ARGV[j], ARGV[j + 1]) end
for j = k_at, k_at + 2 * (k_n - 1), 2 do redis.call('HSET', picks_key, ARGV[j], ARGV[j + 1]) end
for j = s_at, s_at + 2 * (s_n - 1), 2 do redis.call('ZADD', swipes_key, ARGV[j], ARGV[j + 1]) end
redis.call('DEL', auths_key)
for j = a_at, a_at + a_n - 1 do redis.call('RPUSH', auths_key, ARGV[j]) end
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('PEXPIREAT', key, expire_at_ms) end
end
return 1
