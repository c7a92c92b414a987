// Regression test (docs/regions.md, "A home that decided a forwarded swipe but whose answer
// missed the forward deadline"): the home decides a forwarded swipe (here: declines it, over
// the allowance) but its answer misses the forward deadline, so the forwarding region fails
// open and tells the processor "approved". Both regions use the id derived from the forward's
// channel signature (src/regions/channel.ts), so the replay into the home finds its own late
// decline (`overridden`, as a pod's own timed-out call): the approval handed out is counted
// against the trip, the decline is replaced by it and flagged, and a retry at the home gets
// it. Two regions with a 40 ms link each way and a 60 ms forward deadline (every forward
// times out after the home has run it).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import { forwardedAuthorizationId } from '../../src/regions/channel.js';
import { processorTrip } from '../processors/helpers.js';
import { type Region, SECRET, startRegions, stopStarted, TOKEN } from './threeRegions.js';

const AUTH = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
let regions: Region[] = [];

beforeAll(async () => {
  regions = await startRegions(['ra', 'rb'], 60);
}, 75_000);

afterAll(async () => {
  await stopStarted();
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** A new shopper's trip t1, created at region `r` (its home). */
async function newTripAt(r: Region): Promise<{ id: string; path: string }> {
  const id = `s${randomBytes(4).toString('hex')}`;
  const path = `/v1/shoppers/${id}/trips/t1`;
  const put = await fetch(`${r.base}${path}`, {
    method: 'PUT',
    headers: AUTH,
    body: JSON.stringify(processorTrip()),
  });
  expect(put.status).toBe(201);
  return { id, path };
}

describe('a home decline whose answer missed the forward deadline', () => {
  it("the fail-open approval given elsewhere is the home's record after replay, counted once", async () => {
    const [a, b] = regions as [Region, Region];
    const { id, path } = await newTripAt(a);
    const pick = { status: 'picked', quantity: 10, unit_price: '3.49' };
    const picked = await fetch(`${a.base}${path}/items/milk`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify(pick),
    });
    expect(picked.status).toBe(200);
    await sleep(1500); // the home's announcement reaches rb
    const body = JSON.stringify({
      transaction_id: `txn_${randomBytes(6).toString('hex')}`,
      shopper_id: id,
      amount: '90.00', // over the trip's allowance (40.13): the home declines it
      currency: 'USD',
      merchant: { name: 'SAFEWAY #1234', address: '123 Main Street' },
    });
    const t = Math.floor(Date.now() / 1000);
    const headers = { 'Content-Type': 'application/json', 'X-Signature': signatureHeader(SECRET, t, body) };
    const given = await json(await fetch(`${b.base}/v1/authorizations`, { method: 'POST', body, headers }));
    expect(given).toMatchObject({ decision: 'approved', mode: 'fail_open', amount_cents: 9000 });
    // rb's replayer sends the approval to the home (every 200 ms once 500 ms old); its persister writes it.
    const deadline = Date.now() + 20_000;
    let trip: Record<string, unknown> = {};
    let rows: Record<string, unknown>[] = [];
    while (Date.now() < deadline) {
      trip = await json(await fetch(`${a.base}${path}`, { headers: AUTH }));
      rows = await a.db.query(
        `select r.outcome, r.redis_reason, x.decision, x.mode, x.amount_cents
           from failopen_replays r join authorizations x using (authorization_id)
          where r.authorization_id = ?`,
        [given['authorization_id']],
      );
      if (trip['authorized_cents'] === 9000 && rows.length === 1 && rows[0]?.['decision'] === 'approved')
        break;
      await sleep(250);
    }
    // The home decided it under the id the processor got: one authorization, now the approval.
    const auths = trip['authorizations'] as Record<string, unknown>[];
    expect(auths).toHaveLength(1);
    expect(auths[0]).toMatchObject({
      authorization_id: given['authorization_id'],
      decision: 'approved',
      mode: 'fail_open',
    });
    expect(Number(auths[0]?.['amount_cents'])).toBe(9000);
    expect(trip['authorized_cents']).toBe(9000); // the approval handed out, counted once
    expect(rows.map((r) => ({ ...r, amount_cents: Number(r['amount_cents']) }))).toEqual([
      {
        outcome: 'overridden',
        redis_reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
        decision: 'approved',
        mode: 'fail_open',
        amount_cents: 9000,
      },
    ]);
    // The answer given is the record: a retry at the home (or at rb) gets it.
    const retry = await fetch(`${a.base}/v1/authorizations`, { method: 'POST', body, headers });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await json(retry)).toEqual(given);
  }, 30_000);

  it('a public request cannot choose the id: channel headers without a valid signature are refused or ignored', async () => {
    const [a] = regions as [Region, Region];
    const { id } = await newTripAt(a);
    const body = JSON.stringify({
      transaction_id: `txn_${randomBytes(6).toString('hex')}`,
      shopper_id: id,
      amount: '1.00',
      currency: 'USD',
      merchant: { name: 'SAFEWAY #1234', address: '123 Main Street' },
    });
    const t = Math.floor(Date.now() / 1000);
    const sig = 'ab'.repeat(32);
    const signed = { 'Content-Type': 'application/json', 'X-Signature': signatureHeader(SECRET, t, body) };
    const channel = { 'x-region-timestamp': String(t), 'x-region-signature': sig };
    // An origin with a made-up channel signature: refused before any decision.
    const forged = await fetch(`${a.base}/v1/authorizations`, {
      method: 'POST',
      body,
      headers: { ...signed, ...channel, 'x-region-origin': 'rb' },
    });
    expect(forged.status).toBe(401);
    // The channel's other headers without an origin: a public request, decided under a minted id.
    const plain = await json(
      await fetch(`${a.base}/v1/authorizations`, {
        method: 'POST',
        body,
        headers: { ...signed, ...channel },
      }),
    );
    expect(plain['decision']).toBe('declined'); // nothing picked on this trip yet
    expect(plain['authorization_id']).toMatch(/^auth_[0-9a-f]{32}$/);
    expect(plain['authorization_id']).not.toBe(forwardedAuthorizationId(sig, t, ''));
  }, 30_000);
});
