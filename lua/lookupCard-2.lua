--[[
  Finds the shopper of a processor card on the request path (CONTRACT §7): the
  cheap first call of a processor decision, in the card's own slot; the
  decision itself is then one authorizeSwipe call in the shopper's slot
  (docs/processors.md, "Card registry").

  Input:
    KEYS[1] card key   <base>card:<processor>:<card_id>
    KEYS[2] meta key   <base>meta   (the card's partition; hydrate writes it)

  Output: { code, shopper_id, earlier owners (comma-separated) }
    0 active card; 1 retired card (its last owner, for later events; a swipe
    on it is UNKNOWN_SHOPPER); 2 unknown card; 3 the partition's state is not
    known intact (Redis lost data, hydrate pending): storage unavailable.
]]

assert(#ARGV == 0, 'lookupCard takes 0 arguments')
if redis.call('EXISTS', KEYS[2]) == 0 then return { 3, '', '' } end
local c = redis.call('HMGET', KEYS[1], 'shopper', 'status', 'owners')
if not c[1] then return { 2, '', '' } end
if c[2] == 'active' then return { 0, c[1], c[3] or '' } end
return { 1, c[1], c[3] or '' }
