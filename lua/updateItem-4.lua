--[[
  Records what the shopper picked for one ordered item (CONTRACT §3). A later
  update of the same item replaces the earlier one: the trip's picked total
  moves by the difference, never double-counts.

  Input:
    KEYS[1] trip key    <base>trip:<shopper_id>:<trip_id>
    KEYS[2] items key   <base>trip:<shopper_id>:<trip_id>:items
    KEYS[3] picks key   <base>trip:<shopper_id>:<trip_id>:picks
    KEYS[4] WAL stream  <base>wal

    ARGV[1] now_ms      ARGV[2] event_id     ARGV[3] shopper_id    ARGV[4] trip_id
    ARGV[5] item_id     ARGV[6] status (picked | not_found | replaced)
    ARGV[7] quantity_milli ('' = not given)  ARGV[8] unit_price_cents ('' = the estimate)
    ARGV[9] replacement item id ('' = none)  ARGV[10] customer_approved (1/0)
    ARGV[11] max_overpick_bps  ARGV[12] max_price_variance_bps
    ARGV[13] trip_ttl_ms       ARGV[14] key_ttl_s     ARGV[15] line_cents_max
    ARGV[16] max_overpick_approved_bps (the bound even with customer_approved)

  Output: { code, picked_cents, line_cents }
    0 ok; 1 trip not found (404); 2 item not found (404); 3 trip closed (409);
    4 trip expired (409); 5 over-pick needs approval (422);
    6 price variance needs approval (422); 7 line too large (400);
    8 above the over-pick maximum even with customer approval (422)
]]
--- @include "includes/wal"
--- @include "includes/trip"

assert(#ARGV == 16, 'updateItem takes 16 arguments')

local wal_key = KEYS[4]

local now_ms = tonumber(ARGV[1])
local event_id = ARGV[2]
local shopper_id = ARGV[3]
local trip_id = ARGV[4]
local item_id = ARGV[5]
local status = ARGV[6]
local approved = ARGV[10] == '1'
local max_overpick_bps = tonumber(ARGV[11])
local max_variance_bps = tonumber(ARGV[12])
local trip_ttl_ms = tonumber(ARGV[13])
local key_ttl_s = tonumber(ARGV[14])
local line_max = tonumber(ARGV[15])
local max_overpick_approved_bps = tonumber(ARGV[16])
-- The keys in KEYS name the trip's layout; a trip written before trips were scoped
-- to their shopper lives under its legacy key (includes/trip.lua).
local trip_key = resolve_trip_key(KEYS[1], shopper_id, trip_id)
local items_key = trip_key .. ':items'
local picks_key = trip_key .. ':picks'

-- Validate before the first write.
local t = redis.call('HMGET', trip_key, 'shopper', 'status', 'activity_ms', 'picked_cents', 'created_ms')
if not t[1] or t[1] ~= shopper_id then return { 1, 0, 0 } end
local ordered_json = redis.call('HGET', items_key, item_id)
if not ordered_json then return { 2, 0, 0 } end
if t[2] == 'closed' then return { 3, 0, 0 } end
if trip_expired(tonumber(t[3]), now_ms, trip_ttl_ms) then return { 4, 0, 0 } end

local ordered = cjson.decode(ordered_json)
local quantity = 0
local price = 0
local line = 0
if status == 'picked' then
  quantity = tonumber(ARGV[7])
  price = tonumber(ARGV[8]) or ordered.p
  if not approved and quantity * 10000 > ordered.q * (10000 + max_overpick_bps) then return { 5, 0, 0 } end
  if not approved and price * 10000 > ordered.p * (10000 + max_variance_bps) then return { 6, 0, 0 } end
  line = math.floor((quantity * price + 500) / 1000)
elseif status == 'replaced' then
  quantity = tonumber(ARGV[7])
  price = tonumber(ARGV[8])
  line = math.floor((quantity * price + 500) / 1000)
  -- A replacement is held to the ordered line's value, within the price variance.
  if not approved and line * 10000 > ordered.e * (10000 + max_variance_bps) then return { 6, 0, 0 } end
end
if line > line_max then return { 7, 0, 0 } end
-- Customer approval lifts the limits above, up to a configured maximum.
if approved and status == 'picked' and quantity * 10000 > ordered.q * (10000 + max_overpick_approved_bps) then
  return { 8, 0, 0 }
end
if approved and status == 'replaced' and line * 10000 > ordered.e * (10000 + max_overpick_approved_bps) then
  return { 8, 0, 0 }
end

-- Replace the earlier pick of this item, if any.
local previous_line = 0
local previous_counted = false
local previous_json = redis.call('HGET', picks_key, item_id)
if previous_json then
  local previous = cjson.decode(previous_json)
  previous_line = previous.l
  previous_counted = previous.s ~= 'not_found'
end
local counted = status ~= 'not_found'
local replacement = ARGV[9]
local pick = { s = status, q = quantity, p = price, l = line, a = approved }
if replacement ~= '' then pick.r = replacement end
redis.call('HSET', picks_key, item_id, cjson.encode(pick))

local picked = redis.call('HINCRBY', trip_key, 'picked_cents', line - previous_line)
local lines_delta = (counted and 1 or 0) - (previous_counted and 1 or 0)
if lines_delta ~= 0 then redis.call('HINCRBY', trip_key, 'picked_lines', lines_delta) end
if t[2] == 'open' then redis.call('HSET', trip_key, 'status', 'shopping') end
redis.call('HSET', trip_key, 'activity_ms', now_ms)
expire_trip(trip_key, now_ms, key_ttl_s)

wal_append(wal_key, event_id, 'item.updated', cjson.encode({
  trip_id = trip_id, shopper_id = shopper_id, trip_created_ms = tonumber(t[5]), item_id = item_id, status = status,
  quantity_milli = quantity, unit_price_cents = price, line_cents = line,
  replacement_item_id = (replacement ~= '' and replacement) or cjson.null,
  customer_approved = approved, picked_cents = picked, at_ms = now_ms,
}))
return { 0, picked, line }
