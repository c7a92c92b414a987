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

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const h = (byte: number): string => HEX[byte] as string;

// Random bytes drawn from the OS in blocks, 10 bytes per id.
const POOL_IDS = 512;
const pool = Buffer.alloc(10 * POOL_IDS);
let poolOffset = pool.length;

function hex(ms: number, dashes: boolean): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 10;
  // 48-bit timestamp: high 16 bits, then low 32 bits (no float rounding: ms < 2^53).
  const hi = Math.floor(ms / 0x1_0000_0000);
  const lo = ms >>> 0;
  const sep = dashes ? '-' : '';
  return (
    h((hi >>> 8) & 0xff) +
    h(hi & 0xff) +
    h(lo >>> 24) +
    h((lo >>> 16) & 0xff) +
    sep +
    h((lo >>> 8) & 0xff) +
    h(lo & 0xff) +
    sep +
    h(0x70 | ((pool[r] as number) & 0x0f)) + // version 7
    h(pool[r + 1] as number) +
    sep +
    h(0x80 | ((pool[r + 2] as number) & 0x3f)) + // variant 10
    h(pool[r + 3] as number) +
    sep +
    h(pool[r + 4] as number) +
    h(pool[r + 5] as number) +
    h(pool[r + 6] as number) +
    h(pool[r + 7] as number) +
    h(pool[r + 8] as number) +
    h(pool[r + 9] as number)
  );
}

/** A UUIDv7 in the canonical 8-4-4-4-12 form (WAL event ids). */
export function uuidv7(ms: number = Date.now()): string {
  return hex(ms, true);
}

/** The same 128 bits as 32 hex digits, no dashes (authorization ids: `auth_<hex>`). */
export function uuidv7Hex(ms: number = Date.now()): string {
  return hex(ms, false);
}
