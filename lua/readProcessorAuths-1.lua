--[[
  The approved decisions on one processor authorization (an authorization and
  its incremental requests), oldest first, for the processor's later events
  (src/processors/common/events.ts). Read only.

  Input:
    KEYS[1] <base>pref:<processor>:<processor authorization id>
    ARGV[1] shopper_id (the card's owner; another shopper's decisions are not returned)
    ARGV[2] the key's suffix after the partition base: pref:<processor>:<id>

  Output: JSON array (possibly empty) of
    { authorization_id, transaction_id, amount_cents, reversed_cents, cleared, cleared_cents,
      expired }
]]
--- @include "includes/trip"

assert(#ARGV == 2, 'readProcessorAuths takes 2 arguments')

local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local base = base_of(KEYS[1], ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local a = redis.call('HMGET', base .. 'auth:' .. id, 'shopper', 'txn', 'amount', 'reversed', 'cleared', 'expired',
    'decision')
  if a[1] == ARGV[1] and a[7] == 'approved' then
    out[#out + 1] = { authorization_id = id, transaction_id = a[2], amount_cents = tonumber(a[3]),
      reversed_cents = tonumber(a[4]), cleared = a[5] and true or false, cleared_cents = tonumber(a[5] or '0'),
      expired = a[6] and true or false }
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
