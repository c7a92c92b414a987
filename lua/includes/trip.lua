-- Helpers over the trip hash (layout: docs/redis-layout.md).

-- Partition base ("sa:{p7}:") from a key of that partition and its known suffix.
local function base_of(key, suffix)
  local base = string.sub(key, 1, string.len(key) - string.len(suffix))
  assert(base .. suffix == key, 'key does not end with its suffix')
  return base
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
