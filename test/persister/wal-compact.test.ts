// authorizeSwipe's compact WAL payload (WAL_COMPACT_PAYLOAD, format a1: the values as a JSON array)
// decodes to exactly the event the JSON object carries, and the field order is one list in Lua
// and TypeScript.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WalEvent, WAL_DECIDED_FIELDS, parseEntry, rawEntry } from '../../src/persister/events.js';
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
  it('lists the fields in the same order as lua/includes/wal.lua', () => {
    const lua = readFileSync(new URL('../../lua/includes/wal.lua', import.meta.url), 'utf8');
    const table = /local WAL_DECIDED_FIELDS = \{([^}]*)\}/.exec(lua)?.[1] ?? '';
    expect([...table.matchAll(/'([a-z_]+)'/g)].map((m) => m[1])).toEqual([...WAL_DECIDED_FIELDS]);
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
