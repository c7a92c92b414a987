// Region configuration (CONTRACT §6/§8), read with the rest of the config at boot
// (src/config/config.ts calls loadRegionConfig with its Reader) and frozen with it.
import type { Reader } from '../config/config.js';

export interface RegionConfig {
  /** This region's name; empty = one region, nothing is forwarded. */
  readonly region: string;
  /** The other regions: name -> base URL of that region's api (which serves the internal channel too). */
  readonly peers: ReadonlyMap<string, string>;
  /** Secrets of the inter-region channel, all accepted (rotation); the first one signs. */
  readonly secrets: readonly string[];
  /** How long a forwarded request waits for its home region before the fail-open policy answers. */
  readonly forwardTimeoutMs: number;
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const SECRET_CHARS_MIN = 32;

export function loadRegionConfig(r: Reader): RegionConfig {
  const problems = r.problems;
  const region = r.str('REGION', '');
  if (region !== '' && !NAME.test(region)) problems.push(`REGION must match ${NAME}, got "${region}"`);
  const peers = new Map<string, string>();
  for (const pair of r.list('REGION_PEERS')) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const url = pair.slice(eq + 1);
    if (eq < 1 || !NAME.test(name) || !isHttpUrl(url)) {
      problems.push(`each REGION_PEERS entry must be name=http(s)://host:port, got "${pair}"`);
    } else if (name === region || peers.has(name)) {
      problems.push(`REGION_PEERS names "${name}" twice or names this region`);
    } else peers.set(name, url.replace(/\/+$/, ''));
  }
  const secrets = r.list('REGION_SECRETS');
  for (const s of secrets)
    if (s.length < SECRET_CHARS_MIN)
      problems.push(`each REGION_SECRETS entry must have >= ${SECRET_CHARS_MIN} characters`);
  if (peers.size > 0 && region === '') problems.push("REGION_PEERS needs REGION (this region's name)");
  if (peers.size > 0 && secrets.length === 0)
    problems.push('REGION_PEERS needs REGION_SECRETS (the channel is authenticated)');
  return Object.freeze({
    region,
    peers,
    secrets: Object.freeze(secrets),
    forwardTimeoutMs: r.int('REGION_FORWARD_TIMEOUT_MS', 250, 10, 10_000),
  });
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
  } catch {
    return false;
  }
}
