// Time-ordered identifiers (UUID version 7, RFC 9562): 48 bits of Unix ms,
// then 74 random bits. Event ids and authorization ids are primary keys of
// Postgres b-trees (processed_events, authorizations, ledger_postings,
// ledger_entries); random v4 keys land on a random leaf page each, so a
// write-behind batch dirties pages all over every index (and each one's first
// change after a checkpoint is a full-page image in the WAL). v7 keys of
// events written together sit together: inserts touch the right edge.
// Ordering is only by millisecond (not monotonic inside one ms): nothing
// relies on ids being sortable, only on their locality.
import { randomFillSync } from 'node:crypto';

// Hex digits as ASCII codes, written into one scratch buffer and read out as a single
// flat string: one allocation per id (string concatenation made a 20-piece rope, flattened
// again when the id is written to Redis).
const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const scratch = Buffer.alloc(36);

// Random bytes drawn from the OS in blocks, 10 bytes per id.
const POOL_IDS = 512;
const pool = Buffer.alloc(10 * POOL_IDS);
let poolOffset = pool.length;

/** Writes one byte as two hex digits at `at`; returns the offset after them. */
function put(byte: number, at: number): number {
  scratch[at] = DIGITS[byte >>> 4] as number;
  scratch[at + 1] = DIGITS[byte & 0x0f] as number;
  return at + 2;
}

function dash(at: number, dashes: boolean): number {
  if (!dashes) return at;
  scratch[at] = 0x2d;
  return at + 1;
}

function hex(ms: number, dashes: boolean): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 10;
  return layout(ms, dashes, pool, r);
}

/** The UUIDv7 layout of `ms` and the 10 bytes of `bits` from `r` (74 of their bits used). */
function layout(ms: number, dashes: boolean, bits: Buffer, r: number): string {
  // 48-bit timestamp: high 16 bits, then low 32 bits (no float rounding: ms < 2^53).
  const hi = Math.floor(ms / 0x1_0000_0000);
  const lo = ms >>> 0;
  let at = put((hi >>> 8) & 0xff, 0);
  at = put(hi & 0xff, at);
  at = put(lo >>> 24, at);
  at = put((lo >>> 16) & 0xff, at);
  at = dash(at, dashes);
  at = put((lo >>> 8) & 0xff, at);
  at = put(lo & 0xff, at);
  at = dash(at, dashes);
  at = put(0x70 | ((bits[r] as number) & 0x0f), at); // version 7
  at = put(bits[r + 1] as number, at);
  at = dash(at, dashes);
  at = put(0x80 | ((bits[r + 2] as number) & 0x3f), at); // variant 10
  at = put(bits[r + 3] as number, at);
  at = dash(at, dashes);
  for (let i = 4; i < 10; i++) at = put(bits[r + i] as number, at);
  return scratch.toString('latin1', 0, at);
}

/** A UUIDv7 in the canonical 8-4-4-4-12 form (WAL event ids). */
export function uuidv7(ms: number = Date.now()): string {
  return hex(ms, true);
}

/** The same 128 bits as 32 hex digits, no dashes (authorization ids: `auth_<hex>`). */
export function uuidv7Hex(ms: number = Date.now()): string {
  return hex(ms, false);
}

/**
 * 32 hex digits in the layout of uuidv7Hex, its 74 "random" bits taken from `bits` (at least 10
 * bytes, e.g. a hash): an id derived from something both sides of a channel know.
 */
export function uuidv7HexFrom(ms: number, bits: Buffer): string {
  if (bits.length < 10) throw new Error('uuidv7HexFrom needs 10 bytes');
  return layout(ms, false, bits, 0);
}
