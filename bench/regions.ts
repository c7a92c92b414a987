// Forwarded decisions in the bench (CONTRACT §8, docs/regions.md): two regions (two api
// processes, each its own key prefix on the bench Redis), region y holding the shoppers, the
// link from x to y through a TCP proxy in this process that adds LINK_DELAY_MS each way.
// The same open-loop swipe load is sent to y (local decisions) and then to x (forwarded to
// y): the two p99s side by side, in one run (BENCHMARKS.md "Forwarded decisions").
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { createConnection, createServer, type Socket } from 'node:net';
import type { Proc } from './procs.js';
import { benchShoppers, SECRET } from './workload.js';

export const LINK_DELAY_MS = 40;
const RATE_PER_S = 100;
const PHASE_S = 8;
const SHOPPERS = 200;
const CHANNEL_SECRET = 'bench-region-channel-secret-0123456789';

export interface RegionsLatency {
  readonly sent: number;
  readonly approved: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface RegionsRow {
  readonly linkDelayMsEachWay: number;
  readonly ratePerS: number;
  readonly phaseS: number;
  readonly local: RegionsLatency;
  readonly forwarded: RegionsLatency;
}

export interface RegionsBenchDeps {
  startApi(name: string, port: number, metricsPort: number, prefix: string, extra: Record<string, string>): Promise<Proc>;
  stop(p: Proc): Promise<void>;
  seed(port: number, count: number, tag: string): Promise<void>;
  log(msg: string): void;
  readonly prefix: string;
  readonly ports: { x: number; xMetrics: number; y: number; yMetrics: number; proxy: number };
}

/** Every chunk LINK_DELAY_MS later, in order, both ways. */
function startProxy(listenPort: number, targetPort: number): Promise<() => void> {
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket): void => {
    from.on('data', (c: Buffer) => setTimeout(() => to.destroyed || to.write(c), LINK_DELAY_MS));
    from.on('end', () => setTimeout(() => to.end(), LINK_DELAY_MS));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) sockets.add(s);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  return new Promise((resolve) =>
    server.listen(listenPort, '127.0.0.1', () =>
      resolve(() => {
        for (const s of sockets) s.destroy();
        server.close();
      }),
    ),
  );
}

function swipeRequest(agent: http.Agent, port: number, shopperId: string): Promise<number> {
  const body = `{"transaction_id":"txn_${randomBytes(8).toString('hex')}","shopper_id":"${shopperId}","amount":"1.00","currency":"USD","merchant":{"name":"Bench Store #0042","address":"1 Bench Way"}}`;
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/authorizations',
        headers: { 'content-type': 'application/json', 'x-signature': `t=${t},v1=${v1}`, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', () => resolve(0));
    req.end(body);
  });
}

/** Open loop: one swipe every 1000/RATE_PER_S ms whatever the answers do; latency from the scheduled send. */
async function openLoop(port: number, shoppers: readonly string[]): Promise<RegionsLatency> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const latencies: number[] = [];
  let approved = 0;
  const total = RATE_PER_S * PHASE_S;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE_PER_S;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      swipeRequest(agent, port, shoppers[i % shoppers.length] as string).then((status) => {
        latencies.push(performance.now() - due);
        if (status === 200) approved++;
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 10) / 10;
  return { sent: total, approved, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
}

/** The row: local decisions at y, then the same load at x forwarded to y over the delayed link. */
export async function regionsRow(d: RegionsBenchDeps): Promise<RegionsRow> {
  const { ports } = d;
  const common = { REGION_SECRETS: CHANNEL_SECRET, REGION_FORWARD_TIMEOUT_MS: '1000' };
  const y = await d.startApi('region-y', ports.y, ports.yMetrics, `${d.prefix}ry`, {
    ...common,
    REGION: 'ry',
    REGION_PEERS: `rx=http://127.0.0.1:${ports.x}`,
  });
  const closeProxy = await startProxy(ports.proxy, ports.y);
  const x = await d.startApi('region-x', ports.x, ports.xMetrics, `${d.prefix}rx`, {
    ...common,
    REGION: 'rx',
    REGION_PEERS: `ry=http://127.0.0.1:${ports.proxy}`,
  });
  try {
    await d.seed(ports.y, SHOPPERS, 'ry');
    const shoppers = benchShoppers(SHOPPERS, 'ry').map((s) => s.shopperId);
    d.log(`regions: local decisions at y, ${RATE_PER_S}/s for ${PHASE_S} s`);
    const local = await openLoop(ports.y, shoppers);
    d.log(`regions: forwarded decisions x -> y (+${LINK_DELAY_MS} ms each way), ${RATE_PER_S}/s for ${PHASE_S} s`);
    const forwarded = await openLoop(ports.x, shoppers);
    return { linkDelayMsEachWay: LINK_DELAY_MS, ratePerS: RATE_PER_S, phaseS: PHASE_S, local, forwarded };
  } finally {
    await d.stop(x);
    closeProxy();
    await d.stop(y);
  }
}

export const REGIONS_SECTION = {
  title: '## Forwarded decisions (regions)',
  begin: '<!-- bench:regions:begin -->',
  end: '<!-- bench:regions:end -->',
} as const;

/** BENCHMARKS.md: forwarded and local p99 side by side, with the link latency added. */
export function regionsSection(r: RegionsRow): string {
  const row = (name: string, l: RegionsLatency) =>
    `| ${name} | ${l.sent} | ${l.approved} | ${l.p50Ms} | ${l.p99Ms} | ${l.maxMs} |`;
  return [
    `Two regions on this machine, the link from x to y through a proxy adding ${r.linkDelayMsEachWay} ms each way`,
    `(${2 * r.linkDelayMsEachWay} ms per round trip); open loop ${r.ratePerS}/s for ${r.phaseS} s each, native §1 swipes`,
    'for shoppers of y, latency from the scheduled send (`bench/regions.ts`).',
    '',
    '| decided | sent | approved | p50 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('locally (at y)', r.local),
    row(`forwarded (at x, +${2 * r.linkDelayMsEachWay} ms link)`, r.forwarded),
  ].join('\n');
}
