-- authorization.decided from pieces (src/redis/walDecided.ts): the api JSON-encodes the values it
-- knows before the decision, in WAL_DECIDED_FIELDS order, around two holes that this fills with
-- the decision's values by concatenation: `status` (its text), and the run `trip_id` ..
-- `authorized_cents` (trip_created_ms as the trip hash holds it).
-- Encoding the whole event with cjson was the costliest Lua step of a decision. For the object
-- form (format '') the run's names are written here, in the same order as in walDecided.ts
-- (test/persister/wal-compact.test.ts decodes both forms of the same decisions).
-- Every value here is a number, null, an id (ID_PATTERN: nothing to escape) or a constant.
-- Numbers are written with '%d', or as the text Redis holds: Lua's own number to string (`..`
-- with a number, tostring: '%.14g') costs more than a Redis command (bench/luaCosts.ts).
local function wal_append_decided(wal_key, event_id, format, pieces, status, trip_id, trip_created_ms, decision,
                                  reason, amount, remaining, authorized)
  local trip = 'null'
  if trip_id and trip_id ~= '' then trip = cjson.encode(trip_id) end
  local created = 'null'
  if trip_created_ms and string.match(trip_created_ms, '^%d+$') then created = trip_created_ms end
  local why = 'null'
  if reason then why = '"' .. reason .. '"' end
  local after = 'null'
  if authorized then after = string.format('%d', authorized) end
  amount = string.format('%d', amount)
  remaining = string.format('%d', remaining)
  local d
  if format == 'a1' then
    d = pieces[1] .. status .. pieces[2] .. trip .. ',' .. created .. ',"' .. decision .. '",' .. why ..
      ',"normal",' .. amount .. ',' .. remaining .. ',' .. after .. pieces[3]
    return redis.call('XADD', wal_key, '*', 'e', event_id, 't', 'authorization.decided', 'd', d, 'f', 'a1')
  end
  d = pieces[1] .. status .. pieces[2] .. trip .. ',"trip_created_ms":' .. created .. ',"decision":"' .. decision ..
    '","reason":' .. why .. ',"mode":"normal","amount_cents":' .. amount .. ',"remaining_cents":' .. remaining ..
    ',"authorized_cents":' .. after .. pieces[3]
  return redis.call('XADD', wal_key, '*', 'e', event_id, 't', 'authorization.decided', 'd', d)
end
