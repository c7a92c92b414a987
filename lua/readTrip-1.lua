--[[
  Reads one trip's state for GET /v1/shoppers/{shopper_id}/trips/{trip_id}.

  Input:
    KEYS[1] trip key  <base>trip:<shopper_id>:<trip_id>
    ARGV[1] shopper_id  ARGV[2] authorizations_max  ARGV[3] trip_id

  Output: '' when the trip does not exist for this shopper, else a JSON string
    { trip = {field = value ...}, picks = {item_id = pick JSON}, authorizations = [ {auth fields} ] }
]]
--- @include "includes/trip"

assert(#ARGV == 3, 'readTrip takes 3 arguments')

local shopper_id = ARGV[1]
local auths_max = tonumber(ARGV[2])
local trip_key = resolve_trip_key(KEYS[1], shopper_id, ARGV[3])

local flat = redis.call('HGETALL', trip_key)
if #flat == 0 then return '' end
local trip = {}
for i = 1, #flat, 2 do trip[flat[i]] = flat[i + 1] end
if trip.shopper ~= shopper_id then return '' end
trip.spec = nil -- the canonical spec is for the persister, not for this view

local base = string.sub(trip_key, 1, string.find(trip_key, '}:', 1, true) + 1)
local authorizations = {}
local ids = redis.call('LRANGE', trip_key .. ':auths', 0, auths_max - 1)
for _, id in ipairs(ids) do
  local a = redis.call('HMGET', base .. 'auth:' .. id, 'decision', 'code', 'amount', 'reversed', 'mode', 'txn', 'at_ms')
  if a[1] then
    authorizations[#authorizations + 1] = {
      authorization_id = id, decision = a[1], code = tonumber(a[2]), amount_cents = tonumber(a[3]),
      reversed_cents = tonumber(a[4]), mode = a[5], transaction_id = a[6], at_ms = tonumber(a[7]),
    }
  end
end
return cjson.encode({ trip = trip, authorizations = authorizations })
