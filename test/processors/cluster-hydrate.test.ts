// Processor decisions and events on a Redis Cluster (the card lookup and the decision are
// one call each, each in one slot), and hydrate rebuilding cards and §4b store fields from
// Postgres after Redis lost data.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { startPersister } from '../../src/persister/commands.js';
import { Hydrator } from '../../src/persister/hydrate.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { connectRedis, createRedisClient } from '../../src/redis/client.js';
import { loadConfig } from '../../src/config/config.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { startRedisCluster, type PrivateCluster } from '../helpers/redisCluster.js';
import { testLogger } from '../persister/helpers/log.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import {
  lithicAsaRequest,
  lithicHeaders,
  lithicTransactionUpdated,
  processorEnv,
  postStripe,
  STRIPE_AUTHORIZATIONS,
  shopperWithCard,
  startProcessorEnv,
  stripeRequestEvent,
  uid,
} from './helpers.js';

describe('on a Redis Cluster', () => {
  let cluster: PrivateCluster;
  let db: TestDb;
  let h: TestApi;
  afterAll(async () => {
    await h?.stop();
    await db?.drop();
    await cluster?.stop();
  });

  test('card lookup, decision and events never cross a slot', async () => {
    cluster = await startRedisCluster([17690, 17691, 17692]);
    db = await createTestDb();
    h = await startTestApi(
      processorEnv(17693, {
        REDIS_CLUSTER_NODES: cluster.nodes.join(','),
        PARTITIONS: '16',
        DATABASE_URL: db.url,
        DECISION_TIMEOUT_MS: '500',
      }),
    );
    const persister = await startPersister(h.config, testLogger(), createMetrics({ defaultMetrics: false }));
    try {
      // Several shoppers and cards: card and shopper partitions differ for most of them.
      for (let i = 0; i < 4; i++) {
        const s = await shopperWithCard({ t: h }, 'stripe');
        const r = await postStripe(
          h,
          STRIPE_AUTHORIZATIONS,
          stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: s.cardId, amount: 1000 }),
        );
        expect(r.json).toMatchObject({ approved: true, metadata: { mode: 'normal' } });
        const l = await shopperWithCard({ t: h }, 'lithic');
        const token = randomUUID();
        const body = JSON.stringify(
          lithicAsaRequest({ token, cardId: l.cardId, amount: 700, eventToken: randomUUID() }),
        );
        expect(
          (await h.request('POST', '/v1/processors/lithic/asa', body, lithicHeaders(body))).json['result'],
        ).toBe('APPROVED');
        const ev = JSON.stringify(
          lithicTransactionUpdated({
            token,
            cardId: l.cardId,
            events: [{ token: randomUUID(), type: 'CLEARING', amount: 650 }],
          }),
        );
        const e = await h.request('POST', '/v1/processors/lithic/events', ev, lithicHeaders(ev));
        expect(e.json['events']).toEqual([expect.objectContaining({ outcome: 'cleared' })]);
        expect((await h.getTrip(l.shopperId, l.tripId)).json['authorized_cents']).toBe(650);
      }
    } finally {
      await persister.stop();
    }
  });
});

describe('hydrate', () => {
  test('rebuilds processor cards and the store fields of §4b from Postgres', async () => {
    const env = await startProcessorEnv(17640);
    let fresh: TestApi | undefined;
    try {
      const s = await shopperWithCard(env, 'stripe');
      await env.persisted();
      // Redis "lost everything": a new prefix, rebuilt by hydrate from the same Postgres.
      const prefix = uid('hyd');
      const config = loadConfig({
        ...processorEnv(17642),
        NODE_ENV: 'test',
        REDIS_PREFIX: prefix,
        PARTITIONS: String(env.t.config.partitions),
        DATABASE_URL: env.db.url,
        LOG_LEVEL: 'silent',
      });
      const client = createRedisClient(config, { name: 'hydrate-test', commandTimeoutMs: 10_000 });
      await connectRedis(client);
      const hydrator = new Hydrator({ config, client, logger: testLogger(), orm: env.db.orm });
      for (let p = 0; p < config.partitions; p++) await hydrator.hydratePartition(p);
      client.disconnect();
      fresh = await startTestApi(
        processorEnv(17644, { REDIS_PREFIX: prefix, PARTITIONS: String(config.partitions) }),
      );
      const send = (event: Record<string, unknown>) =>
        fresh === undefined ? undefined : postStripe(fresh, STRIPE_AUTHORIZATIONS, event);
      // The card is known again, and the network id still matches (m_nids restored from the spec).
      expect(
        (await send(stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: s.cardId, amount: 500 })))
          ?.json,
      ).toMatchObject({ approved: true });
      // ... and an MCC outside the allow-list is still refused (m_mccs restored).
      expect(
        (
          await send(
            stripeRequestEvent({
              authorizationId: uid('iauth_'),
              cardId: s.cardId,
              amount: 500,
              merchant: { category_code: '5812' },
            }),
          )
        )?.json,
      ).toMatchObject({ approved: false, metadata: { reason: 'MERCHANT_MISMATCH' } });
    } finally {
      await fresh?.stop();
      await env.stop();
    }
  });
});
