--[[
  Registers or retires a processor card for a shopper (CONTRACT §7 cards).
  A card lives in the partition of its own id (crc32("<processor>:<card_id>")),
  not its shopper's: a swipe names the card before anyone knows the shopper
  (docs/processors.md, "Card registry"). A card belongs to one shopper at a time;
  the hash keeps the earlier owners so later events of their authorizations
  still find them.

  Input:
    KEYS[1] card key     <base>card:<processor>:<card_id>
    KEYS[2] WAL stream   <base>wal   (the card's partition)

    ARGV[1] now_ms   ARGV[2] event_id   ARGV[3] processor   ARGV[4] card_id
    ARGV[5] shopper_id   ARGV[6] op ('put' | 'delete')

  Output: { code }
    put:    0 registered now (201); 1 already this shopper's (200); 2 another shopper's (409)
    delete: 3 retired now (204); 4 unknown or already retired (204, nothing written);
            5 another shopper's card (404, nothing written)
]]
--- @include "includes/wal"

assert(#ARGV == 6, 'registerCard takes 6 arguments')

local card_key = KEYS[1]
local wal_key = KEYS[2]
local now_ms = tonumber(ARGV[1])
local processor = ARGV[3]
local card_id = ARGV[4]
local shopper_id = ARGV[5]
local op = ARGV[6]
-- Earlier owners kept (bounded): enough for events of authorizations still held.
local OWNERS_MAX = 8

local c = redis.call('HMGET', card_key, 'shopper', 'status', 'owners')
local owner, status, owners = c[1], c[2], c[3] or ''

if op == 'put' then
  if owner and status == 'active' then
    if owner == shopper_id then return { 1 } end
    return { 2 }
  end
  -- New, or retired: (re)register; a retired card's owner joins the earlier owners.
  if owner and owner ~= shopper_id then
    local list = { owner }
    for o in string.gmatch(owners, '[^,]+') do
      if o ~= owner and o ~= shopper_id and #list < OWNERS_MAX then list[#list + 1] = o end
    end
    owners = table.concat(list, ',')
  end
  redis.call('HSET', card_key, 'shopper', shopper_id, 'status', 'active', 'owners', owners, 'at_ms', now_ms)
  wal_append(wal_key, ARGV[2], 'card.registered', cjson.encode({
    processor = processor, card_id = card_id, shopper_id = shopper_id, status = 'active',
    owners = owners, at_ms = now_ms,
  }))
  return { 0 }
end

assert(op == 'delete', 'op must be put or delete')
if not owner or status ~= 'active' then
  if owner and owner ~= shopper_id then return { 5 } end
  return { 4 }
end
if owner ~= shopper_id then return { 5 } end
redis.call('HSET', card_key, 'status', 'retired', 'at_ms', now_ms)
wal_append(wal_key, ARGV[2], 'card.registered', cjson.encode({
  processor = processor, card_id = card_id, shopper_id = shopper_id, status = 'retired',
  owners = owners, at_ms = now_ms,
}))
return { 3 }
