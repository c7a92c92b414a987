--[[
  Decides one card swipe: idempotency, every decline reason of CONTRACT §1 in
  order, the allowance of §3, and the WAL event — atomically, in one call.

  Input:
    KEYS[1] shopper key      <base>shopper:<shopper_id>
    KEYS[2] idempotency key  <base>idem:<kind>:<key>
    KEYS[3] signature key    <base>sig:<v1 hex>   (a dummy <base>sig:- when unsigned)
    KEYS[4] WAL stream       <base>wal
    (trip keys are built from the partition base: same hash tag, same slot)

    ARGV[1]  now_ms                 ARGV[2]  event_id
    ARGV[3]  authorization_id       ARGV[4]  shopper_id
    ARGV[5]  amount_cents           ARGV[6]  currency
    ARGV[7]  merchant name (normalized)        ARGV[8] merchant address (normalized)
    ARGV[9]  lat ('' = unknown)     ARGV[10] lng
    ARGV[11] fingerprint            ARGV[12] idempotency key (kind:key)
    ARGV[13] transaction_id ('')    ARGV[14] signature v1 ('' = none)
    ARGV[15] trip_ttl_ms            ARGV[16] max_distance_m
    ARGV[17] max_swipes_per_minute  ARGV[18] idempotency_ttl_s
    ARGV[19] authorization_ttl_s    ARGV[20] signature_ttl_s
    ARGV[21] authorizations kept per trip (its :auths list)
    ARGV[22] velocity window ms (max_swipes_per_minute counts swipes in it)
    ARGV[23] WAL payload format: '' = a JSON object; 'a1' = a JSON array of the same values in
             the order of WAL_DECIDED_FIELDS (src/redis/walDecided.ts), the entry marked f=a1
             (WAL_COMPACT_PAYLOAD; only once every persister decodes it: docs/deploy.md)
    ARGV[24] velocity layout: '' = the trip's :swipes sorted set; 'h' = the trip hash's `vel`
             field (VELOCITY_IN_TRIP_HASH; only once every pod runs a release that reads it:
             docs/deploy.md). Either layout counts what both hold, so pods of either setting
             serve side by side.
    ARGV[25] 'r' = this region has peer regions (CONTRACT §8): "no trip here" (code 2) is
             answered without writing anything, because the api forwards the swipe to the
             shopper's home region, whose answer is the record (docs/regions.md);
             'rf' = the same, and ARGV[3] came with a swipe another region forwarded here
             (derived from the channel signature, src/regions/channel.ts): a new decision
             under it is refused (code 13, nothing written) when <base>auth:<ARGV[3]> holds
             another request's decision; the same request's is answered again (replayed)
    ARGV[26..28] the authorization.decided event's pieces in the format of ARGV[23]: the values
             the api knows (the request as sent, the processor's ids) JSON-encoded around the two
             holes this script fills (lua/includes/walDecided.lua, src/redis/walDecided.ts)
    Processor swipes only (src/processors/, CONTRACT §7), absent for the native webhook; their
    presence means: match the merchant on processor data (§4b) instead of §4:
    ARGV[29] network (acquirer merchant) id   ARGV[30] postal code (first 5, normalized)
    ARGV[31] MCC                     ARGV[32] '1' = a partial approval may be given
    ARGV[33] processor               ARGV[34] processor authorization id (reconciliation)
    (an approval on a processor swipe is also appended to <base>pref:<processor>:<ARGV[34]>)

  Output: { code, authorization_id, trip_id, amount_cents, remaining_cents, mode, replayed }
    amount_cents is the approved amount: below the requested ARGV[5] only for a
    partial approval (ARGV[29] = '1' and the allowance left is below the request).
    code 0 approved; 1..10 the decline reasons in contract order
    (1 IDEMPOTENCY_CONFLICT .. 10 AMOUNT_EXCEEDS_ALLOWANCE); replayed 1 when
    the answer is a stored earlier decision (nothing consumed);
    code 12: the signature was accepted on another processor endpoint
    (reversals, clearings store `ep:<endpoint>` under the signature key) —
    nothing decided, nothing written: the api answers 401 (CONTRACT §1).
    code 13: ARGV[25] 'rf' and the authorization id already names a decision here
    (an earlier request's): nothing decided, nothing written; the api decides again
    under an id of its own, so no decision is ever overwritten or merged.
    code 11: the partition's state is not known intact (no <base>meta: Redis
    lost data and hydrate has not finished) — nothing decided, nothing written:
    the api treats it as storage unavailable (fail-open policy), because an
    UNKNOWN_SHOPPER here would be a wrong answer.
]]
--- @include "includes/walDecided"
--- @include "includes/allowance"
--- @include "includes/geo"
--- @include "includes/trip"
--- @include "includes/velocity"
--- @include "includes/merchantMatch"
--- @include "includes/reasons"

assert(#ARGV == 28 or #ARGV == 34, 'authorizeSwipe takes 28 arguments, 34 for a processor swipe')

local shopper_key = KEYS[1]
local idem_key = KEYS[2]
local sig_key = KEYS[3]
local wal_key = KEYS[4]

local now_ms = tonumber(ARGV[1])
local event_id = ARGV[2]
local auth_id = ARGV[3]
local shopper_id = ARGV[4]
local amount = tonumber(ARGV[5])
local currency = ARGV[6]
local m_name = ARGV[7]
local m_addr = ARGV[8]
local lat = tonumber(ARGV[9])
local lng = tonumber(ARGV[10])
local fingerprint = ARGV[11]
local idem_suffix = ARGV[12]
local txn = ARGV[13]
local signature = ARGV[14]
local trip_ttl_ms = tonumber(ARGV[15])
local max_distance_m = tonumber(ARGV[16])
local max_swipes = tonumber(ARGV[17])
local idem_ttl_s = tonumber(ARGV[18])
local auth_ttl_s = tonumber(ARGV[19])
local sig_ttl_s = tonumber(ARGV[20])
local auths_kept = tonumber(ARGV[21])
local velocity_window_ms = tonumber(ARGV[22])
local processor_match = #ARGV == 34
local partial_allowed = ARGV[32] == '1'
-- The processor and its authorization id ('' for the native webhook).
local processor = ARGV[33] or ''
local processor_auth = ARGV[34] or ''
local wal_format = ARGV[23]
assert(wal_format == '' or wal_format == 'a1', 'unknown WAL payload format')
-- The event's pieces were built for this format ('[' array, '{' object): a mix would be bad JSON.
assert(string.byte(ARGV[26]) == ((wal_format == 'a1') and 91 or 123), 'WAL pieces do not match the WAL format')
local velocity_in_hash = ARGV[24] == 'h'
assert(velocity_in_hash or ARGV[24] == '', 'unknown velocity layout')
-- vel is parsed whole on every swipe: bounded (VELOCITY_IN_HASH_SWIPES_MAX, src/redis/commands.ts).
assert(not velocity_in_hash or max_swipes <= 64, 'velocity in the trip hash holds at most 64 swipes')
local requested = amount
local regions = ARGV[25]
assert(regions == '' or regions == 'r' or regions == 'rf', 'unknown regions flag')

local base = base_of(shopper_key, 'shopper:' .. shopper_id)
local trip_keys_ttl_s = math.floor(trip_ttl_ms / 1000) + auth_ttl_s
-- What a decision reads of the trip; t[i] below is TRIP_FIELDS[i].
local TRIP_FIELDS = { 'status', 'activity_ms', 'currency', 'm_name', 'm_addr', 'lat', 'lng', 'picked_cents',
  'picked_lines', 'authorized_cents', 'tax_bps', 'tol_bps', 'tol_cents', 'hold_cents', 'created_ms', 'm_nids',
  'm_postal', 'm_mccs', 'approved_cents', 'vel' }

-- 0. Only decide on state known intact (hydrate or first boot writes meta).
if redis.call('EXISTS', base .. 'meta') == 0 then
  return { 11, auth_id, '', amount, 0, 'normal', 0 }
end

-- A stored decision, answered again: same body, nothing consumed.
local function replay(stored_id)
  local a = redis.call('HMGET', base .. 'auth:' .. stored_id, 'code', 'trip', 'amount', 'remaining', 'mode', 'fp')
  if not a[1] then return nil end
  return { tonumber(a[1]), stored_id, a[2], tonumber(a[3]), tonumber(a[4]), a[5], 1 }, a[6]
end

-- Both earlier answers in one read (an unsigned swipe reads the dummy sig:- and ignores it).
local earlier = redis.call('MGET', sig_key, idem_key)

-- 1. A signature seen before is answered with the decision first made for it.
if signature ~= '' then
  local stored_id = earlier[1]
  if stored_id then
    if string.sub(stored_id, 1, 3) == 'ep:' then return { 12, auth_id, '', amount, 0, 'normal', 0 } end
    local result = replay(stored_id)
    if result then return result end
  end
end

-- 2. Idempotency key: replay, or conflict when the request differs.
local stored_id = earlier[2]
if stored_id then
  local result, stored_fp = replay(stored_id)
  if result then
    if stored_fp ~= fingerprint then
      return { 1, stored_id, result[3], amount, 0, 'normal', 0 }
    end
    if signature ~= '' then redis.call('SET', sig_key, stored_id, 'EX', sig_ttl_s, 'NX') end
    return result
  end
end

-- 2b. An id that came with a forwarded swipe is used for a new decision only when it names none
--     here. Naming this same request (the forwarding region's fail-open answer under this id was
--     replayed here first, under another derived key), it is that decision's answer.
if regions == 'rf' then
  local result, stored_fp = replay(auth_id)
  if result then
    if stored_fp == fingerprint then return result end
    return { 13, auth_id, '', amount, 0, 'normal', 0 }
  end
end

-- 3. The decline reasons, in contract order; the first that fails decides.
local code = 0
local trip_id = redis.call('HGET', shopper_key, 'trip')
local trip_key = nil
local t = nil
if not trip_id then
  code = 2
else
  trip_key, t = read_trip_of(base, shopper_id, trip_id, TRIP_FIELDS)
  if t then table.remove(t, 1) end -- the owner: t[i] is TRIP_FIELDS[i]
  if not t or not t[1] then
    code = 4 -- the trip's keys expired long after its activity ended
  elseif t[1] == 'closed' then
    code = 3
  elseif trip_expired(tonumber(t[2]), now_ms, trip_ttl_ms) then
    code = 4
  end
end

-- Not here, with peer regions: not a decision of this region (nothing recorded, nothing consumed).
if code == 2 and regions ~= '' then
  return { 2, auth_id, '', amount, 0, 'normal', 0 }
end

local remaining = 0
local authorized = nil
local counts_for_velocity = false
local swipes_in_window = nil -- the :swipes set's count, known when the velocity check ran there
local vel = nil -- the trip hash's velocity window (velocity_window below), once read
if code == 0 then
  counts_for_velocity = true
  authorized = tonumber(t[10])
  local ceiling = ceiling_cents(tonumber(t[8]), tonumber(t[11]), tonumber(t[12]), tonumber(t[13]), tonumber(t[14]))
  remaining = ceiling - authorized
  local store_lat = tonumber(t[6])
  local store_lng = tonumber(t[7])
  local swipes_key = trip_key .. ':swipes'
  if currency ~= t[3] then
    code = 5
  elseif not processor_match and not merchant_matches(m_name, m_addr, t[4], t[5]) then
    code = 6
  elseif processor_match and not processor_merchant_matches(m_name, m_addr, ARGV[29], ARGV[30], ARGV[31], t[4],
      t[5], t[16] or '', t[17] or '', t[18] or '') then
    code = 6
  elseif lat and lng and store_lat and store_lng and distance_m(lat, lng, store_lat, store_lng) > max_distance_m then
    code = 7
  else
    vel = velocity_window(t[20], now_ms - velocity_window_ms, max_swipes)
    local in_set
    if velocity_in_hash then
      -- A pod with the flag off (rollout) or fail-open replay and hydrate may still add to the set.
      -- Times are whole ms: "after the window's start" is from its next ms, a number argument
      -- (Lua's number to string for '(' .. start costs more than the command).
      in_set = redis.call('ZCOUNT', swipes_key, now_ms - velocity_window_ms + 1, '+inf')
    else
      redis.call('ZREMRANGEBYSCORE', swipes_key, '-inf', now_ms - velocity_window_ms)
      in_set = redis.call('ZCARD', swipes_key)
      swipes_in_window = in_set
    end
    if in_set + #vel >= max_swipes then
      code = 8
    elseif tonumber(t[9]) == 0 then
      code = 9
    elseif amount > remaining then
      if partial_allowed and remaining > 0 then amount = remaining else code = 10 end
    end
  end
end

-- The swipe in the trip's velocity window and its list of authorizations; a key this creates
-- gets the trip's expiry (keep_trip_alive moves all of them together later).
local function record_swipe(trip_key, id, at_ms, in_window, expire_at_ms)
  if not velocity_in_hash then
    local swipes_key = trip_key .. ':swipes'
    redis.call('ZADD', swipes_key, at_ms, id)
    -- Only "are there already max swipes in the window" matters: keep the newest max.
    if in_window == nil or in_window + 1 > max_swipes then
      redis.call('ZREMRANGEBYRANK', swipes_key, 0, -(max_swipes + 1))
    end
    -- None in the window: the removal above deleted the set (or it never was), ZADD made it anew.
    if in_window == nil or in_window == 0 then redis.call('PEXPIREAT', swipes_key, expire_at_ms) end
  end
  local auths_key = trip_key .. ':auths'
  local listed = redis.call('LPUSH', auths_key, id)
  if listed > auths_kept then redis.call('LTRIM', auths_key, 0, auths_kept - 1) end
  if listed == 1 then redis.call('PEXPIREAT', auths_key, expire_at_ms) end
end

-- 4. Record the decision. Only an approval changes the authorized total.
local trip_field = trip_id or ''
-- The swipe in the trip hash's velocity window (flag on): written with the approval's fields.
local vel_fields = {}
if counts_for_velocity and velocity_in_hash then
  vel = vel or velocity_window(t[20], now_ms - velocity_window_ms, max_swipes)
  vel_fields = { 'vel', velocity_add(vel, now_ms, max_swipes) }
end
if code == 0 then
  -- One write for the three fields (the script is atomic: t is still what the trip holds).
  authorized = authorized + amount
  redis.call('HSET', trip_key, 'authorized_cents', authorized, 'approved_cents', (tonumber(t[19]) or 0) + amount,
    'activity_ms', now_ms, unpack(vel_fields))
  remaining = remaining - amount
elseif #vel_fields > 0 then
  redis.call('HSET', trip_key, unpack(vel_fields))
end
if counts_for_velocity then
  -- Keep the trip's keys alive as long as a decision on it may be looked at.
  local expire_at_ms = keep_trip_alive(trip_key, now_ms, trip_keys_ttl_s)
  record_swipe(trip_key, auth_id, now_ms, swipes_in_window, expire_at_ms)
end

local auth_key = base .. 'auth:' .. auth_id
local decision = 'declined'
local status = 402
if code == 0 then decision = 'approved'; status = 200 end
local auth_fields = { 'code', code, 'status', status, 'decision', decision, 'mode', 'normal',
  'trip', trip_field, 'shopper', shopper_id, 'amount', amount, 'remaining', remaining, 'currency', currency,
  'txn', txn, 'idem', idem_suffix, 'fp', fingerprint, 'reversed', 0, 'at_ms', now_ms }
if processor ~= '' then
  for _, v in ipairs({ 'requested', requested, 'proc', processor, 'proc_auth', processor_auth }) do
    auth_fields[#auth_fields + 1] = v
  end
end
redis.call('HSET', auth_key, unpack(auth_fields))
if processor ~= '' then
  -- The processor's later events name its authorization, which incremental requests share:
  -- its approved decisions, oldest first (src/processors/common/events.ts).
  if code == 0 then
    local pref_key = base .. 'pref:' .. processor .. ':' .. processor_auth
    redis.call('RPUSH', pref_key, auth_id)
    redis.call('LTRIM', pref_key, -32, -1)
    redis.call('EXPIRE', pref_key, auth_ttl_s)
  end
end
if code == 0 then
  redis.call('EXPIRE', auth_key, auth_ttl_s)
else
  redis.call('EXPIRE', auth_key, idem_ttl_s)
end
redis.call('SET', idem_key, auth_id, 'EX', idem_ttl_s)
if signature ~= '' then redis.call('SET', sig_key, auth_id, 'EX', sig_ttl_s) end

local status_text = (code == 0) and '200' or '402'
wal_append_decided(wal_key, event_id, wal_format, { ARGV[26], ARGV[27], ARGV[28] }, status_text, trip_id,
  t and t[15], decision, DECLINE_REASONS[code], amount, remaining, authorized)

return { code, auth_id, trip_field, amount, remaining, 'normal', 0 }
