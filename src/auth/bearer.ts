// Trip API authentication (CONTRACT §3): "Authorization: Bearer <token>", tokens from
// config. Tokens are compared as SHA-256 digests with timingSafeEqual: equal-length
// buffers whatever the presented token, so neither content nor length leaks by timing.
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from './sha256.js';

/** Longer Authorization headers are refused before hashing. */
export const AUTHORIZATION_HEADER_LENGTH_MAX = 4096;

/** The token of "Bearer <token>" (scheme case-insensitive, spaces/tabs around); else null. */
function bearerToken(header: string): string | null {
  const trimmed = header.trim();
  if (trimmed.length < 7 || trimmed.slice(0, 6).toLowerCase() !== 'bearer') return null;
  const sep = trimmed.charCodeAt(6);
  if (sep !== 0x20 && sep !== 0x09) return null;
  const token = trimmed.slice(7).trim();
  if (token.length === 0 || /\s/.test(token)) return null;
  return token;
}

export function createBearerCheck(
  tokens: readonly string[],
): (authorizationHeader: string | undefined) => boolean {
  const digests = tokens.filter((t) => t.length > 0).map(sha256);
  return (authorizationHeader) => {
    if (authorizationHeader === undefined || authorizationHeader.length > AUTHORIZATION_HEADER_LENGTH_MAX) {
      return false;
    }
    const token = bearerToken(authorizationHeader);
    if (token === null) return false;
    const presented = sha256(token);
    let ok = false;
    for (const digest of digests) {
      // Non-short-circuit: compare against every configured token.
      ok = timingSafeEqual(presented, digest) || ok;
    }
    return ok;
  };
}
