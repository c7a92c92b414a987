// The directory's rules, with a real in-process store and a counting peer question:
// one question per key at a time, misses remembered briefly, "not here" forgets, and
// a home that no longer answers stays known (its shoppers fail open, never decline).
import { describe, expect, it } from 'vitest';
import { Directory, shopperKey } from '../../src/regions/directory.js';
import { mapStore } from './seamParts.js';

describe('Directory', () => {
  it('asks the peers once for concurrent lookups and keeps the answer region-wide', async () => {
    let asked = 0;
    const store = mapStore();
    const d = new Directory(async () => {
      asked++;
      return { region: 'us' };
    }, store);
    const key = shopperKey('s1');
    const homes = await Promise.all([d.lookup(key), d.lookup(key), d.lookup(key)]);
    expect(homes).toEqual([{ region: 'us' }, { region: 'us' }, { region: 'us' }]);
    expect(asked).toBe(1);
    expect(store.map.get(key)).toEqual({ region: 'us' });
    // Another pod of the region reads the region's copy without asking.
    const other = new Directory(async () => {
      asked++;
      return undefined;
    }, store);
    expect(await other.lookup(key)).toEqual({ region: 'us' });
    expect(asked).toBe(1);
  });

  it('remembers that nobody claims a key, and forgets a home that said "not here"', async () => {
    let asked = 0;
    const d = new Directory(async () => {
      asked++;
      return undefined;
    }, mapStore());
    expect(await d.lookup(shopperKey('nobody'))).toBeUndefined();
    expect(await d.lookup(shopperKey('nobody'))).toBeUndefined();
    expect(asked).toBe(1);
    await d.learn(shopperKey('s2'), { region: 'eu' });
    expect(await d.lookup(shopperKey('s2'))).toEqual({ region: 'eu' });
    await d.forget(shopperKey('s2'));
    expect(d.size()).toBe(0);
  });
});
