// The bench's processor formats (bench/processorFormats.ts) against a real api: the raw
// request bytes the load generator sends are accepted (signed right) and decided as the
// native mix would be: approvals, declines on amount and merchant, replays of retries.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  benchCardId,
  PROCESSOR_BENCH_ENV,
  PROCESSOR_FORMATS,
  processorRequestBytes,
  registerBenchCards,
} from '../../bench/processorFormats.js';
import { benchShoppers, ITEMS, pickBody, Rng, SwipeMix, TOKEN, tripBody } from '../../bench/workload.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

let h: TestApi;
const shoppers = benchShoppers(4, `pf${Date.now().toString(36)}`);
beforeAll(async () => {
  h = await startTestApi({
    PORT: '17650',
    METRICS_PORT: '17651',
    API_TOKENS: TOKEN,
    MAX_SWIPES_PER_MINUTE: '100000',
    ...PROCESSOR_BENCH_ENV,
  });
  const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  for (const s of shoppers) {
    expect(
      (await h.request('PUT', `/v1/shoppers/${s.shopperId}/trips/${s.tripId}`, tripBody(), headers)).status,
    ).toBe(201);
    for (const item of ITEMS)
      expect(
        (
          await h.request(
            'POST',
            `/v1/shoppers/${s.shopperId}/trips/${s.tripId}/items/${item.item_id}`,
            pickBody(item),
            headers,
          )
        ).status,
      ).toBe(200);
  }
  await registerBenchCards(h.api.port, shoppers);
  await registerBenchCards(h.api.port, shoppers); // idempotent
});
afterAll(async () => {
  await h?.stop();
});

function send(bytes: string): Promise<{ status: number; replayed: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: h.api.port }, () => s.write(bytes));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(buf);
      if (end >= 0 && len !== null && buf.length >= end + 4 + Number(len[1])) {
        s.end();
        resolve({
          status: Number(buf.slice(9, 12)),
          replayed: /idempotent-replayed/i.test(buf.slice(0, end)),
          body: buf.slice(end + 4),
        });
      }
    });
    s.on('error', reject);
  });
}

describe('bench processor formats', () => {
  it('card ids pass the registry', () => {
    for (const f of PROCESSOR_FORMATS)
      expect(benchCardId(f, shoppers[0]!.shopperId)).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  it.each(PROCESSOR_FORMATS)('%s: the mix is decided like the native one', async (format) => {
    const mix = new SwipeMix(shoppers, new Rng(7), `b${format}`);
    const seen: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const swipe = mix.next();
      const r = await send(processorRequestBytes(format, swipe, `127.0.0.1:${h.api.port}`));
      expect(r.status === 200 || r.status === 402, r.body).toBe(true);
      const approved =
        format === 'stripe'
          ? r.body.startsWith('{"approved":true')
          : format === 'lithic'
            ? r.body.includes('"APPROVED"')
            : r.status === 200;
      const key = `${swipe.kind} ${approved ? 'approved' : 'declined'}${r.replayed ? ' replayed' : ''}`;
      seen[key] = (seen[key] ?? 0) + 1;
      if (swipe.kind === 'too_high' || swipe.kind === 'wrong_merchant')
        expect(approved, `${swipe.kind}: ${r.body}`).toBe(false);
      if (swipe.kind === 'retry') expect(r.replayed).toBe(true);
    }
    expect(Object.keys(seen).some((k) => k.startsWith('approve approved'))).toBe(true);
  });
});
