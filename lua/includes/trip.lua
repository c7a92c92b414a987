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

-- The trip key to use, from the new-layout key a script was given in KEYS.
local function resolve_trip_key(key, shopper_id, trip_id)
  return trip_key_of(base_of(key, 'trip:' .. shopper_id .. ':' .. trip_id), shopper_id, trip_id)
end

-- Sets the same TTL on every key of one trip (they live and die together).
local function expire_trip(trip_key, ttl_s)
  redis.call('EXPIRE', trip_key, ttl_s)
  redis.call('EXPIRE', trip_key .. ':items', ttl_s)
  redis.call('EXPIRE', trip_key .. ':picks', ttl_s)
  redis.call('EXPIRE', trip_key .. ':swipes', ttl_s)
  redis.call('EXPIRE', trip_key .. ':auths', ttl_s)
end

local function trip_expired(activity_ms, now_ms, trip_ttl_ms)
  return now_ms - activity_ms >= trip_ttl_ms
end
