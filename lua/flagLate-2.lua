--[[
  Flags an approval whose answer left the api after the processor's deadline:
  the processor has declined it, so its hold must not be trusted (its reversal
  or reconciliation releases it). Runs off the response path; idempotent.

  Input:
    KEYS[1] authorization hash   <base>auth:<authorization_id>
    KEYS[2] WAL stream           <base>wal

    ARGV[1] now_ms   ARGV[2] event_id   ARGV[3] authorization_id
    ARGV[4] elapsed_ms (request arrival to answer)   ARGV[5] deadline_ms

  Output: { code }
    0 flagged now (WAL authorization.late); 1 flagged before: nothing written;
    2 not an approved authorization (missing or declined): nothing written
]]
--- @include "includes/wal"

assert(#ARGV == 5, 'flagLate takes 5 arguments')

local auth_key = KEYS[1]
local wal_key = KEYS[2]
local now_ms = tonumber(ARGV[1])

local a = redis.call('HMGET', auth_key, 'decision', 'late_ms', 'shopper', 'txn', 'trip', 'amount', 'currency')
if a[1] ~= 'approved' then return { 2 } end
if a[2] then return { 1 } end

local elapsed_ms = tonumber(ARGV[4])
redis.call('HSET', auth_key, 'late_ms', now_ms, 'late_elapsed_ms', elapsed_ms)
wal_append(wal_key, ARGV[2], 'authorization.late', cjson.encode({
  authorization_id = ARGV[3], shopper_id = a[3], transaction_id = (a[4] ~= '' and a[4]) or cjson.null,
  trip_id = (a[5] ~= '' and a[5]) or cjson.null, amount_cents = tonumber(a[6]), currency = a[7],
  elapsed_ms = elapsed_ms, deadline_ms = tonumber(ARGV[5]), at_ms = now_ms,
}))
return { 0 }
