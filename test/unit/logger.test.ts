// Logger: secrets and signature headers never reach the output; request ids; the
// decline (debug) and fail-open (warn) lines; levels by config.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DECLINE_REASONS } from '../../src/redis/results.js';
import {
  createLogger,
  declineReasonClass,
  logDecline,
  logFailOpen,
  newRequestId,
  redactUrl,
  requestIdFrom,
  requestLogger,
} from '../../src/observability/logger.js';

function capture(level = 'trace') {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const log = createLogger(level, sink);
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Walks parsed JSON by keys. */
function at(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const k of path)
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

const SECRET = 'whsec_super_secret_value_1234567890';
const TOKEN = 'tok_bearer_value_abcdefghijklmnop';
const SIG = 't=1700000000,v1=5f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809';
const DB_PASSWORD = 'pg_password_qwertyuiop';

describe('redaction', () => {
  it('never writes authorization or x-signature headers, secrets, tokens or URL passwords', () => {
    const { log, lines, parsed } = capture();
    const headers = {
      authorization: `Bearer ${TOKEN}`,
      'x-signature': SIG,
      'proxy-authorization': `Basic ${TOKEN}`,
      cookie: `session=${TOKEN}`,
      'content-type': 'application/json',
      'idempotency-key': 'idem-1',
    };
    log.info({ req: { method: 'POST', url: '/v1/authorizations', headers } }, 'request');
    log.info({ headers }, 'request headers');
    log.warn({ request: { headers } }, 'nested request');
    log.info(
      {
        config: {
          signatureSecrets: [SECRET],
          apiTokens: [TOKEN],
          databaseUrl: `postgres://app:${DB_PASSWORD}@db:5432/swipes`,
          redisUrl: `redis://:${DB_PASSWORD}@redis:6379/0`,
          port: 8080,
        },
      },
      'config',
    );
    log.info({ signatureSecrets: [SECRET], apiTokens: [TOKEN], secret: SECRET, token: TOKEN }, 'top level');
    log.info(
      { webhook: { secret: SECRET, token: TOKEN, password: DB_PASSWORD }, signature: SIG },
      'one deep',
    );
    log.info({
      env: { SIGNATURE_SECRETS: SECRET, API_TOKENS: TOKEN, DATABASE_URL: `postgres://u:${DB_PASSWORD}@h/d` },
    });
    requestLogger(log, 'r-1').info({ headers }, 'child logger');

    const out = lines.join('\n');
    expect(lines.length).toBe(8);
    for (const s of [SECRET, TOKEN, SIG, 'v1=5f2b', DB_PASSWORD, 'Bearer']) expect(out).not.toContain(s);

    const [req, hdrs, nested, cfg, top, oneDeep] = parsed();
    expect(at(req, 'req', 'headers', 'authorization')).toBe('[redacted]');
    expect(at(req, 'req', 'headers', 'x-signature')).toBe('[redacted]');
    expect(at(req, 'req', 'headers', 'content-type')).toBe('application/json'); // the rest survives
    expect(at(req, 'req', 'headers', 'idempotency-key')).toBe('idem-1');
    expect(at(hdrs, 'headers', 'x-signature')).toBe('[redacted]');
    expect(at(nested, 'request', 'headers', 'authorization')).toBe('[redacted]');
    expect(at(cfg, 'config', 'signatureSecrets')).toBe('[redacted]');
    expect(at(cfg, 'config', 'port')).toBe(8080);
    // URLs keep host and database (useful when debugging), lose only the password.
    expect(at(cfg, 'config', 'databaseUrl')).toBe('postgres://app:%5Bredacted%5D@db:5432/swipes');
    expect(at(cfg, 'config', 'redisUrl')).toContain('@redis:6379/0');
    expect(at(top, 'secret')).toBe('[redacted]');
    expect(at(oneDeep, 'webhook', 'password')).toBe('[redacted]');
    expect(at(oneDeep, 'signature')).toBe('[redacted]');
  });

  it('redactUrl handles URLs without a password and non-URLs', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('not a url with secret')).toBe('[redacted]');
    expect(redactUrl(42)).toBe('[redacted]');
  });
});

describe('request ids', () => {
  it('keeps a sane X-Request-Id and replaces anything else', () => {
    expect(requestIdFrom('abc-123_x.y:z')).toBe('abc-123_x.y:z');
    for (const bad of [undefined, '', 'a b', 'x'.repeat(129), 'id\n{"level":"fatal"}', 'é']) {
      const id = requestIdFrom(bad);
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    }
  });

  it('new ids are unique in a process', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newRequestId()));
    expect(ids.size).toBe(10_000);
  });

  it('a request logger stamps req_id on every line', () => {
    const { log, parsed } = capture();
    const rl = requestLogger(log, 'req-42');
    rl.info('a');
    rl.error({ err: new Error('x') }, 'b');
    expect(parsed().map((l) => l['req_id'])).toEqual(['req-42', 'req-42']);
  });
});

describe('decision lines and levels', () => {
  it('one debug line per decline, with reason and reason class', () => {
    const { log, parsed } = capture('debug');
    logDecline(log, 'r1', { reason: 'AMOUNT_EXCEEDS_ALLOWANCE', amount_cents: 10_000, trip_id: 't1' });
    logDecline(log, 'r2', { reason: 'MERCHANT_MISMATCH' });
    const lines = parsed();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'debug',
      msg: 'swipe declined',
      req_id: 'r1',
      reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
      reason_class: 'allowance',
      amount_cents: 10_000,
      service: 'swipe-authorizer',
    });
    expect(lines[1]).toMatchObject({ reason_class: 'merchant' });
    expect(typeof lines[0]!['time']).toBe('string');
  });

  it('one warn line per fail-open decision', () => {
    const { log, parsed } = capture('warn');
    logFailOpen(log, 'r3', { decision: 'approved', amount_cents: 500, shopper_id: 's1', cause: 'timeout' });
    logDecline(log, 'r4', { reason: 'NO_ITEMS_PICKED' }); // debug: filtered at warn
    const lines = parsed();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      msg: 'fail-open decision',
      mode: 'fail_open',
      decision: 'approved',
      cause: 'timeout',
      req_id: 'r3',
    });
  });

  it('levels come from config: info hides debug, silent hides everything', () => {
    const info = capture('info');
    logDecline(info.log, 'r', { reason: 'TRIP_CLOSED' });
    info.log.info('shown');
    expect(info.parsed().map((l) => l['msg'])).toEqual(['shown']);
    const silent = capture('silent');
    logFailOpen(silent.log, 'r', {
      decision: 'declined',
      amount_cents: 1,
      shopper_id: 's',
      cause: 'breaker_open',
    });
    expect(silent.lines).toHaveLength(0);
  });

  it('classifies every contract decline reason', () => {
    expect(DECLINE_REASONS).toHaveLength(11); // CONTRACT §1
    for (const r of DECLINE_REASONS) expect(declineReasonClass(r)).not.toBe('other');
    expect(declineReasonClass('SOMETHING_NEW')).toBe('other');
  });
});
