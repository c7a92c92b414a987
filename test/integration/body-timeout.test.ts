// A body that trickles in holds an admission slot: past API_BODY_READ_TIMEOUT_MS the request is
// answered 408 and its connection closed, so a few slow sockets cannot shed every signed swipe.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newId, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';

let h: TestApi;

beforeAll(async () => {
  h = await startTestApi({ API_BODY_READ_TIMEOUT_MS: '200', API_INFLIGHT_REQUESTS_MAX: '4' });
});
afterAll(async () => {
  await h?.stop();
});

/** Sends the head and a first piece of a body, then nothing: resolves with what the server wrote and whether it closed. */
function trickle(port: number, waitMs: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (b) => {
      text += b.toString();
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => undefined);
    socket.write(
      'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `X-Signature: t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}\r\nContent-Length: 16000\r\n\r\n{"a":`,
    );
    setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, waitMs);
  });
}

it('answers a body that does not arrive 408 and closes; signed swipes get real decisions meanwhile', async () => {
  const port = Number(new URL(h.base).port);
  const slow = Array.from({ length: 4 }, () => trickle(port, 600));
  await new Promise((r) => setTimeout(r, 300)); // past the body deadline: the slots are free again
  const shopper = newId('s');
  const trip = newId('trip');
  expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
  expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  const swipe = await h.swipe(swipeBody(shopper, '5.00'));
  expect([swipe.status, swipe.json['mode']]).toEqual([200, 'normal']);
  for (const r of await Promise.all(slow)) {
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.text).toContain('"error":"request_timeout"');
    expect(r.closed).toBe(true);
  }
});
