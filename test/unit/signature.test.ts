import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createBearerCheck } from '../../src/auth/bearer.js';
import { signatureHeader, verifySignature } from '../../src/auth/signature.js';

const SECRET = 'whsec_test_1';
const OLD_SECRET = 'whsec_old_0';
const NOW = 1_700_000_000;
const TOLERANCE = 300;
const body = new TextEncoder().encode('{"shopper_id":456,"amount":100.0}');

function hex(secret: string, t: number, raw: Uint8Array): string {
  return createHmac('sha256', secret).update(`${t}.`).update(raw).digest('hex');
}

const good = hex(SECRET, NOW, body);
/** The request's identity: sha256 of what the HMAC covers, whichever secret signed it. */
const ID = createHash('sha256').update(`${NOW}.`).update(body).digest('hex');
const wrong = hex('not-the-secret', NOW, body);

function verify(header: string | undefined, secrets: readonly string[] = [SECRET], nowS = NOW) {
  return verifySignature(header, body, secrets, nowS, TOLERANCE);
}

describe('signatureHeader', () => {
  it('builds t=..,v1=<hex of HMAC_SHA256(secret, "<t>.<body>")>', () => {
    // Independently computed reference value.
    expect(signatureHeader('secret', 1_700_000_000, '{}')).toBe(
      `t=1700000000,v1=${createHmac('sha256', 'secret').update('1700000000.{}').digest('hex')}`,
    );
    expect(signatureHeader(SECRET, NOW, body)).toBe(`t=${NOW},v1=${good}`);
    expect(signatureHeader(SECRET, NOW, '{"shopper_id":456,"amount":100.0}')).toBe(`t=${NOW},v1=${good}`);
    expect(() => signatureHeader(SECRET, 0, body)).toThrow();
    expect(() => signatureHeader(SECRET, 1.5, body)).toThrow();
  });
});

describe('verifySignature', () => {
  it('accepts a valid signature and returns t and its identity, sha256(t.body)', () => {
    expect(verify(signatureHeader(SECRET, NOW, body))).toEqual({ ok: true, t: NOW, id: ID });
  });

  it('accepts upper-case hex', () => {
    expect(verify(`t=${NOW},v1=${good.toUpperCase()}`)).toEqual({ ok: true, t: NOW, id: ID });
  });

  it('accepts any one of several v1 entries (processor rotating)', () => {
    expect(verify(`t=${NOW},v1=${wrong},v1=${good}`)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=${good},v1=${wrong}`)).toEqual({ ok: true, t: NOW, id: ID });
  });

  it('gives a request one identity whichever valid v1 entries it carries (a used signature stays used)', () => {
    const old = hex(OLD_SECRET, NOW, body);
    const both = [SECRET, OLD_SECRET];
    expect(verify(`t=${NOW},v1=${good},v1=${old}`, both)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=${old}`, both)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=${good}`, [OLD_SECRET, SECRET])).toEqual({ ok: true, t: NOW, id: ID });
  });

  it('accepts any one of several secrets (us rotating)', () => {
    const old = hex(OLD_SECRET, NOW, body);
    expect(verify(`t=${NOW},v1=${old}`, [SECRET, OLD_SECRET])).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=${old}`, [SECRET]).ok).toBe(false);
    expect(verify(`t=${NOW},v1=${good}`, []).ok).toBe(false);
    expect(verify(`t=${NOW},v1=${hex('', NOW, body)}`, ['']).ok).toBe(false); // empty secret ignored
  });

  it('tolerates spaces and empty parts, and skips unknown schemes and malformed v1 entries', () => {
    expect(verify(` t=${NOW} , v1=${good} `)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},,v1=${good},`)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`v0=abc,t=${NOW},v1=${good}`)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=zz${good.slice(2)},v1=${good}`)).toEqual({ ok: true, t: NOW, id: ID });
    expect(verify(`t=${NOW},v1=${good}00,v1=${good}`)).toEqual({ ok: true, t: NOW, id: ID });
  });

  it('rejects a signature over another body, secret or timestamp', () => {
    expect(verify(`t=${NOW},v1=${wrong}`).ok).toBe(false);
    const other = new TextEncoder().encode('{"shopper_id":456,"amount":100.00}');
    expect(verifySignature(`t=${NOW},v1=${good}`, other, [SECRET], NOW, TOLERANCE).ok).toBe(false);
    expect(verify(`t=${NOW + 1},v1=${good}`).ok).toBe(false);
  });

  it('enforces the timestamp tolerance on both sides, inclusive', () => {
    for (const t of [NOW - 300, NOW + 300]) {
      expect(verify(`t=${t},v1=${hex(SECRET, t, body)}`).ok).toBe(true);
    }
    for (const t of [NOW - 301, NOW + 301]) {
      expect(verify(`t=${t},v1=${hex(SECRET, t, body)}`).ok).toBe(false);
    }
  });

  it('rejects malformed headers', () => {
    const cases = [
      undefined,
      '',
      `v1=${good}`, // no t
      `t=${NOW}`, // no v1
      `t=${NOW},v1=`,
      `t=${NOW},t=${NOW},v1=${good}`, // duplicate t
      `t=${NOW},v1=${good.slice(0, 63)}`, // short
      `t=${NOW}.0,v1=${good}`,
      `t=+${NOW},v1=${good}`,
      `t=-${NOW},v1=${good}`,
      `t=0${NOW},v1=${good}`, // leading zero
      `t=1e9,v1=${good}`,
      `t=,v1=${good}`,
      `t=${NOW},v1=${good},garbage`, // part without "="
      `=${NOW},v1=${good}`,
      `t=${NOW};v1=${good}`,
    ];
    for (const header of cases) expect(verify(header), String(header)).toEqual({ ok: false });
  });

  it('enforces the header length and entry limits', () => {
    const eight = [...new Array(7).fill(`v1=${wrong}`), `v1=${good}`].join(',');
    expect(verify(`t=${NOW},${eight}`).ok).toBe(true);
    const nine = [...new Array(8).fill(`v1=${wrong}`), `v1=${good}`].join(',');
    expect(verify(`t=${NOW},${nine}`).ok).toBe(false);
    const padded = `t=${NOW},v1=${good},${' '.repeat(2048)}`;
    expect(verify(padded).ok).toBe(false);
    const manyParts = `t=${NOW},v1=${good}${',x=1'.repeat(20)}`;
    expect(verify(manyParts).ok).toBe(false);
  });

  it('signs the raw bytes, not a re-encoding', () => {
    const raw = new Uint8Array([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]); // {"n":"é"}
    const header = signatureHeader(SECRET, NOW, raw);
    expect(verifySignature(header, raw, [SECRET], NOW, TOLERANCE).ok).toBe(true);
    const nfd = new TextEncoder().encode('{"n":"e\u0301"}');
    expect(verifySignature(header, nfd, [SECRET], NOW, TOLERANCE).ok).toBe(false);
  });

  it('asserts its numeric arguments (programmer errors)', () => {
    expect(() => verifySignature(`t=${NOW},v1=${good}`, body, [SECRET], Number.NaN, TOLERANCE)).toThrow();
    expect(() => verifySignature(`t=${NOW},v1=${good}`, body, [SECRET], NOW, -1)).toThrow();
  });
});

describe('createBearerCheck', () => {
  const check = createBearerCheck(['tok_alpha', 'tok_beta']);

  it('accepts any configured token with a case-insensitive scheme', () => {
    expect(check('Bearer tok_alpha')).toBe(true);
    expect(check('Bearer tok_beta')).toBe(true);
    expect(check('bearer tok_alpha')).toBe(true);
    expect(check('BEARER tok_alpha')).toBe(true);
    expect(check('  Bearer \t tok_alpha  ')).toBe(true);
  });

  it('rejects everything else', () => {
    const cases = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'tok_alpha',
      'Basic tok_alpha',
      'Bearertok_alpha',
      'Bearer tok_alphA',
      'Bearer tok_alph',
      'Bearer tok_alpha2',
      'Bearer tok_alpha tok_beta',
      `Bearer ${'x'.repeat(5000)}`,
      'Token tok_alpha',
    ];
    for (const header of cases) expect(check(header), String(header)).toBe(false);
  });

  it('with no tokens configured nothing passes; empty tokens are ignored', () => {
    expect(createBearerCheck([])('Bearer tok_alpha')).toBe(false);
    expect(createBearerCheck([''])('Bearer ')).toBe(false);
  });
});
