// The region seam's pure parts: which answers say "not here" (and under which directory
// key), and the path a forwarded request is sent to.
import { describe, expect, it } from 'vitest';
import type { HttpResponse } from '../../src/http/errors.js';
import type { Request, Route } from '../../src/http/server.js';
import { notHereKey, pathOf } from '../../src/regions/routing.js';
import { requestHeaders } from './seamParts.js';

const route = (method: Route['method'], pattern: string, label = pattern): Route => ({
  method,
  pattern,
  label,
  paramCount: (pattern.match(/:/g) ?? []).length,
  bodyBytesMax: 16_384,
  requireJson: true,
  handler: () => ({ status: 200, body: '{}' }),
});

const req = (body: unknown, params: string[] = []): Request => ({
  params,
  headers: requestHeaders(),
  body: Buffer.from(JSON.stringify(body)),
  startedNs: 0n,
});

const res = (status: number, body: unknown, extra: Partial<HttpResponse> = {}): HttpResponse => ({
  status,
  body: JSON.stringify(body),
  ...extra,
});

describe('region seam', () => {
  const native = route('post', '/v1/authorizations');
  const reversals = route('post', '/v1/authorizations/reversals');
  const tripGet = route(
    'get',
    '/v1/shoppers/:shopper/trips/:trip',
    '/v1/shoppers/:shopper_id/trips/:trip_id',
  );
  const tripPut = route(
    'put',
    '/v1/shoppers/:shopper/trips/:trip',
    '/v1/shoppers/:shopper_id/trips/:trip_id',
  );

  it('only "not here" answers name a directory key', () => {
    const swipe = req({ shopper_id: 456, amount: '1.00' });
    expect(notHereKey(native, swipe, res(402, { decision: 'declined', reason: 'UNKNOWN_SHOPPER' }))).toBe(
      's:456',
    );
    expect(
      notHereKey(native, swipe, res(402, { decision: 'declined', reason: 'TRIP_CLOSED' })),
    ).toBeUndefined();
    expect(notHereKey(native, swipe, res(200, { decision: 'approved' }))).toBeUndefined();
    expect(notHereKey(native, req('not json'), res(402, { reason: 'UNKNOWN_SHOPPER' }))).toBeUndefined();
    expect(notHereKey(reversals, swipe, res(404, { error: 'authorization_not_found' }))).toBe('s:456');
    expect(notHereKey(reversals, swipe, res(409, { error: 'amount_exceeds_held' }))).toBeUndefined();
    const onTrip = req({}, ['s7', 't1']);
    expect(notHereKey(tripGet, onTrip, res(404, { error: 'trip_not_found' }))).toBe('s:s7');
    expect(notHereKey(tripPut, onTrip, res(404, { error: 'trip_not_found' }))).toBeUndefined();
    const tagged = res(200, { approved: false }, { notHere: 'c:stripe:ic_1' });
    expect(notHereKey(route('post', '/v1/processors/stripe/authorizations'), req({}), tagged)).toBe(
      'c:stripe:ic_1',
    );
  });

  it('rebuilds the path from the pattern and the parameters', () => {
    expect(pathOf(tripGet, ['s7', 't1'])).toBe('/v1/shoppers/s7/trips/t1');
    expect(pathOf(route('post', '/v1/shoppers/:shopper/trips/:trip/items/:item'), ['s', 't', 'milk'])).toBe(
      '/v1/shoppers/s/trips/t/items/milk',
    );
    expect(pathOf(native, [])).toBe('/v1/authorizations');
  });
});
