// KNOWN DEFECT, pinned as it behaves today (docs/regions.md, known limits): the home
// decides a forwarded swipe (here: declines it, over the allowance) but its answer misses
// the forward deadline, so the forwarding region fails open and tells the processor
// "approved". The replay into the home is then a `conflict` under a different
// authorization id: the home keeps its decline and does not count the approval handed
// out, and a retry at the home is declined. Two regions with a 40 ms link each way and a
// 60 ms forward deadline (every forward times out after the home has run it). The last
// two assertions state today's wrong records; once lua/replayFailOpen-4.lua counts such
// an approval they fail: flip them to 9000 and 'approved'.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
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

describe('a home decline whose answer missed the forward deadline', () => {
  it('KNOWN DEFECT: the fail-open approval given elsewhere is not what the home records after replay', async () => {
    const [a, b] = regions as [Region, Region];
    const id = `s${randomBytes(4).toString('hex')}`;
    const path = `/v1/shoppers/${id}/trips/t1`;
    const put = await fetch(`${a.base}${path}`, {
      method: 'PUT',
      headers: AUTH,
      body: JSON.stringify(processorTrip()),
    });
    expect(put.status).toBe(201);
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
    await sleep(4000); // rb's replayer sends the approval to the home
    const trip = await json(await fetch(`${a.base}${path}`, { headers: AUTH }));
    const auths = trip['authorizations'] as { decision: string; reason?: string }[];
    expect(auths).toMatchObject([{ decision: 'declined', reason: 'AMOUNT_EXCEEDS_ALLOWANCE' }]);
    expect(trip['authorized_cents']).toBe(0); // should be 9000: the approval handed out
    const retry = await json(await fetch(`${a.base}/v1/authorizations`, { method: 'POST', body, headers }));
    expect(retry['decision']).toBe('declined'); // should be 'approved': the answer given
  }, 30_000);
});
