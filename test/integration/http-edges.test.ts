// HTTP edge cases on raw sockets: body limits enforced while reading (lying,
// absent Content-Length, chunked), aborted requests (mid-body, in flight),
// Content-Type, unknown routes/methods, and the two auth schemes not granting
// each other's API. The process must never crash, never write after abort,
// and keep serving.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import { encodeRequest, parseResponse, type RawReply, sendRaw } from '../fixtures/hostile.js';
import { newId, SECRET, safewayTrip, startTestApi, swipeBody, TOKEN, type TestApi } from '../helpers/api.js';

const WEBHOOK_MAX = 16 * 1024;
const nowS = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let h: TestApi;
const processErrors: unknown[] = [];
const onProcessError = (err: unknown) => processErrors.push(err);

/** Signed webhook request bytes. */
function signedSwipe(
  body: Buffer | string,
  extra: Array<[string, string]> = [],
  opts: { chunkBytes?: number; contentLength?: number | 'omit' } = {},
): Buffer {
  const raw = typeof body === 'string' ? Buffer.from(body) : body;
  return encodeRequest({
    method: 'POST',
    path: '/v1/authorizations',
    headers: [
      ['Content-Type', 'application/json'],
      ['X-Signature', signatureHeader(SECRET, nowS(), raw)],
      ...extra,
    ],
    body: raw,
    ...opts,
  });
}

/** A swipe body for a shopper with no trip, padded with spaces to exactly `bytes`. */
function paddedSwipe(bytes: number): Buffer {
  const s = JSON.stringify(swipeBody(newId('nobody'), '1.00'));
  return Buffer.from(`${s.slice(0, -1)}${' '.repeat(bytes - s.length)}}`);
}

function expectJsonError(r: RawReply, status: number, error?: string): void {
  expect(r.status, r.body).toBe(status);
  expect(r.headers['content-type']).toBe('application/json');
  const json = JSON.parse(r.body) as Record<string, unknown>;
  expect(typeof json['error']).toBe('string');
  if (error !== undefined) expect(json['error']).toBe(error);
}

async function expectServing(): Promise<void> {
  const r = await sendRaw(
    h.api.port,
    encodeRequest({
      method: 'GET',
      path: '/healthz',
      headers: [],
      body: Buffer.alloc(0),
      contentLength: 'omit',
    }),
  );
  expect(r.status).toBe(200);
}

/** Opens a socket, writes `first`, and resolves with everything received until close/timeout. */
function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function collect(socket: net.Socket, timeoutMs: number): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      resolve({ data, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
    });
    socket.on('error', () => {});
    socket.on('close', () => done(true));
  });
}

/** Splits concatenated HTTP responses (each with a Content-Length). */
function splitResponses(data: Buffer): Array<{ status: number; body: string }> {
  const out: Array<{ status: number; body: string }> = [];
  let rest = data;
  for (;;) {
    const r = parseResponse(rest);
    if (r === null) return out;
    out.push({ status: r.status, body: r.body });
    const headEnd = rest.indexOf('\r\n\r\n') + 4;
    rest = rest.subarray(headEnd + Buffer.byteLength(r.body));
  }
}

describe('HTTP edges', () => {
  beforeAll(async () => {
    process.on('uncaughtException', onProcessError);
    process.on('unhandledRejection', onProcessError);
    h = await startTestApi({
      DECISION_TIMEOUT_MS: '500',
      MAX_SWIPES_PER_MINUTE: '100000',
      TRIP_TOLERANCE_CENTS_MAX: '100000',
      TRIP_HOLD_CENTS_MAX: '100000000',
    });
  });

  afterAll(async () => {
    await h?.stop();
    process.off('uncaughtException', onProcessError);
    process.off('unhandledRejection', onProcessError);
    expect(processErrors).toEqual([]);
  });

  describe('body size limit (16 KiB webhook)', () => {
    it('accepts exactly 16384 bytes and refuses 16385 with 413', async () => {
      const ok = await sendRaw(h.api.port, signedSwipe(paddedSwipe(WEBHOOK_MAX)));
      expect(ok.status, ok.body).toBe(402); // decided: UNKNOWN_SHOPPER, not a size error
      expect(JSON.parse(ok.body).reason).toBe('UNKNOWN_SHOPPER');
      expectJsonError(
        await sendRaw(h.api.port, signedSwipe(paddedSwipe(WEBHOOK_MAX + 1))),
        413,
        'payload_too_large',
      );
    });

    it('answers 413 from the declared Content-Length before any body byte is sent', async () => {
      const socket = await openSocket(h.api.port);
      const got = collect(socket, 3000);
      const head = encodeRequest({
        method: 'POST',
        path: '/v1/authorizations',
        headers: [
          ['Content-Type', 'application/json'],
          ['X-Signature', `t=${nowS()},v1=${'0'.repeat(64)}`],
        ],
        body: Buffer.alloc(0),
        contentLength: 10 * 1024 * 1024,
      });
      socket.write(head);
      const { data } = await got;
      socket.destroy();
      const r = parseResponse(data);
      expect(r?.status).toBe(413);
    });

    it('enforces the limit on chunked bodies (no Content-Length), exactly at the boundary', async () => {
      const fits = await sendRaw(h.api.port, signedSwipe(paddedSwipe(WEBHOOK_MAX), [], { chunkBytes: 1000 }));
      expect(fits.status, fits.body).toBe(402);
      expectJsonError(
        await sendRaw(h.api.port, signedSwipe(paddedSwipe(WEBHOOK_MAX + 1), [], { chunkBytes: 1000 })),
        413,
        'payload_too_large',
      );
      expectJsonError(
        await sendRaw(h.api.port, signedSwipe(paddedSwipe(200_000), [], { chunkBytes: 65_536 })),
        413,
        'payload_too_large',
      );
    });

    it('enforces the limit while reading: a trickled chunked body is cut off early', async () => {
      const socket = await openSocket(h.api.port);
      const got = collect(socket, 10_000);
      socket.write(
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `X-Signature: t=${nowS()},v1=${'0'.repeat(64)}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      let sent = 0;
      let answered = false;
      socket.once('data', () => {
        answered = true;
      });
      while (!answered && sent < 256 * 1024 && !socket.destroyed) {
        socket.write(`400\r\n${' '.repeat(1024)}\r\n`);
        sent += 1024;
        await sleep(2);
      }
      const { data } = await got;
      expect(parseResponse(data)?.status).toBe(413);
      // Answered after the limit, long before the client was done sending.
      expect(sent).toBeGreaterThan(WEBHOOK_MAX);
      expect(sent).toBeLessThan(64 * 1024);
    });

    it('a Content-Length smaller than the body: the excess is never read as part of the body', async () => {
      // Signed over all 20000 bytes but declares 200: if the server read past the
      // declared length the signature would match and the swipe be decided (402).
      // What follows the 200 bytes is garbage for the HTTP parser, which may close
      // the connection before the (async) first answer is written.
      const body = paddedSwipe(20_000);
      const req = Buffer.concat([
        Buffer.from(
          'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `X-Signature: ${signatureHeader(SECRET, nowS(), body)}\r\nContent-Length: 200\r\n\r\n`,
        ),
        body,
      ]);
      const socket = await openSocket(h.api.port);
      const got = collect(socket, 3000);
      socket.write(req);
      const { data } = await got;
      socket.destroy();
      for (const r of splitResponses(data)) expect(r.status, r.body).toBe(401);
      await expectServing();
    });

    it('a Content-Length larger than what is sent, then the client gives up: no crash', async () => {
      for (let i = 0; i < 20; i++) {
        const socket = await openSocket(h.api.port);
        socket.on('error', () => {});
        const body = paddedSwipe(2000);
        socket.write(signedSwipe(body, [], { contentLength: 4000 }));
        await sleep(5);
        socket.destroy();
      }
      await expectServing();
    });

    it('Content-Length values the HTTP parser refuses: closed or 4xx, never 5xx', async () => {
      for (const cl of [
        'abc',
        '-1',
        '1e5',
        '0x10',
        '+10',
        '1000000000000',
        '99999999999999999999',
        '10, 10',
      ]) {
        const raw = Buffer.from(
          'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${cl}\r\nConnection: close\r\n\r\n{}`,
        );
        const r = await sendRaw(h.api.port, raw, 2000);
        expect([0, -1].includes(r.status) || (r.status >= 400 && r.status < 500), `${cl}: ${r.status}`).toBe(
          true,
        );
      }
      await expectServing();
    });

    it('Content-Length together with Transfer-Encoding (smuggling) is not served', async () => {
      const body = '{}';
      const raw = Buffer.from(
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `X-Signature: ${signatureHeader(SECRET, nowS(), body)}\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n` +
          `2\r\n${body}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      const r = await sendRaw(h.api.port, raw, 2000);
      expect(r.status === 0 || (r.status >= 400 && r.status < 500), String(r.status)).toBe(true);
      await expectServing();
    });

    it('trip API: 256 KiB limit, declared and chunked', async () => {
      const big = Buffer.from(`${JSON.stringify(safewayTrip()).slice(0, -1)}${' '.repeat(300 * 1024)}}`);
      const headers: Array<[string, string]> = [
        ['Content-Type', 'application/json'],
        ['Authorization', `Bearer ${TOKEN}`],
      ];
      const path = `/v1/shoppers/${newId('s')}/trips/${newId('t')}`;
      expectJsonError(
        await sendRaw(h.api.port, encodeRequest({ method: 'PUT', path, headers, body: big })),
        413,
      );
      expectJsonError(
        await sendRaw(
          h.api.port,
          encodeRequest({ method: 'PUT', path, headers, body: big, chunkBytes: 16_384 }),
        ),
        413,
      );
    });
  });

  describe('aborted requests', () => {
    it('headers + half a body, then the socket is destroyed (x50): no crash, still serving', async () => {
      for (let i = 0; i < 50; i++) {
        const full = signedSwipe(paddedSwipe(4000));
        const socket = await openSocket(h.api.port);
        socket.on('error', () => {});
        socket.write(full.subarray(0, full.length - 2000));
        if (i % 2 === 0) await sleep(2);
        socket.destroy();
      }
      await sleep(50);
      await expectServing();
      expect(processErrors).toEqual([]);
    });

    it('200 swipes in flight, half the clients disconnect right after writing: no write after abort, state consistent', async () => {
      const shopper = newId('inflight');
      const trip = newId('trip');
      expect(
        (await h.putTrip(shopper, trip, safewayTrip({ hold_cents: 100_000_000, tolerance_cents: 100_000 })))
          .status,
      ).toBe(201);
      expect(
        (await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10, unit_price: '3.49' })).status,
      ).toBe(200);
      const requests = Array.from({ length: 200 }, (_, i) =>
        (async () => {
          const raw = signedSwipe(JSON.stringify(swipeBody(shopper, '1.00')));
          const socket = await openSocket(h.api.port);
          const got = collect(socket, 5000);
          socket.write(raw);
          if (i % 2 === 0) {
            socket.destroy();
            return null;
          }
          const { data } = await got;
          socket.destroy();
          return parseResponse(data);
        })(),
      );
      const replies = await Promise.all(requests);
      const answered = replies.filter((r) => r !== null);
      expect(answered.length).toBe(100);
      for (const r of answered) expect([200, 402], r.body).toContain(r.status);
      await sleep(200); // let the abandoned decisions finish server-side
      await expectServing();
      expect(processErrors).toEqual([]);

      // Whatever the clients did, the trip's total is the sum of its approvals.
      const view = await h.getTrip(shopper, trip);
      const auths = view.json['authorizations'] as Array<{
        decision: string;
        amount_cents: number;
        reversed_cents: number;
      }>;
      const approvedSum = auths
        .filter((a) => a.decision === 'approved')
        .reduce((s, a) => s + a.amount_cents, 0);
      expect(view.json['authorized_cents']).toBe(approvedSum);
      expect(approvedSum).toBeGreaterThanOrEqual(answered.filter((r) => r.status === 200).length * 100);
    });

    it('a mid-body abort does not leave a request counted in flight (shutdown is not held up)', async () => {
      const h2 = await startTestApi({ SHUTDOWN_GRACE_MS: '60000' });
      try {
        for (let i = 0; i < 5; i++) {
          const full = signedSwipe(paddedSwipe(4000));
          const socket = await openSocket(h2.api.port);
          socket.on('error', () => {});
          socket.write(full.subarray(0, 1000));
          await sleep(5);
          socket.destroy();
        }
        await sleep(50);
      } finally {
        const started = Date.now();
        await h2.stop();
        // A leaked in-flight count makes drain() wait the whole grace (60 s); a
        // healthy stop takes milliseconds, even on a loaded machine far below 30 s.
        expect(Date.now() - started).toBeLessThan(30_000);
      }
    }, 120_000);

    it('pipelined requests answered synchronously come back in order', async () => {
      const unsigned = Buffer.from(
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
      );
      const health = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const swipe = signedSwipe(JSON.stringify(swipeBody(newId('nobody'), '1.00'))); // Connection: close
      const socket = await openSocket(h.api.port);
      const got = collect(socket, 3000);
      // The swipe (answered after a Redis round trip) is last before the close.
      socket.write(Buffer.concat([health, unsigned, health, swipe]));
      const { data } = await got;
      socket.destroy();
      expect(splitResponses(data).map((r) => r.status)).toEqual([200, 401, 200, 402]);
    });

    it('a request pipelined behind a pending (async) decision: no crash, no garbled answer', async () => {
      // uWebSockets.js closes the connection when a request arrives while the
      // previous response is still pending; the decision still completes server-side.
      const shopper = newId('nobody');
      const first = stripClose(signedSwipe(JSON.stringify(swipeBody(shopper, '1.00'))));
      const health = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const socket = await openSocket(h.api.port);
      const got = collect(socket, 3000);
      socket.write(Buffer.concat([first, health]));
      const { data } = await got;
      socket.destroy();
      const statuses = splitResponses(data).map((r) => r.status);
      // Either both answers in order, or none (connection closed): never a partial/garbled one.
      expect([[], [402, 200]]).toContainEqual(statuses);
      await sleep(50);
      await expectServing();
      expect(processErrors).toEqual([]);
    });

    it('malformed request heads (parser level) neither crash nor block other clients', async () => {
      const heads = [
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\nContent-Length: 2\r\n\r\n{}',
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x00b\r\nContent-Length: 2\r\n\r\n{}',
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nIdem Key: a\r\nContent-Length: 2\r\n\r\n{}',
        `GET /healthz HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 200 }, (_, i) => `X-H${i}: 1\r\n`).join('')}\r\n`,
        'HELLO\r\n\r\n',
        'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n',
        `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'POST /v1/authorizations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      ];
      const sockets = await Promise.all(
        heads.map(async (head) => {
          const s = await openSocket(h.api.port);
          const got = collect(s, 1000);
          s.write(Buffer.from(head, 'latin1'));
          return { s, got };
        }),
      );
      await expectServing(); // while those are pending
      for (const { s, got } of sockets) {
        const { data } = await got;
        s.destroy();
        const r = parseResponse(data);
        if (r !== null) expect(r.status >= 400 && r.status < 500, `${r.status} ${r.body}`).toBe(true);
      }
      await expectServing();
    });
  });

  describe('Content-Type', () => {
    it('415 on the webhook, reversals and trip API, answered without reading the body', async () => {
      for (const [method, path, auth] of [
        ['POST', '/v1/authorizations', []],
        ['POST', '/v1/authorizations/reversals', []],
        ['PUT', `/v1/shoppers/${newId('s')}/trips/${newId('t')}`, [['Authorization', `Bearer ${TOKEN}`]]],
        [
          'POST',
          `/v1/shoppers/${newId('s')}/trips/${newId('t')}/items/milk`,
          [['Authorization', `Bearer ${TOKEN}`]],
        ],
      ] as const) {
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', null]) {
          const headers: Array<[string, string]> = [...auth.map(([k, v]) => [k, v] as [string, string])];
          if (ct !== null) headers.push(['Content-Type', ct]);
          // Declares 1000 bytes but sends none: the 415 must not wait for them.
          const r = await sendRaw(
            h.api.port,
            encodeRequest({ method, path, headers, body: Buffer.alloc(0), contentLength: 1000 }),
            2000,
          );
          expectJsonError(r, 415, 'unsupported_media_type');
        }
      }
    });

    it('accepts application/json with a utf-8 charset, in any case', async () => {
      for (const ct of [
        'application/json; charset=utf-8',
        'Application/JSON',
        'application/json;charset="UTF-8"',
      ]) {
        const body = JSON.stringify(swipeBody(newId('nobody'), '1.00'));
        const raw = encodeRequest({
          method: 'POST',
          path: '/v1/authorizations',
          headers: [
            ['Content-Type', ct],
            ['X-Signature', signatureHeader(SECRET, nowS(), body)],
          ],
          body: Buffer.from(body),
        });
        const r = await sendRaw(h.api.port, raw);
        expect(r.status, `${ct}: ${r.body}`).toBe(402);
      }
    });
  });

  describe('routes and methods', () => {
    it('unknown routes: 404 JSON', async () => {
      for (const [method, path] of [
        ['GET', '/'],
        ['GET', '/v2/authorizations'],
        ['POST', '/nope'],
        ['GET', '/v1'],
        ['GET', '/metrics'],
        ['GET', '/favicon.ico'],
        ['DELETE', '/admin'],
      ] as const) {
        const r = await h.request(method, path, method === 'POST' ? '{}' : undefined, {
          'Content-Type': 'application/json',
        });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.headers.get('content-type')).toBe('application/json');
        expect(r.json['error']).toBe('not_found');
      }
    });

    it('wrong methods on known routes: 405 JSON', async () => {
      const trip = `/v1/shoppers/${newId('s')}/trips/${newId('t')}`;
      for (const [method, path] of [
        ['GET', '/v1/authorizations'],
        ['PUT', '/v1/authorizations'],
        ['DELETE', '/v1/authorizations'],
        ['GET', '/v1/authorizations/reversals'],
        ['DELETE', trip],
        ['PATCH', trip],
        ['POST', trip],
        ['GET', `${trip}/close`],
        ['PUT', `${trip}/items/milk`],
        ['POST', '/healthz'],
        ['PUT', '/readyz'],
      ] as const) {
        const r = await h.request(method, path, undefined, { Authorization: `Bearer ${TOKEN}` });
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.get('content-type')).toBe('application/json');
        expect(r.json['error']).toBe('method_not_allowed');
      }
    });
  });

  describe('authentication schemes do not cross', () => {
    it('trip API without or with a wrong bearer token: 401', async () => {
      const s = newId('s');
      const t = newId('t');
      const path = `/v1/shoppers/${s}/trips/${t}`;
      const body = JSON.stringify(safewayTrip());
      for (const auth of [
        undefined,
        'Bearer nope',
        `Bearer ${TOKEN}x`,
        `Basic ${Buffer.from(TOKEN).toString('base64')}`,
        TOKEN,
      ]) {
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (auth !== undefined) headers['Authorization'] = auth;
        for (const [method, p, b] of [
          ['PUT', path, body],
          ['GET', path, undefined],
          ['POST', `${path}/close`, undefined],
          ['POST', `${path}/items/milk`, '{"status":"not_found"}'],
        ] as const) {
          const r = await h.request(method, p, b, headers);
          expect(r.status, `${method} ${p} with ${auth}`).toBe(401);
          expect(r.json['error']).toBe('unauthorized');
        }
      }
      expect((await h.getTrip(s, t)).status).toBe(404); // nothing was created
    });

    it('a valid processor signature does not grant the trip API', async () => {
      const s = newId('s');
      const t = newId('t');
      const body = JSON.stringify(safewayTrip());
      const r = await h.request('PUT', `/v1/shoppers/${s}/trips/${t}`, body, {
        'Content-Type': 'application/json',
        'X-Signature': signatureHeader(SECRET, nowS(), body),
      });
      expect(r.status).toBe(401);
      expect((await h.getTrip(s, t)).status).toBe(404);
      // The same request with the token works (sanity).
      expect((await h.putTrip(s, t, safewayTrip())).status).toBe(201);
    });

    it('the bearer token does not grant the webhook or reversals', async () => {
      for (const path of ['/v1/authorizations', '/v1/authorizations/reversals']) {
        const body = JSON.stringify(swipeBody(newId('s'), '1.00'));
        const r = await h.request('POST', path, body, {
          'Content-Type': 'application/json',
          Authorization: `Bearer ${TOKEN}`,
        });
        expect(r.status, path).toBe(401);
        expect(r.json['error']).toBe('invalid_signature');
      }
    });
  });

  it('the process never saw an uncaught exception or unhandled rejection', async () => {
    await expectServing();
    expect(processErrors).toEqual([]);
  });
});

/** Drops "Connection: close" so the request can be pipelined. */
function stripClose(req: Buffer): Buffer {
  return Buffer.from(req.toString('latin1').replace('Connection: close\r\n', ''), 'latin1');
}
