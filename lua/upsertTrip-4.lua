--[[
  Creates a shopper's trip, or confirms an identical one (CONTRACT §3 PUT).

  Input:
    KEYS[1] shopper key   <base>shopper:<shopper_id>
    KEYS[2] trip key      <base>trip:<shopper_id>:<trip_id>
    KEYS[3] items key     <base>trip:<shopper_id>:<trip_id>:items
    KEYS[4] WAL stream    <base>wal

    ARGV[1] now_ms          ARGV[2] event_id        ARGV[3] shopper_id     ARGV[4] trip_id
    ARGV[5] spec_hash       ARGV[6] spec (canonical JSON, stored for GET)
    ARGV[7] trip_ttl_ms     ARGV[8] key_ttl_s       ARGV[9] event payload (JSON, trip.upserted)
    ARGV[10] f, then f trip-hash field/value pairs (currency, merchant, terms, estimate)
    ARGV[11 + 2f] m, then m item_id / item JSON pairs

  Output: { code, existing spec }  (the stored canonical spec for code 2, else '')
    0 created (201), 1 identical trip exists (200), 2 this shopper's trip exists
    with a different body (409), 3 the shopper has another open trip (409)
    A trip is (shopper_id, trip_id): another shopper's trip with the same id is
    another trip (CONTRACT §3).
]]
--- @include "includes/wal"
--- @include "includes/trip"

local shopper_key = KEYS[1]
local wal_key = KEYS[4]

local now_ms = tonumber(ARGV[1])
local event_id = ARGV[2]
local shopper_id = ARGV[3]
local trip_id = ARGV[4]
local spec_hash = ARGV[5]
local trip_ttl_ms = tonumber(ARGV[7])
local key_ttl_s = tonumber(ARGV[8])

local base = base_of(shopper_key, 'shopper:' .. shopper_id)
assert(KEYS[2] == base .. 'trip:' .. shopper_id .. ':' .. trip_id, 'trip key outside the shopper partition')
assert(KEYS[3] == KEYS[2] .. ':items', 'items key is not the trip key:items')

-- Validate before the first write. A trip the previous release created lives under its
-- legacy key (includes/trip.lua): an identical PUT of it is still 200.
local existing_key = trip_key_of(base, shopper_id, trip_id)
if is_trip_of(existing_key, shopper_id) then
  local existing = redis.call('HMGET', existing_key, 'spec_hash', 'spec')
  if existing[1] == spec_hash then return { 1, '' } end
  return { 2, existing[2] or '' }
end
-- A key that is there but no trip of this shopper (a legacy trip's sub-key with the same name,
-- e.g. trip:<s>:items of a legacy trip <s>): never written into.
if redis.call('EXISTS', existing_key) == 1 then return { 2, '' } end
local trip_key = KEYS[2]
local items_key = KEYS[3]
local latest = redis.call('HGET', shopper_key, 'trip')
if latest and latest ~= trip_id then
  local other = redis.call('HMGET', trip_key_of(base, shopper_id, latest), 'status', 'activity_ms')
  if other[1] and other[1] ~= 'closed' and not trip_expired(tonumber(other[2]), now_ms, trip_ttl_ms) then
    return { 3, '' }
  end
end

local fields = tonumber(ARGV[10])
local trip_fields = {}
for i = 11, 10 + 2 * fields do trip_fields[#trip_fields + 1] = ARGV[i] end
local items_at = 11 + 2 * fields
local item_count = tonumber(ARGV[items_at])
assert(item_count >= 1 and #ARGV == items_at + 2 * item_count, 'argument count does not match item count')

redis.call('HSET', trip_key, 'shopper', shopper_id, 'status', 'open', 'spec_hash', spec_hash, 'spec', ARGV[6],
  'picked_cents', 0, 'picked_lines', 0, 'approved_cents', 0, 'reversed_cents', 0, 'authorized_cents', 0,
  'created_ms', now_ms, 'activity_ms', now_ms, unpack(trip_fields))
for i = items_at + 1, items_at + 2 * item_count, 2 do
  redis.call('HSET', items_key, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', shopper_key, 'trip', trip_id)
redis.call('HSETNX', shopper_key, 'created_ms', now_ms)
expire_trip(trip_key, now_ms, key_ttl_s)
-- The previous release, while it may still serve next to this one, reads trips at
-- trip:<trip_id> only. A marker there (no `shopper`: includes/trip.lua never takes it for a
-- trip) makes its PUT of this trip a 409, and its swipes a decline (no status), instead of a
-- second copy of the trip with a ceiling of its own.
local legacy_key = base .. 'trip:' .. trip_id
if redis.call('EXISTS', legacy_key) == 0 then
  redis.call('HSET', legacy_key, 'spec_hash', 'scoped-to-shopper')
  redis.call('EXPIRE', legacy_key, key_ttl_s)
end
wal_append(wal_key, event_id, 'trip.upserted', ARGV[9])
return { 0, '' }
