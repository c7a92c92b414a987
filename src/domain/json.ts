// Strict, exact JSON parser (RFC 8259) for request bodies.
//
// Why not JSON.parse: it turns every number into a double, so `19.999999999999999999`
// silently becomes 20 and money rules (CONTRACT §1) cannot be checked. Here a number
// stays the literal as written (JsonNumber.raw) and src/domain/money.ts parses it
// exactly. The parser also refuses what JSON.parse lets through and a processor never
// sends on purpose: duplicate keys (which one wins is ambiguous between systems),
// lone surrogates, unbounded nesting/size.
//
// Objects are created with Object.create(null): `__proto__`, `constructor` etc. are
// plain own data properties, never prototype changes.
//
// Hot path: one pass with charCodeAt, no regex, no per-char allocation; strings
// without escapes are a single slice.

/** A JSON number kept exactly as written, e.g. "100.0", "-3", "1e5". */
export class JsonNumber {
  constructor(readonly raw: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [k: string]: JsonValue };
export type JsonParseResult = { ok: true; value: JsonValue } | { ok: false; message: string };

export interface JsonLimits {
  /** Nesting of arrays/objects; the top-level container is depth 1. */
  depthMax?: number;
  /** Total object members plus array elements in the whole document. */
  keysMax?: number;
  /** Decoded length (UTF-16 units) of any string or key. */
  stringLengthMax?: number;
}

export const JSON_DEPTH_MAX_DEFAULT = 32;
export const JSON_KEYS_MAX_DEFAULT = 10_000;
export const JSON_STRING_LENGTH_MAX_DEFAULT = 65_536;
/** Longer literals are never money or ids; refusing them bounds later parsing work. */
export const JSON_NUMBER_LENGTH_MAX = 64;
/** Error messages never echo more input than this. */
const ECHO_CHARS_MAX = 40;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Decodes UTF-8, refusing invalid sequences (null). A leading BOM is dropped. */
export function decodeUtf8Strict(bytes: Uint8Array): string | null {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return null;
  }
}

export function isObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/** Thrown only inside this module and always caught by parseJson. */
class JsonSyntaxError extends Error {}

// Character codes used by the scanner.
const C_TAB = 0x09;
const C_LF = 0x0a;
const C_CR = 0x0d;
const C_SPACE = 0x20;
const C_QUOTE = 0x22;
const C_PLUS = 0x2b;
const C_COMMA = 0x2c;
const C_MINUS = 0x2d;
const C_DOT = 0x2e;
const C_0 = 0x30;
const C_9 = 0x39;
const C_COLON = 0x3a;
const C_E_UPPER = 0x45;
const C_LBRACKET = 0x5b;
const C_BACKSLASH = 0x5c;
const C_RBRACKET = 0x5d;
const C_E_LOWER = 0x65;
const C_F = 0x66;
const C_N = 0x6e;
const C_T = 0x74;
const C_U = 0x75;
const C_LBRACE = 0x7b;
const C_RBRACE = 0x7d;

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Short, quoted echo of what was found, for messages. */
function echo(s: string): string {
  const cut = s.length > ECHO_CHARS_MAX ? `${s.slice(0, ECHO_CHARS_MAX - 3)}...` : s;
  return JSON.stringify(cut);
}

class Parser {
  private pos = 0;
  private depth = 0;
  private keys = 0;

  constructor(
    private readonly text: string,
    private readonly depthMax: number,
    private readonly keysMax: number,
    private readonly stringLengthMax: number,
  ) {}

  parseDocument(): JsonValue {
    this.skipWhitespace();
    if (this.pos >= this.text.length) throw new JsonSyntaxError('empty JSON document');
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  private fail(what: string): never {
    throw new JsonSyntaxError(`${what} at position ${this.pos}`);
  }

  private failUnexpected(): never {
    if (this.pos >= this.text.length) throw new JsonSyntaxError('unexpected end of JSON input');
    const cp = this.text.codePointAt(this.pos) ?? 0;
    this.fail(`unexpected character ${echo(String.fromCodePoint(cp))}`);
  }

  private skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c !== C_SPACE && c !== C_LF && c !== C_CR && c !== C_TAB) break;
      pos++;
    }
    this.pos = pos;
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    if (c === C_LBRACE) return this.parseObject();
    if (c === C_LBRACKET) return this.parseArray();
    if (c === C_QUOTE) return this.parseString();
    if (c === C_MINUS || isDigit(c)) return this.parseNumber();
    if (c === C_T) return this.parseLiteral('true', true);
    if (c === C_F) return this.parseLiteral('false', false);
    if (c === C_N) return this.parseLiteral('null', null);
    return this.failUnexpected();
  }

  private parseLiteral<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.failUnexpected();
    this.pos += word.length;
    return value;
  }

  private enter(): void {
    this.depth++;
    if (this.depth > this.depthMax) this.fail(`nesting deeper than ${this.depthMax}`);
  }

  private countKey(): void {
    this.keys++;
    if (this.keys > this.keysMax) this.fail(`more than ${this.keysMax} keys and elements`);
  }

  private parseObject(): { [k: string]: JsonValue } {
    this.enter();
    this.pos++; // '{'
    const out: { [k: string]: JsonValue } = Object.create(null);
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === C_RBRACE) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== C_QUOTE) this.failUnexpected();
      const keyStart = this.pos;
      const key = this.parseString();
      // Own-property check on a null-prototype object: "__proto__" is just a key here.
      if (Object.hasOwn(out, key)) {
        this.pos = keyStart;
        this.fail(`duplicate key ${echo(key)}`);
      }
      this.countKey();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== C_COLON) this.failUnexpected();
      this.pos++;
      this.skipWhitespace();
      out[key] = this.parseValue();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === C_RBRACE) break;
      if (c !== C_COMMA) this.failUnexpected();
      this.pos++;
      this.skipWhitespace(); // then a key must follow: a trailing comma fails above
    }
    this.pos++; // '}'
    this.depth--;
    return out;
  }

  private parseArray(): JsonValue[] {
    this.enter();
    this.pos++; // '['
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === C_RBRACKET) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      this.countKey();
      out.push(this.parseValue());
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === C_RBRACKET) break;
      if (c !== C_COMMA) this.failUnexpected();
      this.pos++;
      this.skipWhitespace();
      // A trailing comma reaches parseValue with ']' and fails there.
    }
    this.pos++; // ']'
    this.depth--;
    return out;
  }

  /** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? kept as written. */
  private parseNumber(): JsonNumber {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    if (text.charCodeAt(pos) === C_MINUS) pos++;
    let c = text.charCodeAt(pos);
    if (c === C_0) {
      pos++;
      if (isDigit(text.charCodeAt(pos))) {
        this.pos = start;
        this.fail('number with a leading zero');
      }
    } else if (isDigit(c)) {
      while (isDigit(text.charCodeAt(pos))) pos++;
    } else {
      this.pos = pos;
      this.fail('invalid number');
    }
    if (text.charCodeAt(pos) === C_DOT) {
      pos++;
      if (!isDigit(text.charCodeAt(pos))) {
        this.pos = pos;
        this.fail('invalid number: digits must follow "."');
      }
      while (isDigit(text.charCodeAt(pos))) pos++;
    }
    c = text.charCodeAt(pos);
    if (c === C_E_LOWER || c === C_E_UPPER) {
      pos++;
      c = text.charCodeAt(pos);
      if (c === C_PLUS || c === C_MINUS) pos++;
      if (!isDigit(text.charCodeAt(pos))) {
        this.pos = pos;
        this.fail('invalid number: digits must follow the exponent');
      }
      while (isDigit(text.charCodeAt(pos))) pos++;
    }
    if (pos - start > JSON_NUMBER_LENGTH_MAX) {
      this.pos = start;
      this.fail(`number longer than ${JSON_NUMBER_LENGTH_MAX} characters`);
    }
    this.pos = pos;
    return new JsonNumber(text.slice(start, pos));
  }

  /** At the opening quote. Fast path: no escapes means one slice. */
  private parseString(): string {
    const text = this.text;
    let pos = this.pos + 1;
    let chunkStart = pos;
    let out = '';
    for (;;) {
      if (pos >= text.length) {
        this.pos = pos;
        this.fail('unterminated string');
      }
      const c = text.charCodeAt(pos);
      if (c === C_QUOTE) break;
      if (c < 0x20) {
        this.pos = pos;
        this.fail('control character in string');
      }
      if (c === C_BACKSLASH) {
        out += text.slice(chunkStart, pos);
        this.pos = pos;
        out += this.parseEscape();
        pos = this.pos;
        chunkStart = pos;
        this.checkStringLength(out.length);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw surrogates only reach us if the caller built the string itself.
        const next = text.charCodeAt(pos + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
          this.pos = pos;
          this.fail('lone surrogate in string');
        }
        pos += 2;
        continue;
      }
      pos++;
    }
    out += text.slice(chunkStart, pos);
    this.checkStringLength(out.length);
    this.pos = pos + 1;
    return out;
  }

  private checkStringLength(length: number): void {
    if (length > this.stringLengthMax) this.fail(`string longer than ${this.stringLengthMax} characters`);
  }

  /** At the backslash; leaves pos after the escape. */
  private parseEscape(): string {
    const c = this.text.charCodeAt(this.pos + 1);
    this.pos += 2;
    switch (c) {
      case C_QUOTE:
        return '"';
      case C_BACKSLASH:
        return '\\';
      case 0x2f:
        return '/';
      case 0x62:
        return '\b';
      case C_F:
        return '\f';
      case C_N:
        return '\n';
      case 0x72:
        return '\r';
      case C_T:
        return '\t';
      case C_U:
        return this.parseUnicodeEscape();
      default:
        this.pos -= 2;
        return this.fail('invalid escape in string');
    }
  }

  /** After "\u". A surrogate must come as a valid high+low pair of escapes. */
  private parseUnicodeEscape(): string {
    const unit = this.readHex4();
    if (unit < 0xd800 || unit > 0xdfff) return String.fromCharCode(unit);
    if (unit > 0xdbff) this.fail('lone surrogate escape in string');
    const text = this.text;
    if (text.charCodeAt(this.pos) !== C_BACKSLASH || text.charCodeAt(this.pos + 1) !== C_U) {
      this.fail('lone surrogate escape in string');
    }
    this.pos += 2;
    const low = this.readHex4();
    if (low < 0xdc00 || low > 0xdfff) this.fail('lone surrogate escape in string');
    return String.fromCharCode(unit, low);
  }

  private readHex4(): number {
    const text = this.text;
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const h = hexValue(text.charCodeAt(this.pos + i));
      if (h < 0) {
        this.pos += i;
        this.fail('invalid \\u escape in string');
      }
      value = value * 16 + h;
    }
    this.pos += 4;
    return value;
  }
}

export function parseJson(text: string, limits?: JsonLimits): JsonParseResult {
  const depthMax = limits?.depthMax ?? JSON_DEPTH_MAX_DEFAULT;
  const keysMax = limits?.keysMax ?? JSON_KEYS_MAX_DEFAULT;
  const stringLengthMax = limits?.stringLengthMax ?? JSON_STRING_LENGTH_MAX_DEFAULT;
  if (!(Number.isSafeInteger(depthMax) && depthMax >= 1 && depthMax <= 1000)) {
    throw new Error('parseJson: depthMax must be an integer in 1..1000');
  }
  if (!(Number.isSafeInteger(keysMax) && keysMax >= 0)) throw new Error('parseJson: bad keysMax');
  if (!(Number.isSafeInteger(stringLengthMax) && stringLengthMax >= 0)) {
    throw new Error('parseJson: bad stringLengthMax');
  }
  try {
    const value = new Parser(text, depthMax, keysMax, stringLengthMax).parseDocument();
    return { ok: true, value };
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { ok: false, message: e.message };
    throw e;
  }
}
