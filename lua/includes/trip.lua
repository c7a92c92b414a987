-- Helpers over the trip hash (layout: docs/redis-layout.md).

-- Partition base ("sa:{p7}:") from a key of that partition and its known suffix.
local function base_of(key, suffix)
  local base = string.sub(key, 1, string.len(key) - string.len(suffix))
  assert(base .. suffix == key, 'key does not end with its suffix')
  return base
end

-- A trip is identified by (shopper_id, trip_id) (CONTRACT §3): its keys are
-- <base>trip:<shopper_id>:<trip_id>[:items|:picks|:swipes|:auths]. Ids have no ':'
-- (ID_PATTERN), so the shopper and trip parts cannot run into each other.
-- Keys written before trips were scoped to their shopper (<base>trip:<trip_id>,
-- the hash names its shopper) are still used while they live, at most
-- trip_ttl_s + authorization_ttl_s after the upgrade, and only for the shopper
-- they name: a release that serves next to the previous one must not lose a
-- trip the previous one created. New trips are always written under the new key.
-- A key is this shopper's trip when it is a hash naming the shopper: pcall, because a legacy
-- trip's sub-key can have a new trip key's name (trip:<s>:swipes of a legacy trip <s>) and
-- another type, which must read as "not this trip", never as an error.
local function is_trip_of(key, shopper_id)
  return redis.pcall('HGET', key, 'shopper') == shopper_id
end

local function trip_key_of(base, shopper_id, trip_id)
  local key = base .. 'trip:' .. shopper_id .. ':' .. trip_id
  if is_trip_of(key, shopper_id) then return key end
  local legacy = base .. 'trip:' .. trip_id
  if is_trip_of(legacy, shopper_id) then return legacy end
  return key
end

-- The trip key and the given fields of this shopper's trip in one read per key tried (the
-- owner check is the first field): the new key, else the legacy one. Fields are nil when
-- neither key is this shopper's trip (expired, or never there). pcall as in is_trip_of.
local function read_trip_of(base, shopper_id, trip_id, fields)
  local key = base .. 'trip:' .. shopper_id .. ':' .. trip_id
  local t = redis.pcall('HMGET', key, 'shopper', unpack(fields))
  if t.err == nil and t[1] == shopper_id then return key, t end
  local legacy = base .. 'trip:' .. trip_id
  local l = redis.pcall('HMGET', legacy, 'shopper', unpack(fields))
  if l.err == nil and l[1] == shopper_id then return legacy, l end
  return key, nil
end

-- The trip key to use, from the new-layout key a script was given in KEYS.
local function resolve_trip_key(key, shopper_id, trip_id)
  return trip_key_of(base_of(key, 'trip:' .. shopper_id .. ':' .. trip_id), shopper_id, trip_id)
end

-- A trip's keys expire together at a whole TRIP_EXPIRY_STEP_MS, the first at or after the last
-- touch + their TTL: a decision re-sets the five of them (PEXPIREAT) only when that moment moved
-- to the next step, about once an hour per trip instead of on every swipe, and hydrate
-- (lua/hydrateTrip-5.lua) rebuilds exactly the expiry Redis held from the last touch.
local TRIP_EXPIRY_STEP_MS = 3600000

local function trip_expire_at_ms(unrounded_ms)
  return math.ceil(unrounded_ms / TRIP_EXPIRY_STEP_MS) * TRIP_EXPIRY_STEP_MS
end

-- Sets the same expiry on every key of one trip (they live and die together).
local function expire_trip_at(trip_key, at_ms)
  redis.call('PEXPIREAT', trip_key, at_ms)
  redis.call('PEXPIREAT', trip_key .. ':items', at_ms)
  redis.call('PEXPIREAT', trip_key .. ':picks', at_ms)
  redis.call('PEXPIREAT', trip_key .. ':swipes', at_ms)
  redis.call('PEXPIREAT', trip_key .. ':auths', at_ms)
end

-- The trip was touched at now_ms: its keys live ttl_s more (rounded up a step).
local function expire_trip(trip_key, now_ms, ttl_s)
  expire_trip_at(trip_key, trip_expire_at_ms(now_ms + ttl_s * 1000))
end

-- expire_trip for the hot path: one PEXPIRETIME when the keys already expire at that step.
-- Returns the expiry, for a key the caller creates next to the trip.
local function keep_trip_alive(trip_key, now_ms, ttl_s)
  local at_ms = trip_expire_at_ms(now_ms + ttl_s * 1000)
  if redis.call('PEXPIRETIME', trip_key) < at_ms then expire_trip_at(trip_key, at_ms) end
  return at_ms
end

local function trip_expired(activity_ms, now_ms, trip_ttl_ms)
  return now_ms - activity_ms >= trip_ttl_ms
end
