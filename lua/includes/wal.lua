-- Appends one event to the partition's WAL stream. Called by every script that
-- changes state, after all validation, so state and log never disagree.
-- payload: a JSON string (already encoded).
local function wal_append(wal_key, event_id, event_type, payload)
  return redis.call('XADD', wal_key, '*', 'e', event_id, 't', event_type, 'd', payload)
end

-- authorization.decided's fields, in the order of its compact payload ('a1': a JSON array of
-- the values, half the bytes and cheaper to encode than the object). src/persister/events.ts
-- decodes it with the same list (test/persister/wal-compact.test.ts holds them equal).
local WAL_DECIDED_FIELDS = { 'authorization_id', 'idempotency_key', 'fingerprint', 'signature', 'status',
  'transaction_id', 'shopper_id', 'trip_id', 'trip_created_ms', 'decision', 'reason', 'mode', 'amount_cents',
  'remaining_cents', 'authorized_cents', 'currency', 'merchant_name', 'merchant_address', 'lat', 'lng', 'at_ms',
  'requested_cents', 'processor', 'processor_card_id', 'processor_authorization_id', 'processor_request_id' }

-- Appends an authorization.decided event: values (nulls as cjson.null) in WAL_DECIDED_FIELDS
-- order, as the JSON object every release reads (format '') or the compact array ('a1').
local function wal_append_decided(wal_key, event_id, event_type, format, values)
  assert(#values == #WAL_DECIDED_FIELDS, 'authorization.decided values do not match its fields')
  if format == 'a1' then
    return redis.call('XADD', wal_key, '*', 'e', event_id, 't', event_type, 'd', cjson.encode(values), 'f', 'a1')
  end
  local object = {}
  for i, name in ipairs(WAL_DECIDED_FIELDS) do object[name] = values[i] end
  return wal_append(wal_key, event_id, event_type, cjson.encode(object))
end
