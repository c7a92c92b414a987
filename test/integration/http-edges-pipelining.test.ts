// HTTP edges of issue 19, on raw sockets against a real api and Redis:
// - a request pipelined behind a swipe in the same bytes makes uWebSockets.js
//   drop the swipe's response; the swipe must then not be decided at all
//   (refused before deciding), so that no committed decision loses its answer;
//   sent on its own, the same swipe is decided normally;
// - HTTP/1.0 is never decided (uWebSockets.js does not dispatch it): the
//   ingress must speak HTTP/1.1 to the pods (docs/deploy.md).
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import { encodeRequest } from '../fixtures/hostile.js';
import { newId, SECRET, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';

let h: TestApi;
beforeAll(async () => {
  h = await startTestApi();
});
afterAll(async () => {
  await h?.stop();
});

function signed(raw: string, version = '1.1'): Buffer {
  const head = [
    `POST /v1/authorizations HTTP/${version}`,
    'Host: x',
    'Content-Type: application/json',
    `X-Signature: ${signatureHeader(SECRET, Math.floor(Date.now() / 1000), raw)}`,
    `Content-Length: ${Buffer.byteLength(raw)}`,
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${raw}`);
}

function exchange(bytes: Buffer, waitMs: number): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(h.api.port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    let closed = false;
    s.on('data', (d) => {
      data += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
    });
    setTimeout(() => {
      s.destroy();
      resolve({ data, closed });
    }, waitMs);
  });
}

async function decidedEvents(txn: string) {
  return (await h.walEvents()).filter(
    (e) => e.t === 'authorization.decided' && e.d['transaction_id'] === txn,
  );
}

async function openTrip(): Promise<string> {
  const shopper = newId('pipe');
  const trip = newId('trip');
  expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
  expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  return shopper;
}

it('a swipe with a request pipelined behind it is refused before deciding, never decided with its answer lost', async () => {
  const shopper = await openTrip();
  const body = swipeBody(shopper, '5.00');
  const raw = JSON.stringify(body);
  const health = encodeRequest({ method: 'GET', path: '/healthz', headers: [], body: Buffer.alloc(0) });
  const r = await exchange(Buffer.concat([signed(raw), health]), 500);
  const answered = r.data.startsWith('HTTP/1.1 200') || r.data.startsWith('HTTP/1.1 402');
  if (!answered) {
    // No answer: then nothing may have been decided.
    expect(await decidedEvents(body.transaction_id)).toEqual([]);
  }
  // The processor's retry (alone on its connection) gets a decision, made once.
  const retry = await h.swipe(body, { raw });
  expect(retry.status, retry.text).toBe(200);
  expect(await decidedEvents(body.transaction_id)).toHaveLength(1);
  if (answered) expect(r.data).toContain(retry.json['authorization_id'] as string);
});

it('HTTP/1.0 is never decided (the ingress must speak HTTP/1.1)', async () => {
  const shopper = await openTrip();
  const body = swipeBody(shopper, '5.00');
  const r = await exchange(signed(JSON.stringify(body), '1.0'), 800);
  if (r.data === '') expect(await decidedEvents(body.transaction_id)).toEqual([]);
  else expect(r.data).toMatch(/^HTTP\/1\.[01] (200|402)/);
});
