--[[
  Replays one fail-open approval from an api pod's local journal into Redis
  (docs/failopen.md). Idempotent on the authorization id (replay marker) and
  on the idempotency key: each journal entry lands in the WAL exactly once,
  and an approval is counted against a trip at most once.

  Input:
    KEYS[1] shopper key      <base>shopper:<shopper_id>
    KEYS[2] idempotency key  <base>idem:<kind>:<key>
    KEYS[3] replay marker    <base>fo:<authorization_id>
    KEYS[4] WAL stream       <base>wal
    (trip, auth and meta keys are built from the partition base: same slot)

    ARGV[1]  now_ms (replay time)   ARGV[2]  event_id (from the journal entry:
                                             the same on every replay attempt)
    ARGV[3]  authorization_id       ARGV[4]  shopper_id
    ARGV[5]  amount_cents           ARGV[6]  currency
    ARGV[7]  fingerprint            ARGV[8]  idempotency key (kind:key)
    ARGV[9]  transaction_id ('')    ARGV[10] merchant name as sent
    ARGV[11] merchant address as sent
    ARGV[12] lat ('' = unknown)     ARGV[13] lng
    ARGV[14] decided_ms (when the api approved it)
    ARGV[15] remaining_cents as answered to the processor
    ARGV[16] trip_ttl_ms            ARGV[17] max_swipes_per_minute
    ARGV[18] idempotency_ttl_s      ARGV[19] authorization_ttl_s
    ARGV[20] require_intact: 1 = defer while the partition's state is not
             known intact (no <base>meta: Redis lost data, hydrate pending or
             in progress); 0 = replay anyway (the entry waited too long)
    ARGV[21] authorizations kept per trip (its :auths list)
    ARGV[22] processor ('' = the native webhook)   ARGV[23] processor card id
    ARGV[24] processor authorization id            ARGV[25] processor request id
             (CONTRACT §7: kept on the authorization; an applied or overridden
             approval joins <base>pref:<processor>:<ARGV[24]> for later events)
    ARGV[26] signature id the swipe was accepted with ('' = none)
    ARGV[27] signature_ttl_ms (how long a signature is claimed after its decision)
             An applied or overridden approval claims <base>sig:<ARGV[26]> for the
             swipe endpoint (over a reversal's or clearing's claim made while it was
             unknown): its bytes are then refused elsewhere, and its retry gets it.

  Output: { code, outcome, stored_authorization_id, trip_id, authorized_cents }
    code 0 applied          counted against the shopper's trip (trip_id '' when
                            no trip existed at decision time), auth + idem
                            written, WAL failopen.replayed
         1 already_decided  Redis had decided this key the same way (approved,
                            same request): nothing counted, WAL event; when it
                            was our own timed-out call (same authorization id)
                            the stored answer becomes the delivered fail-open one
         2 conflict         Redis had decided this key otherwise (declined, or a
                            different request): Redis's decision kept, nothing
                            counted, WAL event only
         3 duplicate        this entry was replayed before: nothing written
         4 deferred         partition not intact (no meta): nothing written,
                            retry after hydrate
         5 invalid          bad arguments: nothing written
         6 overridden       our own timed-out call executed late and Redis
                            declined it (a local call, or the home's decision
                            of a forwarded swipe: the same authorization id):
                            the answer given (the fail-open approval) is the
                            record. The auth hash becomes the
                            approval, it is counted against the trip as in
                            `applied`, and Redis's reason is kept in the WAL
                            event (redis_decision/redis_reason) and the hash
                            (fo_redis_code) for review
    authorized_cents: the trip's total after (-1 when nothing was counted)
    An `applied` or `overridden` event carries redis_decision 'declined' and a
    redis_reason when Redis would have declined the swipe at replay time (no
    trip, trip closed or expired, allowance passed): flagged, still counted.
]]
--- @include "includes/wal"
--- @include "includes/trip"
--- @include "includes/allowance"
--- @include "includes/reasons"

assert(#ARGV == 27, 'replayFailOpen takes 27 arguments')

local shopper_key = KEYS[1]
local idem_key = KEYS[2]
local marker_key = KEYS[3]
local wal_key = KEYS[4]

local now_ms = tonumber(ARGV[1])
local event_id = ARGV[2]
local auth_id = ARGV[3]
local shopper_id = ARGV[4]
local amount = tonumber(ARGV[5])
local currency = ARGV[6]
local fingerprint = ARGV[7]
local idem_suffix = ARGV[8]
local txn = ARGV[9]
local lat = tonumber(ARGV[12])
local lng = tonumber(ARGV[13])
local decided_ms = tonumber(ARGV[14])
local answered_remaining = tonumber(ARGV[15])
local trip_ttl_ms = tonumber(ARGV[16])
local max_swipes = tonumber(ARGV[17])
local idem_ttl_s = tonumber(ARGV[18])
local auth_ttl_s = tonumber(ARGV[19])
local require_intact = ARGV[20] == '1'
local auths_kept = tonumber(ARGV[21])

-- 1. Validate everything before the first write.
local function is_int(v) return v ~= nil and v == math.floor(v) end
if event_id == '' or auth_id == '' or shopper_id == '' or fingerprint == '' or idem_suffix == ''
  or not (is_int(now_ms) and is_int(amount) and amount > 0 and is_int(decided_ms) and is_int(answered_remaining)
    and is_int(trip_ttl_ms) and is_int(max_swipes) and max_swipes > 0 and is_int(idem_ttl_s) and idem_ttl_s > 0
    and is_int(auth_ttl_s) and auth_ttl_s > 0) then
  return { 5, 'invalid', '', '', -1 }
end
if string.sub(marker_key, -string.len('fo:' .. auth_id)) ~= 'fo:' .. auth_id then
  return { 5, 'invalid', '', '', -1 }
end
local base = base_of(shopper_key, 'shopper:' .. shopper_id)

-- 2. Replayed before: nothing to do (the journal lost its ack, or a retry).
local done = redis.call('GET', marker_key)
if done then return { 3, done, '', '', -1 } end

local function or_null(v) if v == nil or v == '' then return cjson.null end return v end
-- The counted trip's version (its created_ms): the persister moves only that trip's totals.
local counted_created = nil
local function event(outcome, trip_id, authorized, stored_id, stored_decision, stored_reason)
  return cjson.encode({
    authorization_id = auth_id, idempotency_key = idem_suffix, fingerprint = fingerprint,
    signature = cjson.null, status = 200, transaction_id = or_null(txn), shopper_id = shopper_id,
    trip_id = or_null(trip_id), decision = 'approved', reason = cjson.null, mode = 'fail_open',
    amount_cents = amount, remaining_cents = answered_remaining, authorized_cents = or_null(authorized),
    currency = currency, merchant_name = ARGV[10], merchant_address = ARGV[11], lat = or_null(lat),
    lng = or_null(lng), at_ms = decided_ms, replayed_ms = now_ms, replay_outcome = outcome,
    redis_authorization_id = or_null(stored_id), redis_decision = or_null(stored_decision),
    redis_reason = or_null(stored_reason), trip_created_ms = or_null(trip_id ~= '' and counted_created or nil),
    processor = or_null(ARGV[22]), processor_card_id = or_null(ARGV[23]),
    processor_authorization_id = or_null(ARGV[24]), processor_request_id = or_null(ARGV[25]),
    requested_cents = amount,
  })
end

-- 3. After a data loss the idempotency keys and trips may be missing or only
--    half rebuilt: wait for hydrate to mark the partition intact.
if require_intact and redis.call('EXISTS', base .. 'meta') == 0 then
  return { 4, 'deferred', '', '', -1 }
end

-- 4. Redis already decided this key (a timed-out call that did execute, or a
--    retry served by Redis, or another pod): keep Redis's decision, count nothing.
-- Set when our own late call was declined by Redis: that decision is replaced (step 6).
local overridden_code = nil
local stored_id = redis.call('GET', idem_key)
if not stored_id and redis.call('EXISTS', base .. 'auth:' .. auth_id) == 1 then
  -- A decision under this very id, recorded under another key of the request: a swipe forwarded
  -- from another region is decided here under the id of that region's fail-open answer
  -- (src/regions/channel.ts), and a derived key (30 s window) may differ between the two. Judged
  -- as the key's decision: our own late decision when the fingerprint agrees, else a conflict.
  stored_id = auth_id
end
if stored_id then
  local a = redis.call('HMGET', base .. 'auth:' .. stored_id, 'decision', 'fp', 'mode', 'code')
  if stored_id == auth_id and a[3] == 'fail_open' then
    return { 3, 'applied', stored_id, '', -1 } -- our own earlier replay; its marker expired
  end
  if stored_id == auth_id and a[1] == 'declined' and a[2] == fingerprint then
    overridden_code = tonumber(a[4])
  end
end
if stored_id and not overridden_code then
  local a = redis.call('HMGET', base .. 'auth:' .. stored_id, 'decision', 'fp', 'mode', 'code')
  local outcome = 'conflict'
  if a[1] == 'approved' and a[2] == fingerprint then outcome = 'already_decided' end
  local stored_reason = DECLINE_REASONS[tonumber(a[4] or '0')]
  if outcome == 'already_decided' and stored_id == auth_id then
    -- Our own timed-out call, executed late: Redis's answer was never
    -- delivered, the fail-open one was. Keep the decision and its count; store
    -- the delivered answer so retries get it byte for byte (trip kept in fo_trip).
    local auth_key = base .. 'auth:' .. auth_id
    local counted = redis.call('HGET', auth_key, 'trip')
    redis.call('HSET', auth_key, 'mode', 'fail_open', 'trip', '', 'fo_trip', counted,
      'remaining', answered_remaining, 'replayed_ms', now_ms)
  end
  redis.call('SET', marker_key, outcome, 'EX', idem_ttl_s)
  wal_append(wal_key, event_id, 'failopen.replayed', event(outcome, '', nil, stored_id, a[1] or 'expired', stored_reason))
  local code = 2
  if outcome == 'already_decided' then code = 1 end
  return { code, outcome, stored_id, '', -1 }
end

-- 5. The trip this approval counts against: the shopper's latest trip, when it
--    already existed at decision time.
local trip_id = redis.call('HGET', shopper_key, 'trip')
local trip_key = nil
if trip_id then
  trip_key = trip_key_of(base, shopper_id, trip_id)
  local t = redis.call('HMGET', trip_key, 'created_ms', 'activity_ms')
  if not t[2] or tonumber(t[1] or '0') > decided_ms then
    trip_key = nil -- expired, or a newer trip than the swipe: recorded without a trip
  else
    counted_created = tonumber(t[1])
  end
end

-- What Redis would have said at replay time (flag only: the approval stands).
local would_reason = nil
if not trip_id then
  would_reason = 'UNKNOWN_SHOPPER'
elseif not trip_key then
  would_reason = 'NO_ACTIVE_TRIP'
elseif redis.call('HGET', trip_key, 'status') == 'closed' then
  would_reason = 'TRIP_CLOSED'
end

-- 6. Apply: count, record with the authorizeSwipe layout (so a retry against a
--    healthy Redis replays the fail-open answer byte for byte), log.
local authorized = nil
local counted_trip = ''
if trip_key then
  counted_trip = trip_id
  authorized = redis.call('HINCRBY', trip_key, 'authorized_cents', amount)
  redis.call('HINCRBY', trip_key, 'approved_cents', amount)
  if tonumber(redis.call('HGET', trip_key, 'activity_ms')) < decided_ms then
    redis.call('HSET', trip_key, 'activity_ms', decided_ms)
  end
  local swipes_key = trip_key .. ':swipes'
  redis.call('ZADD', swipes_key, decided_ms, auth_id)
  redis.call('ZREMRANGEBYRANK', swipes_key, 0, -(max_swipes + 1))
  redis.call('LREM', trip_key .. ':auths', 0, auth_id) -- a late decline of ours listed it already
  redis.call('LPUSH', trip_key .. ':auths', auth_id)
  redis.call('LTRIM', trip_key .. ':auths', 0, auths_kept - 1)
  expire_trip(trip_key, now_ms, math.floor(trip_ttl_ms / 1000) + auth_ttl_s)
  local c = redis.call('HMGET', trip_key, 'picked_cents', 'tax_bps', 'tol_bps', 'tol_cents', 'hold_cents')
  if not would_reason and c[1] and authorized > ceiling_cents(tonumber(c[1]), tonumber(c[2]), tonumber(c[3]),
      tonumber(c[4]), tonumber(c[5])) then
    would_reason = 'AMOUNT_EXCEEDS_ALLOWANCE'
  end
end
-- `trip` is what the processor was told (''), so the stored answer is identical;
-- `fo_trip` is the trip it was counted against.
local auth_key = base .. 'auth:' .. auth_id
redis.call('HSET', auth_key, 'code', 0, 'status', 200, 'decision', 'approved', 'mode', 'fail_open',
  'trip', '', 'fo_trip', counted_trip, 'shopper', shopper_id, 'amount', amount, 'remaining', answered_remaining,
  'currency', currency, 'txn', txn, 'idem', idem_suffix, 'fp', fingerprint, 'reversed', 0, 'at_ms', decided_ms,
  'replayed_ms', now_ms)
local outcome = 'applied'
local code = 0
if overridden_code then
  outcome = 'overridden'
  code = 6
  would_reason = DECLINE_REASONS[overridden_code] or would_reason
  redis.call('HSET', auth_key, 'fo_redis_code', overridden_code)
end
redis.call('EXPIRE', auth_key, auth_ttl_s)
if ARGV[22] ~= '' then
  redis.call('HSET', auth_key, 'requested', amount, 'proc', ARGV[22], 'proc_auth', ARGV[24])
  local pref_key = base .. 'pref:' .. ARGV[22] .. ':' .. ARGV[24]
  redis.call('LREM', pref_key, 0, auth_id)
  redis.call('RPUSH', pref_key, auth_id)
  redis.call('LTRIM', pref_key, -32, -1)
  redis.call('EXPIRE', pref_key, auth_ttl_s)
end
redis.call('SET', idem_key, auth_id, 'EX', idem_ttl_s)
redis.call('SET', marker_key, outcome, 'EX', idem_ttl_s)
local sig_left_ms = decided_ms + tonumber(ARGV[27]) - now_ms
if ARGV[26] ~= '' and sig_left_ms > 0 then
  redis.call('SET', base .. 'sig:' .. ARGV[26], auth_id, 'PX', sig_left_ms)
end
local would_decision = nil
if would_reason then would_decision = 'declined' end
wal_append(wal_key, event_id, 'failopen.replayed',
  event(outcome, counted_trip, authorized, overridden_code and auth_id or nil, would_decision, would_reason))
return { code, outcome, auth_id, counted_trip, authorized or -1 }
