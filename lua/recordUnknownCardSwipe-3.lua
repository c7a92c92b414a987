--[[
  Records a processor swipe on a card we do not know or that was retired, answered
  UNKNOWN_SHOPPER (docs/processors.md "Swipes on unknown cards"): no shopper partition
  holds it, so it goes to the card's partition WAL and the persister writes one
  `unknown_card_swipes` row per (processor, request id).

  Bounded against floods of validly signed swipes on made-up cards: at most ARGV[3]
  records per partition per ARGV[4]-second window. A swipe over the cap writes nothing
  (no marker either, so Redis holds at most cap markers per window and partition); the
  api counts it dropped. A retry of a recorded swipe is a replay: nothing written.

  Input:
    KEYS[1] marker    <base>ucs:<processor>:<request id>
    KEYS[2] counter   <base>ucs-n:<window number>
    KEYS[3] WAL       <base>wal   (KEYS all in the card's partition)

    ARGV[1] event_id    ARGV[2] marker_ttl_s    ARGV[3] cap (records per window)
    ARGV[4] window_s    ARGV[5] payload (JSON, built by recordUnknownCardSwipe in
    src/redis/commands.ts; decoded by unknownCardSwipe in src/persister/events.ts)

  Output: 0 recorded; 1 replay (this request was recorded before); 2 dropped (over the cap)
]]
--- @include "includes/wal"

assert(#ARGV == 5, 'recordUnknownCardSwipe takes 5 arguments')

if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], 2 * tonumber(ARGV[4])) end
if n > tonumber(ARGV[3]) then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
wal_append(KEYS[3], ARGV[1], 'card.unknown_swipe', ARGV[5])
return 0
