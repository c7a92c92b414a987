import { expect, test } from 'vitest';
import { RecentKeys } from '../../src/decisions/recentKeys.js';

test('reports a key decided for another shopper, within its ttl and bound', () => {
  const keys = new RecentKeys(2, 1000);
  keys.remember('t:a', { shopperId: 's1', authorizationId: 'auth_1' }, 0);
  expect(keys.conflict('t:a', 's1', 10)).toBeUndefined();
  expect(keys.conflict('t:a', 's2', 10)).toEqual({ shopperId: 's1', authorizationId: 'auth_1' });
  expect(keys.conflict('t:a', 's2', 1001)).toBeUndefined(); // expired
  keys.remember('t:b', { shopperId: 's1', authorizationId: 'auth_2' }, 0);
  keys.remember('t:c', { shopperId: 's1', authorizationId: 'auth_3' }, 0);
  keys.remember('t:d', { shopperId: 's1', authorizationId: 'auth_4' }, 0); // evicts the oldest (t:b)
  expect(keys.conflict('t:b', 's9', 1)).toBeUndefined();
  expect(keys.conflict('t:d', 's9', 1)?.authorizationId).toBe('auth_4');
  expect(RecentKeys.tracks('d:abc')).toBe(false);
  expect(RecentKeys.tracks('t:abc')).toBe(true);
});
