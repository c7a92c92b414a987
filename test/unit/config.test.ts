import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it, test } from 'vitest';
import { ConfigError, DEV_API_TOKEN, DEV_SIGNATURE_SECRET, loadConfig } from '../../src/config/config.js';

const run = promisify(execFile);

describe('config', () => {
  it('reads a limit by its name and by the name it had before (unit last, _MAX last)', () => {
    expect(loadConfig({ NODE_ENV: 'test', SWIPES_PER_MINUTE_MAX: '7' }).maxSwipesPerMinute).toBe(7);
    expect(loadConfig({ NODE_ENV: 'test', MAX_SWIPES_PER_MINUTE: '8' }).maxSwipesPerMinute).toBe(8);
    expect(loadConfig({ NODE_ENV: 'test', DISTANCE_M_MAX: '500', MAX_DISTANCE_M: '500' }).maxDistanceM).toBe(
      500,
    );
    expect(() => loadConfig({ NODE_ENV: 'test', OVERPICK_BPS_MAX: '100', MAX_OVERPICK_BPS: '200' })).toThrow(
      /OVERPICK_BPS_MAX and its old name MAX_OVERPICK_BPS disagree/,
    );
    expect(() => loadConfig({ NODE_ENV: 'test', MAX_PRICE_VARIANCE_BPS: 'x' })).toThrow(
      /MAX_PRICE_VARIANCE_BPS must be an integer/,
    );
  });

  test('contract defaults (CONTRACT §6)', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      metricsPort: 9464,
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'sa',
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
      decisionTimeoutMs: 25,
      failopenEnabled: true,
      failopenMaxCents: 10_000,
      failopenShopperMaxCents: 20_000,
      failopenWindowS: 600,
      partitions: 64,
      tripTtlS: 43_200,
      maxDistanceM: 2000,
      maxSwipesPerMinute: 10,
      maxOverpickBps: 1000,
      maxPriceVarianceBps: 2500,
      webhookBodyBytesMax: 16_384,
      signatureToleranceS: 300,
    });
    expect(c.signatureSecrets).toEqual([DEV_SIGNATURE_SECRET]);
    expect(c.apiTokens).toEqual([DEV_API_TOKEN]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.signatureSecrets)).toBe(true);
  });

  test('lists, cluster nodes and booleans', () => {
    const c = loadConfig({
      SIGNATURE_SECRETS: 'aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb',
      API_TOKENS: 'cccccccccccccccc',
      REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis-1:7001',
      FAILOPEN_ENABLED: 'false',
    });
    expect(c.signatureSecrets).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(c.redisClusterNodes).toEqual(['10.0.0.1:7000', 'redis-1:7001']);
    expect(c.failopenEnabled).toBe(false);
    expect(c.generatedDevSecrets).toBe(false);
  });

  test('production refuses to start without secrets and tokens', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      /SIGNATURE_SECRETS is required[\s\S]*API_TOKENS is required/,
    );
  });

  test('every problem is reported at once', () => {
    try {
      loadConfig({
        PORT: 'eighty',
        PARTITIONS: '0',
        FAILOPEN_ENABLED: 'maybe',
        REDIS_PREFIX: 'a{b}',
        DECISION_TIMEOUT_MS: '2000',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/PORT must be an integer/);
      expect(problems).toMatch(/PARTITIONS must be between 1 and 16384/);
      expect(problems).toMatch(/FAILOPEN_ENABLED must be true or false/);
      expect(problems).toMatch(/REDIS_PREFIX/);
      expect(problems).toMatch(/DECISION_TIMEOUT_MS must be between 1 and 900/);
    }
  });

  test('limits that must fit together', () => {
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow(/must differ/);
    expect(() => loadConfig({ FAILOPEN_MAX_CENTS: '30000' })).toThrow(
      /FAILOPEN_SHOPPER_MAX_CENTS must be >=/,
    );
    expect(() => loadConfig({ SIGNATURE_SECRETS: 'short' })).toThrow(/>= 16 chars/);
  });

  test('the binary exits 78 with a clear message on bad config', async () => {
    const err = await run(process.execPath, ['dist/cli.js', 'serve'], {
      env: { ...process.env, PORT: 'nope', NODE_ENV: 'test' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(78);
    expect((err as { stderr: string }).stderr).toMatch(/invalid configuration[\s\S]*PORT must be an integer/);
  });
});
