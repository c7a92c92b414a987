// The inter-region channel's signature: rotation, tampering, staleness, loop guard.
import { describe, expect, it } from 'vitest';
import {
  mayForward,
  REGION_ORIGIN_HEADER,
  REGION_SIGNATURE_HEADER,
  REGION_TIMESTAMP_HEADER,
  signForward,
  verifyForward,
} from '../../src/regions/channel.js';

const OLD = 'o'.repeat(40);
const NEW = 'n'.repeat(40);
const NOW_S = 1_790_000_000;
const req = { method: 'POST', path: '/v1/authorizations', body: Buffer.from('{"amount_cents":1234}') };

describe('region channel', () => {
  it('accepts a request signed with any configured secret (rotation)', () => {
    const byOld = signForward([OLD], 'eu', req, NOW_S);
    expect(verifyForward([NEW, OLD], byOld, req, NOW_S)).toEqual({ ok: true, origin: 'eu' });
    const byNew = signForward([NEW, OLD], 'eu', req, NOW_S);
    expect(verifyForward([NEW], byNew, req, NOW_S + 29)).toEqual({ ok: true, origin: 'eu' });
  });

  it('refuses a changed body, path, method, origin or an unknown secret', () => {
    const h = signForward([NEW], 'eu', req, NOW_S);
    const bad = { ok: false, code: 'BAD_SIGNATURE' };
    expect(verifyForward([NEW], h, { ...req, body: Buffer.from('{"amount_cents":9234}') }, NOW_S)).toEqual(
      bad,
    );
    expect(verifyForward([NEW], h, { ...req, path: '/v1/trips/x' }, NOW_S)).toEqual(bad);
    expect(verifyForward([NEW], h, { ...req, method: 'PUT' }, NOW_S)).toEqual(bad);
    expect(verifyForward([NEW], { ...h, [REGION_ORIGIN_HEADER]: 'us' }, req, NOW_S)).toEqual(bad);
    expect(verifyForward([OLD], h, req, NOW_S)).toEqual(bad);
    expect(verifyForward([NEW], { ...h, [REGION_SIGNATURE_HEADER]: 'zz' }, req, NOW_S)).toEqual(bad);
  });

  it('refuses stale or missing channel headers', () => {
    const h = signForward([NEW], 'eu', req, NOW_S);
    expect(verifyForward([NEW], h, req, NOW_S + 31)).toEqual({ ok: false, code: 'STALE' });
    expect(verifyForward([NEW], { ...h, [REGION_TIMESTAMP_HEADER]: '1e9' }, req, NOW_S)).toEqual({
      ok: false,
      code: 'STALE',
    });
    expect(verifyForward([NEW], {}, req, NOW_S)).toEqual({ ok: false, code: 'UNSIGNED' });
  });

  it('never forwards a request that came over the channel (loop guard)', () => {
    expect(mayForward({})).toBe(true);
    expect(mayForward(signForward([NEW], 'eu', req, NOW_S))).toBe(false);
  });
});
