import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256, hexEqual, sha256, sha256Hex } from '../../src/auth/sha256.js';

describe('HmacSha256', () => {
  it('matches RFC 4231 test cases 1, 2 and 6 (a key longer than the block is hashed first)', () => {
    const case1 = new HmacSha256(Buffer.alloc(20, 0x0b)).hex('', 'Hi There');
    expect(case1).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
    const case2 = new HmacSha256('Jefe').hex('what do ya want ', 'for nothing?');
    expect(case2).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    const case6 = new HmacSha256(Buffer.alloc(131, 0xaa)).hex(
      'Test Using Larger Than Block-Size Key - ',
      'Hash Key First',
    );
    expect(case6).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it("equals node's createHmac for keys of 0-130 bytes, UTF-8 secrets and bodies past the Buffer pool", () => {
    const bodies = [
      Buffer.alloc(0),
      Buffer.from('{"amount_cents":1999}'),
      randomBytes(63),
      randomBytes(64),
      randomBytes(4096),
      randomBytes(70_000),
    ];
    for (let keyLength = 0; keyLength <= 130; keyLength += 13) {
      const key = randomBytes(keyLength);
      const h = new HmacSha256(key);
      for (const body of bodies) {
        // Twice: the instance reuses its outer block between calls.
        for (let round = 0; round < 2; round++) {
          const expected = createHmac('sha256', key).update('1700000000.').update(body).digest('hex');
          expect(h.hex('1700000000.', body)).toBe(expected);
        }
      }
    }
    const secret = 'whsec_ünïcødé_€';
    expect(new HmacSha256(secret).hex('t€.', '{"x":"é"}')).toBe(
      createHmac('sha256', secret).update('t€.').update('{"x":"é"}').digest('hex'),
    );
  });
});

describe('sha256', () => {
  it("equals node's createHash for strings and bytes", () => {
    for (const data of ['', 'abc', 'ü'.repeat(1000), randomBytes(100)]) {
      expect(sha256Hex(data)).toBe(createHash('sha256').update(data).digest('hex'));
      expect(sha256(data).equals(createHash('sha256').update(data).digest())).toBe(true);
    }
  });
});

describe('hexEqual', () => {
  it('is true only for equal strings of equal length', () => {
    const a = sha256Hex('a');
    expect(hexEqual(a, `${a}`)).toBe(true);
    expect(hexEqual(a, a.slice(0, 63))).toBe(false);
    expect(hexEqual(a, `${a.slice(0, 63)}${a[63] === '0' ? '1' : '0'}`)).toBe(false);
    expect(hexEqual(`${a[0] === '0' ? '1' : '0'}${a.slice(1)}`, a)).toBe(false);
    expect(hexEqual('', '')).toBe(true);
  });
});
