// authorizeSwipe's compact WAL payload (WAL_COMPACT_PAYLOAD, format a1: the values as a JSON array)
// decodes to exactly the event the JSON object carries; both are built from the api's pieces and
// the script's values (src/redis/walDecided.ts, lua/includes/walDecided.lua), whose field order
// is one list.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WalEvent, parseEntry, rawEntry } from '../../src/persister/events.js';
import { decidedPayloadPieces, WAL_DECIDED_FIELDS } from '../../src/redis/walDecided.js';
import { type TestApi, startTestApi, swipeBody, tripWithMilk } from '../helpers/api.js';

let json: TestApi;
let compact: TestApi;

beforeAll(async () => {
  [json, compact] = await Promise.all([
    startTestApi({ WAL_COMPACT_PAYLOAD: 'false' }),
    startTestApi({ WAL_COMPACT_PAYLOAD: '1' }),
  ]);
});

afterAll(async () => {
  await Promise.all([json.stop(), compact.stop()]);
});

/** The parsed authorization.decided events of a harness, and their payloads' bytes. */
async function decided(
  h: TestApi,
): Promise<Array<{ d: Record<string, unknown>; bytes: number; format?: string }>> {
  const out: Array<{ d: Record<string, unknown>; bytes: number; format?: string }> = [];
  for (let p = 0; p < h.config.partitions; p++) {
    for (const [id, fields] of await h.redis.xrange(h.keys.wal(p), '-', '+')) {
      const raw = rawEntry(p, id, fields);
      if (raw.type !== 'authorization.decided') continue;
      const parsed = parseEntry(raw);
      if (!parsed.ok) throw new Error(parsed.error);
      const d = (parsed.event as Extract<WalEvent, { type: 'authorization.decided' }>).d;
      out.push({
        d: { ...d },
        bytes: raw.data?.length ?? 0,
        ...(raw.format === undefined ? {} : { format: raw.format }),
      });
    }
  }
  return out.sort((a, b) => String(a.d.amount_cents).localeCompare(String(b.d.amount_cents)));
}

/** What differs between two harnesses for the same request: ids, times, and what hashes the shopper id. */
function comparable(d: Record<string, unknown>): Record<string, unknown> {
  const {
    authorization_id: _a,
    at_ms: _t,
    trip_created_ms: _c,
    shopper_id: _s,
    trip_id: _r,
    fingerprint: _f,
    signature: _g,
    ...rest
  } = d;
  return rest;
}

describe('compact WAL payload', () => {
  it('the script names the fields it fills in the order of WAL_DECIDED_FIELDS', () => {
    const lua = readFileSync(new URL('../../lua/includes/walDecided.lua', import.meta.url), 'utf8');
    const objectForm = lua.slice(lua.lastIndexOf('d = pieces[1]'));
    const named = [...objectForm.matchAll(/"([a-z_]+)":/g)].map((m) => m[1]);
    const run = WAL_DECIDED_FIELDS.slice(
      WAL_DECIDED_FIELDS.indexOf('trip_id') + 1,
      WAL_DECIDED_FIELDS.indexOf('currency'),
    );
    expect(named).toEqual(run);
  });

  it("the api's pieces hold every other value, with the two holes where the script writes", () => {
    const values = {
      authorization_id: 'auth_1',
      idempotency_key: 't:x',
      fingerprint: 'f"p',
      signature: null,
      transaction_id: 'x',
      shopper_id: 's1',
      currency: 'USD',
      merchant_name: 'A "B" \\ C',
      merchant_address: '',
      lat: 37.5,
      lng: null,
      at_ms: 1_764_860_000_000,
      requested_cents: 1234,
      processor: null,
      processor_card_id: null,
      processor_authorization_id: null,
      processor_request_id: null,
    };
    const decided = { trip: '"t1"', created: 5, decision: '"approved"', reason: 'null', mode: '"normal"' };
    const [a, b, c] = decidedPayloadPieces('a1', values);
    const array = JSON.parse(
      `${a}200${b}${decided.trip},${decided.created},${decided.decision},${decided.reason},${decided.mode},1234,10,1234${c}`,
    ) as unknown[];
    const [o1, o2, o3] = decidedPayloadPieces('', values);
    const object = JSON.parse(
      `${o1}200${o2}${decided.trip},"trip_created_ms":5,"decision":"approved","reason":null,"mode":"normal",` +
        `"amount_cents":1234,"remaining_cents":10,"authorized_cents":1234${o3}`,
    ) as Record<string, unknown>;
    const expected = {
      ...values,
      status: 200,
      trip_id: 't1',
      trip_created_ms: 5,
      decision: 'approved',
      reason: null,
      mode: 'normal',
      amount_cents: 1234,
      remaining_cents: 10,
      authorized_cents: 1234,
    };
    expect(object).toEqual(expected);
    expect(Object.keys(object)).toEqual([...WAL_DECIDED_FIELDS]);
    expect(Object.fromEntries(WAL_DECIDED_FIELDS.map((n, i) => [n, array[i]]))).toEqual(expected);
  });

  it('an approval and a decline decode to the same events as the JSON object, in fewer bytes', async () => {
    const t = Math.floor(Date.now() / 1000);
    for (const h of [json, compact]) {
      const { shopper } = await tripWithMilk(h);
      const approve = { ...swipeBody(shopper, '12.34'), transaction_id: 'txn-compact-1' };
      const decline = { ...swipeBody(shopper, '99.00'), transaction_id: 'txn-compact-2' };
      expect((await h.swipe(approve, { t })).status).toBe(200);
      expect((await h.swipe(decline, { t })).status).toBe(402);
    }
    const [a, b] = await Promise.all([decided(json), decided(compact)]);
    expect(a.map((e) => e.format)).toEqual([undefined, undefined]);
    expect(b.map((e) => e.format)).toEqual(['a1', 'a1']);
    expect(b.map((e) => comparable(e.d))).toEqual(a.map((e) => comparable(e.d)));
    for (const e of b) expect(e.d.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(b[1]!.d.reason).toBe('AMOUNT_EXCEEDS_ALLOWANCE');
    expect(b[0]!.d.authorized_cents).toBe(1234);
    // Every value of the approval, as the script and the api wrote it (the pieces and the holes).
    const { shopper_id, trip_id, at_ms, trip_created_ms, authorization_id, fingerprint, signature, ...rest } =
      b[0]!.d;
    expect(rest).toEqual({
      idempotency_key: 't:txn-compact-1',
      status: 200,
      transaction_id: 'txn-compact-1',
      decision: 'approved',
      reason: null,
      mode: 'normal',
      amount_cents: 1234,
      remaining_cents: 4013 - 1234,
      authorized_cents: 1234,
      currency: 'USD',
      merchant_name: 'SAFEWAY #1234',
      merchant_address: '123 MAIN STREET',
      lat: null,
      lng: null,
      requested_cents: 1234,
      processor: null,
      processor_card_id: null,
      processor_authorization_id: null,
      processor_request_id: null,
    });
    expect([typeof shopper_id, typeof trip_id, typeof authorization_id, typeof fingerprint]).toEqual([
      'string',
      'string',
      'string',
      'string',
    ]);
    expect(typeof at_ms).toBe('number');
    expect(typeof trip_created_ms).toBe('number');
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    for (let i = 0; i < 2; i++) expect(b[i]!.bytes).toBeLessThan(a[i]!.bytes * 0.7);
  });

  it('an entry in an unknown format, or a compact array of the wrong length, is a poison event', () => {
    const entry = (format: string, d: string) =>
      parseEntry(rawEntry(0, '1-1', ['e', 'ev-1', 't', 'authorization.decided', 'd', d, 'f', format]));
    expect(entry('a2', '[]')).toEqual({
      ok: false,
      error: 'unknown payload format "a2" for "authorization.decided"',
    });
    expect(entry('a1', '[1,2]').ok).toBe(false);
  });

  it('an unknown event type is a poison event, including names of Object.prototype members', () => {
    for (const type of ['trip.deleted', 'constructor', '__proto__', 'toString']) {
      const parsed = parseEntry(rawEntry(0, '1-1', ['e', 'ev-1', 't', type, 'd', '{}']));
      expect(parsed).toEqual({ ok: false, error: `unknown event type ${JSON.stringify(type)}` });
    }
  });
});
