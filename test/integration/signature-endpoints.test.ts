// One endpoint per signature (CONTRACT §1), from outside over HTTP: the signed
// bytes of a request accepted on one processor endpoint are refused on every
// other one with 401 invalid_signature "signature already used on another
// endpoint", while the same request replayed on its own endpoint still gets
// its first answer. Cases: test/fixtures/hostile-bounds.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import { crossEndpointCases } from '../fixtures/hostile-bounds.js';
import { newId, SECRET, safewayTrip, startTestApi, type TestApi } from '../helpers/api.js';

let h: TestApi;
const merchant = { name: 'SAFEWAY #1234', address: '123 MAIN STREET' };

async function openTrip(): Promise<string> {
  const shopper = newId('sig');
  const trip = newId('trip');
  expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
  expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  return shopper;
}

async function post(path: string, raw: string, signature: string) {
  return h.request('POST', path, raw, { 'Content-Type': 'application/json', 'X-Signature': signature });
}

describe('one endpoint per signature', () => {
  beforeAll(async () => {
    h = await startTestApi();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it.each(crossEndpointCases(merchant).map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const shopper = await openTrip();
    // An approved swipe to reverse or clear (its own signature, used once).
    const txn = newId('txn');
    const swipeRaw = JSON.stringify(c.body(shopper, txn));
    const signedSwipe = signatureHeader(SECRET, Math.floor(Date.now() / 1000), swipeRaw);
    // When the first use is the swipe itself, its signature is the one replayed.
    const raw =
      c.first === '/v1/authorizations' ? swipeRaw : JSON.stringify({ ...c.body(shopper, txn), n: 1 });
    const signature =
      c.first === '/v1/authorizations'
        ? signedSwipe
        : signatureHeader(SECRET, Math.floor(Date.now() / 1000), raw);
    if (c.first !== '/v1/authorizations') {
      const swipe = await post('/v1/authorizations', swipeRaw, signedSwipe);
      expect(swipe.status, swipe.text).toBe(200);
    }
    const first = await post(c.first, raw, signature);
    expect(first.status, first.text).toBe(200);
    const before = await h.getTrip(shopper, '-');
    const walBefore = (await h.walEvents()).length;

    const second = await post(c.second, raw, signature);
    expect(second.status, second.text).toBe(401);
    expect(second.json).toEqual({
      error: 'invalid_signature',
      message: 'signature already used on another endpoint',
    });
    // Nothing happened on the second endpoint.
    expect((await h.walEvents()).length).toBe(walBefore);
    expect((await h.getTrip(shopper, '-')).status).toBe(before.status);

    // The same request on its own endpoint still gets its first answer.
    const again = await post(c.first, raw, signature);
    expect(again.status, again.text).toBe(200);
    expect(again.json).toEqual(first.json);
  });
});
