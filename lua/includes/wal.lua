-- Appends one event to the partition's WAL stream. Called by every script that
-- changes state, after all validation, so state and log never disagree.
-- payload: a JSON string (already encoded).
local function wal_append(wal_key, event_id, event_type, payload)
  return redis.call('XADD', wal_key, '*', 'e', event_id, 't', event_type, 'd', payload)
end
