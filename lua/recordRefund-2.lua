--[[
  Records a refund a processor reported (a Stripe `refund` transaction, a
  Lithic RETURN, a Marqeta refund): money going back to the company card. It
  changes no trip total (docs/processors.md "Refunds"); it is appended to the
  WAL once per processor refund id, so the persister books it (refunds table,
  ledger posting) exactly once whatever the processor redelivers.

  Input:
    KEYS[1] refund marker  <base>rfd:<processor>:<refund id>
    KEYS[2] WAL stream     <base>wal   (same partition as KEYS[1])

    ARGV[1] event_id   ARGV[2] marker_ttl_s   ARGV[3] payload (JSON, built by
    recordRefund in src/redis/commands.ts; decoded by refundRecorded in
    src/persister/events.ts)

  Output: 0 recorded now; 1 replay (this refund id was recorded before)
]]
--- @include "includes/wal"

assert(#ARGV == 3, 'recordRefund takes 3 arguments')

if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2])) then return 1 end
wal_append(KEYS[2], ARGV[1], 'refund.recorded', ARGV[3])
return 0
