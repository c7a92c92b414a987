import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { partitionOf, Keys } from '../../src/redis/keys.js';
import { SCRIPTS } from '../../src/redis/scripts.generated.js';

describe('Lua scripts', () => {
  const files = readdirSync('lua').filter((f) => f.endsWith('.lua'));

  test('every lua/ script is built, key count from its name, includes inlined', () => {
    expect(Object.keys(SCRIPTS).sort()).toEqual(files.map((f) => f.replace(/-\d+\.lua$/, '')).sort());
    for (const file of files) {
      const [, name, keys] = /^(\w+)-(\d+)\.lua$/.exec(file) ?? [];
      const built = SCRIPTS[name as keyof typeof SCRIPTS];
      expect(built.numberOfKeys).toBe(Number(keys));
      expect(built.lua).not.toMatch(/@include/);
      expect(built.version).toMatch(/^[0-9a-f]{8}$/);
    }
  });

  test('each script opens with a header naming its KEYS, ARGV and output', () => {
    for (const file of files) {
      const text = readFileSync(`lua/${file}`, 'utf8');
      const n = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
      expect(text.startsWith('--[[')).toBe(true);
      for (let k = 1; k <= n; k++) expect(text).toContain(`KEYS[${k}]`);
      expect(text).toMatch(/Output:/);
      expect(text).not.toMatch(/redis\.error_reply|error\(/); // coded results, never free-text errors
    }
  });
});

describe('keys and partitions', () => {
  test('crc32 partition, hash tag per partition', () => {
    expect(partitionOf('456', 64)).toBe(2_980_627_313 % 64);
    const keys = new Keys('sa', 64);
    const p = keys.partition('456');
    expect(keys.shopper(p, '456')).toBe(`sa:{p${p}}:shopper:456`);
    expect(keys.trip(p, '456', 't1')).toBe(`sa:{p${p}}:trip:456:t1`);
    expect(keys.wal(p)).toBe(`sa:{p${p}}:wal`);
    expect(keys.allWals()).toHaveLength(64);
    // Ids may contain ':' — the reversal key must not let (X, r:1) and (X:r, 1) collide.
    expect(keys.reversal(p, 'X', 'r:1')).not.toBe(keys.reversal(p, 'X:r', '1'));
    expect(keys.reversal(p, 'X', 'r:1')).toMatch(new RegExp(`^sa:\\{p${p}\\}:rev:[0-9a-f]{40}$`));
  });

  test('partitions spread evenly enough', () => {
    const counts = new Array(64).fill(0);
    for (let i = 0; i < 64_000; i++) counts[partitionOf(String(i), 64)]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });
});
