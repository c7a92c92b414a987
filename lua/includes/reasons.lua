-- Decline reasons of CONTRACT §1 in contract order: a script's decline code N is
-- DECLINE_REASONS[N]. The one list: scripts/build-lua.mjs reads it for
-- src/redis/results.ts too, so TypeScript and Lua cannot disagree.
local DECLINE_REASONS = { 'IDEMPOTENCY_CONFLICT', 'UNKNOWN_SHOPPER', 'TRIP_CLOSED', 'NO_ACTIVE_TRIP',
  'CURRENCY_MISMATCH', 'MERCHANT_MISMATCH', 'LOCATION_MISMATCH', 'VELOCITY_LIMIT', 'NO_ITEMS_PICKED',
  'AMOUNT_EXCEEDS_ALLOWANCE' }
