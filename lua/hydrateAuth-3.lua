--[[
  Rebuilds one decision (auth hash, idempotency key, signature key) from
  Postgres after Redis lost data (hydrate). Each key is written only when it
  does not exist: anything written since the loss wins.

  Input:
    KEYS[1] auth key         <base>auth:<authorization_id>
    KEYS[2] idempotency key  <base>idem:<kind>:<key>
    KEYS[3] signature key    <base>sig:<v1 hex>  (<base>sig:- when the decision had none)

    ARGV[1] authorization_id
    ARGV[2] auth expire_at_ms        ARGV[3] idem expire_at_ms ('' = skip)
    ARGV[4] sig expire_at_ms ('' = skip)
    ARGV[5] f, then f auth-hash field/value pairs

  Output: { auth_written, idem_written, sig_written } (1/0 each)
]]
local auth_key = KEYS[1]
local idem_key = KEYS[2]
local sig_key = KEYS[3]
local auth_id = ARGV[1]
local auth_exp = tonumber(ARGV[2])
local idem_exp = tonumber(ARGV[3])
local sig_exp = tonumber(ARGV[4])
local f = tonumber(ARGV[5])
assert(auth_exp and f and f > 0 and #ARGV == 5 + 2 * f, 'argument count does not match field count')

local out = { 0, 0, 0 }
if redis.call('EXISTS', auth_key) == 0 then
  for j = 6, 5 + 2 * f, 2 do redis.call('HSET', auth_key, ARGV[j], ARGV[j + 1]) end
  redis.call('PEXPIREAT', auth_key, auth_exp)
  out[1] = 1
end
if idem_exp and redis.call('SET', idem_key, auth_id, 'PXAT', idem_exp, 'NX') then out[2] = 1 end
if sig_exp and redis.call('SET', sig_key, auth_id, 'PXAT', sig_exp, 'NX') then out[3] = 1 end
return out
