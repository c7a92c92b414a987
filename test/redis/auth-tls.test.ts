// Redis AUTH and TLS from configuration (REDIS_USERNAME, REDIS_PASSWORD,
// REDIS_TLS, REDIS_TLS_CA_FILE, REDIS_TLS_SERVERNAME), against private
// redis-servers started here (ports 17410-17419): one with --requirepass and
// an ACL user, one serving TLS only with a throwaway CA. The running api
// decides a swipe over AUTH + TLS; Cluster clients carry the same options to
// every node (option wiring: no TLS Redis Cluster runs on this machine).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { connectRedis, createRedisClient, type RedisClient } from '../../src/redis/client.js';
import { startTestApi } from '../helpers/api.js';
import { type RedisServer, redisServerHasTls, startRedisServer } from '../helpers/redisServer.js';

const PASSWORD = 'redis-test-password-0123456789';
const ACL: [string, string] = ['swipe-app', 'acl-user-password-0123456789'];
const hasTls = redisServerHasTls();
let auth: RedisServer;
let tls: RedisServer | undefined;
const clients: RedisClient[] = [];

function client(env: Record<string, string>, errors: string[] = []): RedisClient {
  const c = createRedisClient(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env }), {
    commandTimeoutMs: 2000,
    name: 'auth-tls-test',
  });
  c.on('error', (err: Error) => errors.push(err.message));
  clients.push(c);
  return c;
}

/** PONG, or `error: <message> | <the client's error events>`. */
async function pingWith(env: Record<string, string>): Promise<string> {
  const errors: string[] = [];
  const c = client(env, errors);
  try {
    await connectRedis(c, 3000);
    return await c.ping();
  } catch (err) {
    return `error: ${(err as Error).message} | ${errors.join(' | ')}`;
  } finally {
    c.disconnect();
  }
}

beforeAll(async () => {
  auth = await startRedisServer({ port: 17410, password: PASSWORD, aclUser: ACL });
  if (hasTls) tls = await startRedisServer({ port: 17411, password: PASSWORD, tls: true });
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await auth?.stop();
  await tls?.stop();
});

describe('config', () => {
  it('reads the AUTH and TLS settings; rediss:// turns TLS on; a CA without TLS is refused', () => {
    const c = loadConfig({
      NODE_ENV: 'test',
      REDIS_USERNAME: 'u',
      REDIS_PASSWORD: 'p',
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: '/etc/ca.crt',
      REDIS_TLS_SERVERNAME: 'redis.example',
    });
    expect([c.redisUsername, c.redisPassword, c.redisTls, c.redisTlsCaFile, c.redisTlsServername]).toEqual([
      'u',
      'p',
      true,
      '/etc/ca.crt',
      'redis.example',
    ]);
    const plain = loadConfig({ NODE_ENV: 'test' });
    expect([plain.redisUsername, plain.redisPassword, plain.redisTls]).toEqual([undefined, undefined, false]);
    expect(loadConfig({ NODE_ENV: 'test', REDIS_URL: 'rediss://h:6380' }).redisTls).toBe(true);
    expect(() => loadConfig({ NODE_ENV: 'test', REDIS_TLS_CA_FILE: '/x' })).toThrow(/REDIS_TLS_CA_FILE/);
  });
});

describe('AUTH against a redis-server with --requirepass and an ACL user', () => {
  const url = 'redis://127.0.0.1:17410';

  it('connects with REDIS_PASSWORD', async () => {
    expect(await pingWith({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD })).toBe('PONG');
  });

  it('connects as an ACL user with REDIS_USERNAME + REDIS_PASSWORD', async () => {
    expect(await pingWith({ REDIS_URL: url, REDIS_USERNAME: ACL[0], REDIS_PASSWORD: ACL[1] })).toBe('PONG');
  });

  it('is refused without a password or with a wrong one', async () => {
    expect(await pingWith({ REDIS_URL: url })).toMatch(/^error: .*NOAUTH/);
    expect(await pingWith({ REDIS_URL: url, REDIS_PASSWORD: 'wrong-password-0123' })).toMatch(
      /^error: .*WRONGPASS/,
    );
  });
});

describe.skipIf(!hasTls)('TLS against a redis-server serving TLS only', () => {
  const url = 'redis://127.0.0.1:17411';

  it('connects with REDIS_TLS and the CA file (and with a rediss:// URL)', async () => {
    const ca = tls?.caFile ?? '';
    expect(
      await pingWith({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: ca }),
    ).toBe('PONG');
    expect(
      await pingWith({
        REDIS_URL: 'rediss://127.0.0.1:17411',
        REDIS_PASSWORD: PASSWORD,
        REDIS_TLS_CA_FILE: ca,
      }),
    ).toBe('PONG');
  });

  it('verifies the server certificate: without the CA it refuses to connect', async () => {
    expect(await pingWith({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD, REDIS_TLS: 'true' })).toMatch(/^error/);
  });

  it('a plain-text client gets no answer from the TLS port', async () => {
    expect(await pingWith({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD })).toMatch(/^error/);
  });

  it('the api decides a swipe over AUTH + TLS', async () => {
    const t = await startTestApi({
      REDIS_URL: url,
      REDIS_PASSWORD: PASSWORD,
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: tls?.caFile ?? '',
    });
    try {
      const trip = await t.putTrip('s-tls', 't-1', {
        merchant: { name: 'Safeway', address: '123 Main St' },
        currency: 'USD',
        orders: [{ order_id: 'o-1', items: [{ item_id: 'milk', quantity: 2, unit_price: '3.49' }] }],
      });
      expect(trip.status, trip.text).toBe(201);
      const pick = await t.pick('s-tls', 't-1', 'milk', {
        status: 'picked',
        quantity: 2,
        unit_price: '3.49',
      });
      expect(pick.status, pick.text).toBe(200);
      const swipe = await t.swipe({
        shopper_id: 's-tls',
        amount: '5.00',
        merchant: { name: 'Safeway', address: '123 Main St' },
      });
      expect(swipe.status, swipe.text).toBe(200);
      expect(swipe.json).toMatchObject({ decision: 'approved', mode: 'normal', amount_cents: 500 });
    } finally {
      await t.stop();
    }
  });
});

describe('Redis Cluster clients carry AUTH and TLS to every node (option wiring)', () => {
  it('redisOptions has username, password and TLS with the CA; names are kept for TLS', () => {
    const ca = tls?.caFile ?? auth.caFile;
    const c = client({
      REDIS_CLUSTER_NODES:
        'swipe-redis-0.swipe-redis-headless.ns.svc:6379,swipe-redis-1.swipe-redis-headless.ns.svc:6379',
      REDIS_USERNAME: ACL[0],
      REDIS_PASSWORD: ACL[1],
      REDIS_TLS: 'true',
      ...(ca ? { REDIS_TLS_CA_FILE: ca } : {}),
    });
    const options = (
      c as unknown as { options: { redisOptions: Record<string, unknown>; dnsLookup?: unknown } }
    ).options;
    expect(options.redisOptions['username']).toBe(ACL[0]);
    expect(options.redisOptions['password']).toBe(ACL[1]);
    const tlsOptions = options.redisOptions['tls'] as { rejectUnauthorized: boolean; ca?: Buffer };
    expect(tlsOptions.rejectUnauthorized).toBe(true);
    if (ca) expect(tlsOptions.ca?.toString('utf8')).toContain('BEGIN CERTIFICATE');
    expect(typeof options.dnsLookup).toBe('function');
  });
});
