--[[
  Releases all or part of an approved authorization back to its trip's
  allowance (CONTRACT §2). Idempotent on (transaction_id, reversal_id).

  Input:
    KEYS[1] idempotency key of the transaction  <base>idem:t:<transaction_id>
    KEYS[2] reversal key                         <base>rev:<sha256 of [transaction_id, reversal_id or -]>
    KEYS[3] WAL stream                           <base>wal

    ARGV[1] now_ms   ARGV[2] event_id   ARGV[3] shopper_id   ARGV[4] transaction_id
    ARGV[5] reversal key suffix (for the event)   ARGV[6] amount_cents ('' = all that is held)
    ARGV[7] reversal_ttl_s
    ARGV[8] signature v1 the request was accepted with ('' = none; carried in
            the event so hydrate can rebuild the endpoint's claim on it)

  Output: { code, state JSON }
    0 reversed now; 1 replay of the same reversal; 2 unknown authorization (404);
    3 amount above what is still held (409); 4 same reversal key, different amount (409)
    state: { authorization_id, transaction_id, trip_id, amount_cents, reversed_cents, held_cents, status }
]]
--- @include "includes/wal"
--- @include "includes/trip"
--- @include "includes/authorizationRef"

assert(#ARGV == 8, 'reverseAuthorization takes 8 arguments')

local idem_key = KEYS[1]
local rev_key = KEYS[2]
local wal_key = KEYS[3]
local now_ms = tonumber(ARGV[1])
local shopper_id = ARGV[3]
local txn = ARGV[4]
local requested = ARGV[6]

local replay = stored_answer(rev_key, shopper_id, txn, function(previous)
  return previous.requested == requested
end)
if replay then return replay end

local auth_id, auth_key, base = authorization_of(idem_key, txn)
if not auth_id then return { 2, '' } end
local a = redis.call('HMGET', auth_key, 'shopper', 'decision', 'amount', 'reversed', 'trip', 'fo_trip', 'cleared',
  'expired')
if not a[1] or a[1] ~= shopper_id then return { 2, '' } end
-- A replayed fail-open approval answered without a trip but was counted against fo_trip.
if (a[5] == nil or a[5] == '') and a[6] then a[5] = a[6] end

local amount = tonumber(a[3])
local reversed = tonumber(a[4])
local held = 0
-- A cleared or expired authorization holds nothing any more (clearAuthorization, expireHold).
if a[2] == 'approved' and not a[7] and not a[8] then held = amount - reversed end
local release = tonumber(requested) or held
if release <= 0 or release > held then return { 3, '' } end

reversed = redis.call('HINCRBY', auth_key, 'reversed', release)
held = amount - reversed
local authorized = cjson.null
local trip_key = (a[5] and a[5] ~= '') and trip_key_of(base, shopper_id, a[5]) or ''
-- The trip's version (its created_ms): the persister moves only that trip's totals.
local trip_created = trip_key ~= '' and redis.call('HGET', trip_key, 'created_ms') or false
if trip_created then
  authorized = redis.call('HINCRBY', trip_key, 'authorized_cents', -release)
  redis.call('HINCRBY', trip_key, 'reversed_cents', release)
end

local state = {
  authorization_id = auth_id, transaction_id = txn, trip_id = a[5], amount_cents = amount,
  reversed_cents = reversed, held_cents = held, status = (held == 0) and 'reversed' or 'partially_reversed',
}
redis.call('SET', rev_key, cjson.encode({ requested = requested, shopper = shopper_id, txn = txn, state = state }),
  'EX', tonumber(ARGV[7]))
wal_append(wal_key, ARGV[2], 'reversal.applied', cjson.encode({
  reversal_key = ARGV[5], requested = requested, signature = (ARGV[8] ~= '' and ARGV[8]) or cjson.null,
  authorization_id = auth_id, transaction_id = txn, shopper_id = shopper_id,
  trip_id = a[5], amount_cents = release, reversed_cents = reversed, held_cents = held,
  authorized_cents = authorized, trip_created_ms = (trip_created and tonumber(trip_created)) or cjson.null,
  at_ms = now_ms,
}))
return { 0, cjson.encode(state) }
