import { describe, expect, test } from 'vitest';
import { uuidv7, uuidv7Hex } from '../../src/domain/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  test('canonical form with version 7 and the RFC variant', () => {
    for (let i = 0; i < 2000; i++) expect(uuidv7()).toMatch(V7);
  });

  test('the first 48 bits are the millisecond given, big-endian', () => {
    for (const ms of [0, 1, 0xffff_ffff, 0x1_0000_0000, 1_700_000_000_123, 2 ** 48 - 1]) {
      const id = uuidv7(ms);
      expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
    }
  });

  test('ids of later milliseconds sort after earlier ones (b-tree locality)', () => {
    const ids = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_256, 1_700_000_065_536].map((ms) =>
      uuidv7(ms),
    );
    expect([...ids].sort()).toEqual(ids);
  });

  test('no repeats in 200,000 ids of one millisecond (the random part refills its pool)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(uuidv7(1_700_000_000_000));
    expect(seen.size).toBe(200_000);
  });

  test('the hex form is the same 128 bits without dashes', () => {
    const hex = uuidv7Hex(1_700_000_000_000);
    expect(hex).toMatch(/^[0-9a-f]{32}$/);
    expect(hex[12]).toBe('7');
    expect(Number.parseInt(hex.slice(0, 12), 16)).toBe(1_700_000_000_000);
  });
});
