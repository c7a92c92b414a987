-- Reversals and clearings name an authorization by transaction id and shopper (CONTRACT §2).
-- Both answer: 1 replay of the first answer, 2 authorization_not_found, 4 conflict.

-- The first answer stored at `replay_key`, or nil when there is none: 2 when it was for another
-- shopper or transaction, 4 when `same_request(previous)` says this request differs, else 1.
local function stored_answer(replay_key, shopper_id, txn, same_request)
  local stored = redis.call('GET', replay_key)
  if not stored then return nil end
  local previous = cjson.decode(stored)
  if previous.shopper ~= shopper_id or previous.txn ~= txn then return { 2, '' } end
  if not same_request(previous) then return { 4, '' } end
  return { 1, cjson.encode(previous.state) }
end

-- The authorization the transaction's idempotency key points at: its id, its hash key and the
-- partition's key base; nil when the transaction is unknown here.
local function authorization_of(idem_key, txn)
  local auth_id = redis.call('GET', idem_key)
  if not auth_id then return nil end
  local base = string.sub(idem_key, 1, string.len(idem_key) - string.len('idem:t:' .. txn))
  return auth_id, base .. 'auth:' .. auth_id, base
end
