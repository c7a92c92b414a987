import { createHash, createHmac } from 'node:crypto';

export function hmac(algorithm, secret, data, encoding) {
  return createHmac(algorithm, secret).update(data).digest(encoding);
}

export function sha256(data, encoding) {
  return createHash('sha256').update(data).digest(encoding);
}

export default { hmac, sha256 };
