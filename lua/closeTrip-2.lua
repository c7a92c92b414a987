--[[
  Closes a trip: no more swipes (CONTRACT §3). Closing a closed trip is a no-op.

  Input:
    KEYS[1] trip key    <base>trip:<shopper_id>:<trip_id>
    KEYS[2] WAL stream  <base>wal
    ARGV[1] now_ms  ARGV[2] event_id  ARGV[3] shopper_id  ARGV[4] trip_id

  Output: { code }  0 closed now; 1 was already closed; 2 trip not found (404)
]]
--- @include "includes/wal"
--- @include "includes/trip"

assert(#ARGV == 4, 'closeTrip takes 4 arguments')

local wal_key = KEYS[2]
local now_ms = tonumber(ARGV[1])
local shopper_id = ARGV[3]
local trip_key = resolve_trip_key(KEYS[1], shopper_id, ARGV[4])

local t = redis.call('HMGET', trip_key, 'shopper', 'status', 'picked_cents', 'authorized_cents', 'created_ms')
if not t[1] or t[1] ~= shopper_id then return { 2 } end
if t[2] == 'closed' then return { 1 } end

redis.call('HSET', trip_key, 'status', 'closed', 'closed_ms', now_ms)
wal_append(wal_key, ARGV[2], 'trip.closed', cjson.encode({
  trip_id = ARGV[4], shopper_id = shopper_id, trip_created_ms = tonumber(t[5]), picked_cents = tonumber(t[3]),
  authorized_cents = tonumber(t[4]), at_ms = now_ms,
}))
return { 0 }
