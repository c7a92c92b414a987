--[[
  Posts the final settled amount of an approved authorization (CONTRACT §2
  clearings). The amount may be lower than what is still held, or higher by at
  most the trip's slack (CONTRACT §3 "slack", from the trip hash now). The hold
  is released and the trip's authorized total moves to the cleared amount.
  Idempotent per transaction: one clearing per authorization.

  Input:
    KEYS[1] idempotency key of the transaction  <base>idem:t:<transaction_id>
    KEYS[2] clearing key                         <base>clr:<transaction_id>
    KEYS[3] WAL stream                           <base>wal

    ARGV[1] now_ms   ARGV[2] event_id   ARGV[3] shopper_id   ARGV[4] transaction_id
    ARGV[5] cleared_cents (> 0)   ARGV[6] cleared_at_ms (processor's time)
    ARGV[7] currency ('' = not given)   ARGV[8] clearing_ttl_s
    ARGV[9] signature v1 the request was accepted with ('' = none; in the event)

  Output: { code, state JSON }
    0 cleared now; 1 replay of the same clearing (same amount);
    2 unknown authorization (404); 3 amount above held + slack (409);
    4 already cleared with a different amount (409); 5 authorization was declined (409);
    6 currency differs from the authorization's (409)
    A clearing refused with 3 or 5 is still recorded, never lost: the first
    time a (transaction, amount) is refused, a WAL event clearing.flagged
    carries it (flag above_authorized, reversed_authorization or
    not_approved, and excess_cents) to Postgres (clearing_flags) for review;
    marker <base>clrx:<transaction_id>:<cleared_cents> keeps it to once.
    state: { authorization_id, transaction_id, trip_id, currency, amount_cents, reversed_cents,
             released_cents, cleared_cents, held_cents, cleared_at_ms, status }
]]
--- @include "includes/wal"
--- @include "includes/allowance"
--- @include "includes/trip"
--- @include "includes/authorizationRef"

assert(#ARGV == 9, 'clearAuthorization takes 9 arguments')

local idem_key = KEYS[1]
local clr_key = KEYS[2]
local wal_key = KEYS[3]
local now_ms = tonumber(ARGV[1])
local shopper_id = ARGV[3]
local txn = ARGV[4]
local cleared = tonumber(ARGV[5])
local cleared_at_ms = tonumber(ARGV[6])
local currency = ARGV[7]

-- 1. A clearing already posted for this transaction: replay or conflict.
local replay = stored_answer(clr_key, shopper_id, txn, function(previous)
  return previous.state.cleared_cents == cleared
end)
if replay then return replay end

-- 2. Validate before the first write.
local auth_id, auth_key, base = authorization_of(idem_key, txn)
if not auth_id then return { 2, '' } end
local a = redis.call('HMGET', auth_key, 'shopper', 'decision', 'amount', 'reversed', 'trip', 'fo_trip', 'currency',
  'cleared', 'expired')
if not a[1] or a[1] ~= shopper_id then return { 2, '' } end

-- A clearing the processor posted is money that moved: when it cannot be
-- applied it is recorded and flagged (once per transaction and amount).
local function flag_refused(flag, trip_id, excess)
  if not redis.call('SET', base .. 'clrx:' .. txn .. ':' .. cleared, flag, 'NX', 'EX', tonumber(ARGV[8])) then
    return
  end
  wal_append(wal_key, ARGV[2], 'clearing.flagged', cjson.encode({
    authorization_id = auth_id, transaction_id = txn, shopper_id = shopper_id,
    trip_id = (trip_id ~= '' and trip_id) or cjson.null, currency = a[7], flag = flag,
    amount_cents = tonumber(a[3]), reversed_cents = tonumber(a[4] or '0'), cleared_cents = cleared,
    excess_cents = excess, cleared_at_ms = cleared_at_ms, at_ms = now_ms,
  }))
end

if a[2] ~= 'approved' then
  flag_refused('not_approved', a[5] or '', cleared)
  return { 5, '' }
end
if currency ~= '' and currency ~= a[7] then return { 6, '' } end
-- The clearing key lives as long as the auth hash; the field is the backstop.
if a[8] then
  if tonumber(a[8]) ~= cleared then return { 4, '' } end
  return { 1, cjson.encode({ authorization_id = auth_id, transaction_id = txn, trip_id = a[5], currency = a[7],
    amount_cents = tonumber(a[3]), reversed_cents = tonumber(a[4]), cleared_cents = cleared, held_cents = 0,
    status = 'cleared' }) }
end
-- A replayed fail-open approval answered without a trip but was counted against fo_trip.
local trip_id = a[5] or ''
if trip_id == '' and a[6] then trip_id = a[6] end

local amount = tonumber(a[3])
local reversed = tonumber(a[4])
local trip_key = trip_id ~= '' and trip_key_of(base, shopper_id, trip_id) or ''
local slack = 0
local t = nil
if trip_id ~= '' then
  t = redis.call('HMGET', trip_key, 'picked_cents', 'tax_bps', 'tol_bps', 'tol_cents', 'created_ms')
  if t[1] then
    local picked = tonumber(t[1])
    local taxed = picked + ceil_div(picked * tonumber(t[2]), 10000)
    slack = ceil_div(taxed * tonumber(t[3]), 10000)
    if tonumber(t[4]) > slack then slack = tonumber(t[4]) end
  else
    t = nil
  end
end
if cleared > amount - reversed + slack then
  local flag = 'above_authorized'
  if reversed > 0 and amount - reversed == 0 then flag = 'reversed_authorization' end
  flag_refused(flag, trip_id, cleared - (amount - reversed + slack))
  return { 3, '' }
end

-- 3. Release what is still held (nothing when the hold expired), post the clearing.
local released = amount - reversed
if a[9] then released = 0 end
redis.call('HSET', auth_key, 'cleared', cleared, 'cleared_ms', now_ms, 'cleared_at_ms', cleared_at_ms)
local authorized = cjson.null
if t then
  authorized = redis.call('HINCRBY', trip_key, 'authorized_cents', cleared - released)
  redis.call('HINCRBY', trip_key, 'cleared_cents', cleared)
end

local state = {
  authorization_id = auth_id, transaction_id = txn, trip_id = trip_id, currency = a[7], amount_cents = amount,
  reversed_cents = reversed, released_cents = released, cleared_cents = cleared, held_cents = 0,
  cleared_at_ms = cleared_at_ms, status = 'cleared',
}
redis.call('SET', clr_key, cjson.encode({ shopper = shopper_id, txn = txn, state = state }), 'EX', tonumber(ARGV[8]))
wal_append(wal_key, ARGV[2], 'clearing.posted', cjson.encode({
  signature = (ARGV[9] ~= '' and ARGV[9]) or cjson.null, authorization_id = auth_id, transaction_id = txn, shopper_id = shopper_id,
  trip_id = (trip_id ~= '' and trip_id) or cjson.null, currency = a[7], amount_cents = amount,
  reversed_cents = reversed, released_cents = released, cleared_cents = cleared, cleared_at_ms = cleared_at_ms,
  authorized_cents = authorized, trip_created_ms = (t and tonumber(t[5])) or cjson.null, at_ms = now_ms,
}))
return { 0, cjson.encode(state) }
