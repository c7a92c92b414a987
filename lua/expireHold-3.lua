--[[
  Releases what is still held on one approved authorization that was never
  cleared (hold expiry, or reconciliation releasing a late answer). Idempotent:
  a marker key makes every later call a no-op, and a cleared, fully reversed
  or already expired authorization has nothing to release.

  Input:
    KEYS[1] authorization hash   <base>auth:<authorization_id>
    KEYS[2] expiry marker        <base>hx:<authorization_id>
    KEYS[3] WAL stream           <base>wal
    (the trip key is built from the partition base: same hash tag, same slot)

    ARGV[1] now_ms   ARGV[2] event_id   ARGV[3] authorization_id   ARGV[4] shopper_id
    ARGV[5] reason ('expiry' | 'reconciliation')
    ARGV[6] held_cents as Postgres knows it: released only when the authorization
            hash is gone from Redis (its TTL passed or Redis lost it)
    ARGV[7] currency (Postgres; used when the hash is gone)
    ARGV[8] transaction_id ('' = none; used when the hash is gone)
    ARGV[9] marker_ttl_s

  Output: { code, released_cents }
    0 released now (WAL hold.expired); 1 released before (marker): nothing written;
    2 nothing held (declined, cleared, fully reversed, expired): nothing written;
    3 the authorization belongs to another shopper: nothing written
]]
--- @include "includes/wal"
--- @include "includes/trip"

assert(#ARGV == 9, 'expireHold takes 9 arguments')

local auth_key = KEYS[1]
local marker_key = KEYS[2]
local wal_key = KEYS[3]
local now_ms = tonumber(ARGV[1])
local auth_id = ARGV[3]
local shopper_id = ARGV[4]
local reason = ARGV[5]

local stored = redis.call('GET', marker_key)
if stored then return { 1, tonumber(stored) } end

local base = base_of(auth_key, 'auth:' .. auth_id)
local a = redis.call('HMGET', auth_key, 'shopper', 'decision', 'amount', 'reversed', 'trip', 'fo_trip', 'currency',
  'cleared', 'expired', 'txn')
local released = 0
local trip_id = ''
local currency = ARGV[7]
local txn = ARGV[8]
local redis_state = 'missing'
if a[1] then
  redis_state = 'present'
  if a[1] ~= shopper_id then return { 3, 0 } end
  if a[2] ~= 'approved' or a[8] or a[9] then return { 2, 0 } end
  released = tonumber(a[3]) - tonumber(a[4])
  trip_id = a[5] or ''
  if trip_id == '' and a[6] then trip_id = a[6] end
  currency = a[7]
  txn = a[10] or ''
else
  released = tonumber(ARGV[6]) or 0
end
if released <= 0 then return { 2, 0 } end

local authorized = cjson.null
local trip_created = false
if redis_state == 'present' then
  redis.call('HSET', auth_key, 'expired', released, 'expired_ms', now_ms)
  local trip_key = trip_id ~= '' and trip_key_of(base, shopper_id, trip_id) or ''
  -- The trip's version (its created_ms): the persister moves only that trip's totals.
  trip_created = trip_key ~= '' and redis.call('HGET', trip_key, 'created_ms') or false
  if trip_created then
    authorized = redis.call('HINCRBY', trip_key, 'authorized_cents', -released)
    redis.call('HINCRBY', trip_key, 'expired_cents', released)
  end
end
redis.call('SET', marker_key, released, 'EX', tonumber(ARGV[9]))
wal_append(wal_key, ARGV[2], 'hold.expired', cjson.encode({
  authorization_id = auth_id, transaction_id = (txn ~= '' and txn) or cjson.null, shopper_id = shopper_id,
  trip_id = (trip_id ~= '' and trip_id) or cjson.null, currency = currency, released_cents = released,
  reason = reason, redis_state = redis_state, authorized_cents = authorized,
  trip_created_ms = (trip_created and tonumber(trip_created)) or cjson.null, at_ms = now_ms,
}))
return { 0, released }
