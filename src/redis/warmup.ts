// Readiness (docs/failopen.md "Readiness"): a pod is ready only when it can
// decide at full speed. A cold pod's first swipes otherwise pay for slot
// discovery, a TCP/TLS connection per master and a NOSCRIPT -> EVAL round trip
// each, and can pass the 25 ms deadline on a healthy cluster (issue 19: two of
// nine concurrent swipes failed open that way). Warm-up, per client:
// - every master (Cluster: from the slot map; standalone: the one server):
//   SCRIPT EXISTS for every script, SCRIPT LOAD for those missing (a failover
//   or resharding brings masters that never saw them);
// - a PING through each client to each master (connections open and warm).
// Run at boot and again every READY_RECHECK_MS and on topology changes.
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './client.js';
import { SCRIPTS } from './scripts.generated.js';
import { EvalshaFrames } from './frame.js';

/** PINGs per master per client: enough to open the connection and take the first slow round trips. */
const WARM_PINGS = 3;

const ALL = Object.values(SCRIPTS).map((s) => ({
  lua: s.lua,
  sha: new EvalshaFrames(s.lua, s.numberOfKeys).sha,
}));

export interface WarmupReport {
  readonly masters: number;
  /** Scripts that were missing on some master and were loaded now. */
  readonly loaded: number;
}

function mastersOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

async function loadScripts(node: Redis): Promise<number> {
  const exists = (await node.call('SCRIPT', 'EXISTS', ...ALL.map((s) => s.sha))) as number[];
  let loaded = 0;
  for (let i = 0; i < ALL.length; i++) {
    if (exists[i] === 1) continue;
    const s = ALL[i] as { lua: string; sha: string };
    const sha = await node.call('SCRIPT', 'LOAD', s.lua);
    if (sha !== s.sha) throw new Error(`SCRIPT LOAD returned ${String(sha)}, expected ${s.sha}`);
    loaded++;
  }
  return loaded;
}

/** Loads missing scripts on every master and warms each client's connection to it; throws when it cannot. */
export async function warmUp(clients: readonly RedisClient[]): Promise<WarmupReport> {
  const first = clients[0];
  if (first === undefined) throw new Error('warmUp: no client');
  const masters = mastersOf(first);
  if (masters.length === 0) throw new Error('no Redis master known yet (slot map empty)');
  let loaded = 0;
  for (const m of masters) loaded += await loadScripts(m);
  for (const c of clients) {
    for (const m of mastersOf(c)) for (let i = 0; i < WARM_PINGS; i++) await m.ping();
  }
  return { masters: masters.length, loaded };
}
