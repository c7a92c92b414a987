import { describe, expect, it } from 'vitest';
import { decodeUtf8Strict, isObject, JsonNumber, type JsonValue, parseJson } from '../../src/domain/json.js';

function value(text: string): JsonValue {
  const r = parseJson(text);
  if (!r.ok) throw new Error(`expected ok for ${text}: ${r.message}`);
  return r.value;
}

function message(text: string, limits?: Parameters<typeof parseJson>[1]): string {
  const r = parseJson(text, limits);
  if (r.ok) throw new Error(`expected error for ${text}`);
  return r.message;
}

describe('parseJson: values', () => {
  it('keeps number literals exactly as written', () => {
    const v = value('{"a":19.999999999999999999,"b":100.0,"c":-3,"d":1e5,"e":0,"f":-0.5E-2}');
    expect(isObject(v)).toBe(true);
    if (!isObject(v)) return;
    expect(v['a']).toBeInstanceOf(JsonNumber);
    expect((v['a'] as JsonNumber).raw).toBe('19.999999999999999999');
    expect((v['b'] as JsonNumber).raw).toBe('100.0');
    expect((v['c'] as JsonNumber).raw).toBe('-3');
    expect((v['d'] as JsonNumber).raw).toBe('1e5');
    expect((v['e'] as JsonNumber).raw).toBe('0');
    expect((v['f'] as JsonNumber).raw).toBe('-0.5E-2');
  });

  it('parses literals, arrays, nested objects and whitespace around', () => {
    const v = value(' \t\r\n{"t":true,"f":false,"n":null,"arr":[1,"x",[],{}],"o":{"k":"v"}} \n');
    expect(JSON.parse(JSON.stringify(v, (_k, x) => (x instanceof JsonNumber ? `#${x.raw}` : x)))).toEqual({
      t: true,
      f: false,
      n: null,
      arr: ['#1', 'x', [], {}],
      o: { k: 'v' },
    });
    expect(value('"top"')).toBe('top');
    expect(value('true')).toBe(true);
    expect(value('null')).toBe(null);
    expect((value('42') as JsonNumber).raw).toBe('42');
  });

  it('decodes escapes including surrogate pairs', () => {
    expect(value('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"')).toBe('a"b\\c/d\b\f\n\r\t');
    expect(value('"\\u00e9\\u20AC"')).toBe('é€');
    expect(value('"\\ud83d\\ude00 ok"')).toBe('😀 ok');
    expect(value('"raw 😀 é"')).toBe('raw 😀 é');
  });

  it('stores __proto__ as an own data property without touching prototypes', () => {
    const v = value('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"x":1}}}');
    expect(isObject(v)).toBe(true);
    if (!isObject(v)) return;
    expect(Object.keys(v)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(v)).toBe(null);
    const own = Object.getOwnPropertyDescriptor(v, '__proto__');
    expect(own?.writable && own.enumerable).toBe(true); // a data property, not the accessor
    const proto = own?.value as JsonValue;
    expect(isObject(proto) && proto['polluted']).toBe('yes');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect((v as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('isObject distinguishes objects from arrays, numbers and null', () => {
    expect(isObject(value('{}'))).toBe(true);
    expect(isObject(value('[]'))).toBe(false);
    expect(isObject(value('1'))).toBe(false);
    expect(isObject(value('null'))).toBe(false);
    expect(isObject(undefined)).toBe(false);
  });
});

describe('parseJson: rejects', () => {
  const bad: [string, string][] = [
    ['', 'empty JSON document'],
    ['   ', 'empty JSON document'],
    ['{"a":1,}', 'unexpected character "}" at position 7'],
    ['[1,2,]', 'unexpected character "]" at position 5'],
    ['[1 2]', 'unexpected character "2" at position 3'],
    ['{"a":1}/*c*/', 'unexpected data after the JSON value at position 7'],
    ['{"a":1} x', 'unexpected data after the JSON value at position 8'],
    ['// c\n{}', 'unexpected character "/" at position 0'],
    ['{"a":01}', 'number with a leading zero at position 5'],
    ['-01', 'number with a leading zero at position 0'],
    ['{"a":NaN}', 'unexpected character "N" at position 5'],
    ['Infinity', 'unexpected character "I" at position 0'],
    ['-Infinity', 'invalid number at position 1'],
    ['1.', 'invalid number: digits must follow "." at position 2'],
    ['.5', 'unexpected character "." at position 0'],
    ['1e', 'invalid number: digits must follow the exponent at position 2'],
    ['+1', 'unexpected character "+" at position 0'],
    ['0x10', 'unexpected data after the JSON value at position 1'],
    ["{'a':1}", 'unexpected character "\'" at position 1'],
    ['{a:1}', 'unexpected character "a" at position 1'],
    ['"tab\there"', 'control character in string at position 4'],
    ['"nl\n"', 'control character in string at position 3'],
    ['"abc', 'unterminated string at position 4'],
    ['"\\x"', 'invalid escape in string at position 1'],
    ['"\\u12g4"', 'invalid \\u escape in string at position 5'],
    ['"\\ud800"', 'lone surrogate escape in string at position 7'],
    ['"\\udc00"', 'lone surrogate escape in string at position 7'],
    ['"\\ud800\\u0041"', 'lone surrogate escape in string at position 13'],
    ['tru', 'unexpected character "t" at position 0'],
    ['nul', 'unexpected character "n" at position 0'],
    ['{"a" 1}', 'unexpected character "1" at position 5'],
    ['{"a":}', 'unexpected character "}" at position 5'],
    ['[', 'unexpected end of JSON input'],
    ['{"a":1', 'unexpected end of JSON input'],
    ['\u00a0{}', 'unexpected character "\u00a0" at position 0'],
  ];
  it.each(bad)('%j -> %s', (text, expected) => {
    expect(message(text)).toBe(expected);
  });

  it('rejects raw lone surrogates in a caller-built string', () => {
    expect(message('"a\ud800b"')).toBe('lone surrogate in string at position 2');
    expect(message('"a\udc00"')).toBe('lone surrogate in string at position 2');
  });

  it('rejects duplicate keys, naming the key', () => {
    expect(message('{"amount":1,"x":2,"amount":3}')).toBe('duplicate key "amount" at position 18');
    expect(message('{"__proto__":1,"__proto__":2}')).toBe('duplicate key "__proto__" at position 15');
    expect(message('{"o":{"a":1,"a":1}}')).toBe('duplicate key "a" at position 12');
    // Same key in different objects is fine.
    expect(parseJson('{"a":{"a":1},"b":{"a":2}}').ok).toBe(true);
  });

  it('never echoes more than 40 characters of input', () => {
    const longKey = 'k'.repeat(500);
    const m = message(`{"${longKey}":1,"${longKey}":2}`);
    expect(m).toBe(`duplicate key "${'k'.repeat(37)}..." at position 506`);
    expect(m.length).toBeLessThan(80);
    expect(message('\u{1F600}x').length).toBeLessThan(40);
  });

  it('rejects number literals longer than 64 characters', () => {
    expect(parseJson('1'.repeat(64)).ok).toBe(true);
    expect(message('1'.repeat(65))).toBe('number longer than 64 characters at position 0');
    expect(message(`[0.${'9'.repeat(70)}]`)).toBe('number longer than 64 characters at position 1');
  });
});

describe('parseJson: limits', () => {
  it('depthMax (default 32)', () => {
    expect(parseJson('['.repeat(32) + ']'.repeat(32)).ok).toBe(true);
    expect(message('['.repeat(33) + ']'.repeat(33))).toBe('nesting deeper than 32 at position 32');
    expect(message('{"a":{"b":{}}}', { depthMax: 2 })).toBe('nesting deeper than 2 at position 10');
    expect(message('['.repeat(100_000))).toBe('nesting deeper than 32 at position 32');
  });

  it('keysMax counts object members plus array elements across the document', () => {
    expect(parseJson('{"a":[1,2],"b":3}', { keysMax: 4 }).ok).toBe(true);
    expect(message('{"a":[1,2],"b":3}', { keysMax: 3 })).toBe('more than 3 keys and elements at position 14');
    const big = `[${new Array(10_001).fill('0').join(',')}]`;
    expect(message(big)).toBe('more than 10000 keys and elements at position 20001');
  });

  it('stringLengthMax applies to values and keys, counting decoded characters', () => {
    expect(parseJson('"abcd"', { stringLengthMax: 4 }).ok).toBe(true);
    expect(parseJson('"\\u0061\\u0062cd"', { stringLengthMax: 4 }).ok).toBe(true);
    expect(message('"abcde"', { stringLengthMax: 4 })).toBe('string longer than 4 characters at position 0');
    expect(message('{"abcde":1}', { stringLengthMax: 4 })).toBe(
      'string longer than 4 characters at position 1',
    );
    expect(parseJson(`"${'x'.repeat(65_536)}"`).ok).toBe(true);
    expect(parseJson(`"${'x'.repeat(65_537)}"`).ok).toBe(false);
  });
});

describe('decodeUtf8Strict', () => {
  it('decodes valid UTF-8 and drops a BOM', () => {
    expect(decodeUtf8Strict(new TextEncoder().encode('{"n":"Café 😀"}'))).toBe('{"n":"Café 😀"}');
    expect(decodeUtf8Strict(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]))).toBe('{}');
    expect(decodeUtf8Strict(new Uint8Array([]))).toBe('');
  });

  it('returns null for invalid sequences', () => {
    expect(decodeUtf8Strict(new Uint8Array([0x22, 0xff, 0x22]))).toBeNull(); // invalid byte
    expect(decodeUtf8Strict(new Uint8Array([0xc3]))).toBeNull(); // truncated
    expect(decodeUtf8Strict(new Uint8Array([0xc0, 0xaf]))).toBeNull(); // overlong "/"
    expect(decodeUtf8Strict(new Uint8Array([0xed, 0xa0, 0x80]))).toBeNull(); // encoded surrogate
  });
});
