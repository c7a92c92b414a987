// HTTP Basic (RFC 7617) against configured user:password pairs, compared as SHA-256
// digests with timingSafeEqual against every pair (no early exit): neither the content
// nor the length of a guess leaks by timing.
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../../auth/sha256.js';
import { AUTHORIZATION_HEADER_LENGTH_MAX } from '../../auth/bearer.js';

export function createBasicCheck(pairs: readonly string[]): (header: string) => boolean {
  const digests = pairs.map((p) => sha256(p));
  return (header) => {
    if (header.length === 0 || header.length > AUTHORIZATION_HEADER_LENGTH_MAX) return false;
    const trimmed = header.trim();
    if (trimmed.length < 7 || trimmed.slice(0, 6).toLowerCase() !== 'basic ') return false;
    const encoded = trimmed.slice(6).trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return false;
    const presented = sha256(Buffer.from(encoded, 'base64').toString('utf8'));
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(presented, d) || ok;
    return ok;
  };
}
