// Results types, and the two BENCHMARKS.md sections this bench owns ("Swipe
// decisions", "Tracing cost") plus the latency chart (bench-results/latency.svg).
// Only the text between this bench's markers is replaced; other sections of
// BENCHMARKS.md (Persister, Fail-open under faults, ...) are left as they are.
import { PROCESSOR_SECTION, type ProcessorFormatRow, processorSection } from './processorFormats.js';
import { REGIONS_SECTION, type RegionsRow, regionsSection } from './regions.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LatencySummary } from './histogram.js';
import type { MemStats, ServiceLatency } from './procs.js';
import { MAX_SWIPES_PER_MINUTE } from './workload.js';
import { type RedisCostResults, redisCostDoc } from './redisCost.js';

/** Young-generation collections (scavenges) track allocation: one per filled semi-space. */
export interface GcStats {
  scavenges: number;
  scavengesPer1kRequests: number;
  scavengeMeanMs: number;
  /** Full (mark-compact) collections and their mean pause. */
  markCompacts: number;
  markCompactMeanMs: number;
  /** Every kind of GC pause (scavenge, mark-compact, incremental steps, weak callbacks), ms per s of window. */
  pauseMsPerS: number;
}

export interface PhaseResult {
  name: string;
  mode: 'closed' | 'open';
  connections: number;
  targetRate: number | undefined;
  shareOfMax?: number;
  throughputPerS: number;
  completed: number;
  errors: number;
  unfinished: number;
  /** Swipes, client side: from the intended send time in open loop (coordinated omission corrected). */
  client: LatencySummary;
  /** Open loop: from the actual send. */
  clientServiceTime: LatencySummary | undefined;
  clientItems: LatencySummary | undefined;
  sendLateness: LatencySummary | undefined;
  spectrum: Array<[number, number]>;
  outcomes: Record<string, number>;
  /** From the service's swipe_decision_duration_seconds histogram over the measured window. */
  service: ServiceLatency | undefined;
  cpuPercent: Record<string, number>;
  /** % of the window each process (api, redis, loadgen; all threads) was runnable but had no core. */
  runQueueWaitPercent?: Record<string, number>;
  loadgenCpuS: number;
  /** Redis server time per EVALSHA over the window (INFO commandstats). */
  redisUsPerScript: number | undefined;
  /** WAL events appended per second over the window (XADD calls, the scripts' included). */
  walEventsPerS?: number | undefined;
  /** swipe_decisions_total by mode over the window (normal, replay, fail_open). */
  decisionsByMode?: Record<string, number> | undefined;
  redisErrors?: Record<string, number> | undefined;
  /** Share of decisions made by the fail-open policy, and decisions/s Redis made. */
  failOpenShare?: number;
  decidedPerS?: number;
  /** nodejs_eventloop_lag_max_seconds of the api over the window, ms. */
  eventLoopLagMaxMs?: number | undefined;
  /** Keys in the Redis database (all users) when the phase started. */
  redisKeys?: number | undefined;
  /** The api's garbage collector over the window (prom-client's nodejs_gc_duration_seconds). */
  apiGc?: GcStats | undefined;
  apiMemory?: MemStats | undefined;
  /** V8 heap of the api at the end of the phase (prom-client default metrics). */
  apiHeap?: {
    heapUsedMiB?: number | undefined;
    heapTotalMiB?: number | undefined;
    externalMiB?: number | undefined;
  };
}

export interface BenchResults {
  command: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  durationS?: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memGiB: number;
    node: string;
    redis: string;
    loadavgStart: number[];
    loadavgEnd: number[];
  };
  settings: Record<string, unknown>;
  /** bench/redisCost.ts: Redis µs, commands, bytes kept and WAL bytes per decision, before and after. */
  redisCost?: RedisCostResults;
  limits: {
    bareUws?: PhaseResult;
    redisScript?: PhaseResult;
    bareUwsScript?: PhaseResult;
    bareUwsScriptSweep?: PhaseResult[];
    bareUwsScriptAutoPipelining?: PhaseResult;
    bareUwsScriptCoalesced?: PhaseResult;
    /** Limit (3) under the open loop at the 50 % row's rate: the machine's own latency floor there. */
    bareUwsScriptHalf?: PhaseResult;
  };
  service: {
    saturation: PhaseResult[];
    maxThroughputPerS?: number;
    maxFrom?: string;
    openLoop: PhaseResult[];
    peakRssMiB?: number | undefined;
    rssNote?: string | undefined;
    peakRssSaturationMiB?: number;
  };
  /** CONTRACT §7: one saturation phase per processor format (processorFormats.ts). */
  processorFormats?: ProcessorFormatRow[];
  /** CONTRACT §8: local vs forwarded decisions over a delayed link (regions.ts). */
  regions?: RegionsRow;
  tracing: {
    off?: { saturation: PhaseResult; half: PhaseResult; peakRssMiB: number | undefined };
    on?: { saturation: PhaseResult; half: PhaseResult; peakRssMiB: number | undefined };
    exportRequests?: number;
    exportBytes?: number;
  };
  shoppingMix?: {
    phase: PhaseResult;
    persister: boolean;
    persisterError: string | undefined;
    walBacklogBeforeLoad: number;
    walBacklogAtEnd: number;
    walBacklogAfterWait: number;
    drainS: number | undefined;
    drainWaitS: number;
    persisterPeakRssMiB: number | undefined;
    persisterLogTail?: string[] | undefined;
  };
  /** Persisters draining the run's own WAL (issue: keep up with 2x the api's peak). */
  persisterCapacity?: {
    processes: number;
    windowS: number;
    batchEventsMax?: number;
    backlogBefore?: number;
    backlogAfter?: number;
    windowCount?: number;
    committedBeforeWindow?: number;
    /** Consecutive measuring windows once the leases were split; events and seconds from the first to the last commit seen in each. */
    windows?: Array<{
      events: number;
      seconds: number;
      eventsPerS: number;
      cpuPercent: Record<string, number>;
    }>;
    /** The best window (the capacity), and the median one. */
    eventsPerS?: number;
    medianPerS?: number;
    ranDry?: boolean;
    cpuPercent?: Record<string, number>;
    /** Rows the persisters wrote in all (before and in the window), by table or event type. */
    rowsWritten?: Record<string, number>;
    error?: string;
    logTail?: string[];
  };
  targets: Array<{ name: string; value: string; limit: string; met: boolean }>;
}

const HEADER = `# Benchmarks

Each section says which command produced it. Figures are from a 2-core machine
that other engineers share; treat them as ratios against limits measured in the
same run, not as absolute capacity.
`;

export const SECTIONS = {
  swipe: {
    title: '## Swipe decisions',
    begin: '<!-- bench:swipe-decisions:begin -->',
    end: '<!-- bench:swipe-decisions:end -->',
  },
  redisCost: {
    title: '## Redis cost of a decision',
    begin: '<!-- bench:redis-cost:begin -->',
    end: '<!-- bench:redis-cost:end -->',
  },
  tracing: {
    title: '## Tracing cost',
    begin: '<!-- bench:tracing-cost:begin -->',
    end: '<!-- bench:tracing-cost:end -->',
  },
} as const;

export function writeDocs(r: BenchResults, jsonPath: string, root: string): void {
  writeFileSync(path.join(root, 'bench-results', 'latency.svg'), latencyChart(r));
  const file = path.join(root, 'BENCHMARKS.md');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  doc = replaceSection(doc, SECTIONS.swipe, swipeSection(r, jsonPath));
  doc = replaceSection(doc, SECTIONS.tracing, tracingSection(r, jsonPath));
  if (r.redisCost !== undefined) {
    doc = replaceSection(doc, SECTIONS.redisCost, redisCostDoc(r.redisCost, `${r.command} (run \`${r.runId}\`)`, r.startedAt, jsonPath));
  }
  if (r.processorFormats !== undefined && r.processorFormats.length > 0) {
    const native = r.service.saturation.filter((p) => p.connections === r.settings['connections']);
    doc = replaceSection(doc, PROCESSOR_SECTION, processorSection(bestOf(native), r.processorFormats));
  }
  if (r.regions !== undefined) doc = replaceSection(doc, REGIONS_SECTION, regionsSection(r.regions));
  writeFileSync(file, doc);
}

function bestOf(runs: PhaseResult[]): PhaseResult | undefined {
  return runs.reduce<PhaseResult | undefined>(
    (b, p) =>
      b === undefined || (p.decidedPerS ?? p.throughputPerS) > (b.decidedPerS ?? b.throughputPerS) ? p : b,
    undefined,
  );
}

/** Replaces the generated block of a section; creates the section (at the end) when missing. */
export function replaceSection(doc: string, s: { title: string; begin: string; end: string }, body: string): string {
  const block = `${s.begin}\n${body.trim()}\n${s.end}`;
  const b = doc.indexOf(s.begin);
  const e = doc.indexOf(s.end);
  if (b >= 0 && e > b) return doc.slice(0, b) + block + doc.slice(e + s.end.length);
  const sep = doc.endsWith('\n\n') ? '' : doc.endsWith('\n') ? '\n' : '\n\n';
  return `${doc}${sep}${s.title}\n\n${block}\n`;
}

const f = (x: number | undefined, digits = 2) =>
  x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);
const k = (x: number | undefined) => (x === undefined ? '–' : x.toLocaleString('en-US'));
const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(1)} %`;

/** µs of api CPU per request over the measured window. */
export function cpuPerRequestUs(p: PhaseResult): number | undefined {
  const cpu = p.cpuPercent['api'];
  if (cpu === undefined || p.throughputPerS === 0) return undefined;
  return (cpu / 100 / p.throughputPerS) * 1e6;
}

function cpuCell(p: PhaseResult): string {
  const c = p.cpuPercent;
  // "other" is machine busy time minus ours: slightly negative within /proc's tick rounding.
  return [c['api'], c['redis'], c['loadgen'], c['other'] === undefined ? undefined : Math.max(0, c['other'])]
    .map((x) => (x === undefined ? '–' : String(Math.round(x))))
    .join(' / ');
}

function waitCell(p: PhaseResult): string {
  const w = p.runQueueWaitPercent;
  if (w === undefined) return '–';
  return [w['api'], w['redis']].map((x) => (x === undefined ? '–' : String(Math.round(x)))).join(' / ');
}

function row(label: string, p: PhaseResult | undefined): string {
  if (p === undefined) return `| ${label} | – | – | – | – | – | – | – | – | – | – | – | – | – | – |`;
  const load = p.mode === 'open' ? `open ${k(p.targetRate)}/s` : `closed ${p.connections}`;
  const s = p.service;
  return `| ${label} | ${load} | ${k(p.throughputPerS)} | ${f(p.client.p50Ms)} | ${f(p.client.p99Ms)} | ${f(p.client.p999Ms)} | ${f(s?.p50Ms, 3)} | ${f(s?.p99Ms, 3)} | ${f(s?.p999Ms, 3)} | ${pct(s?.fractionUnder1Ms)} | ${p.failOpenShare === undefined ? '–' : pct(p.failOpenShare)} | ${f(p.eventLoopLagMaxMs, 0)} | ${f(p.redisUsPerScript, 0)} | ${cpuCell(p)} | ${waitCell(p)} |`;
}

function swipeSection(r: BenchResults, jsonPath: string): string {
  const L = r.limits;
  const max = r.service.maxThroughputPerS ?? 0;
  const ratio = (x: PhaseResult | undefined) =>
    x === undefined || x.throughputPerS === 0 ? '–' : pct(max / x.throughputPerS);
  const lines: string[] = [];
  lines.push(
    `Produced by \`${r.command}\` (run \`${r.runId}\`, ${r.startedAt}, ${r.durationS ?? '?'} s) → [\`${jsonPath}\`](${jsonPath}).`,
    `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memGiB} GiB, Node ${r.machine.node}, Redis ${r.machine.redis};`,
    `load average ${r.machine.loadavgStart.join(' / ')} at the start, ${r.machine.loadavgEnd.join(' / ')} at the end.`,
    '**The machine is shared**: other engineers run test suites on the same 2 cores, so these figures are noisy',
    '(load average above ~1 before the run means someone else was busy); the lead re-runs the final numbers on a quiet machine.',
    '',
    `Service: \`node dist/cli.js serve\`, \`NODE_ENV=production\`, \`LOG_LEVEL=warn\`, default \`DECISION_TIMEOUT_MS\`,`,
    `\`MAX_SWIPES_PER_MINUTE=${MAX_SWIPES_PER_MINUTE}\`, ${r.settings['partitions']} partitions, ${k(r.settings['shoppers'] as number)} seeded trips (trip API).`,
    'Swipe mix: ~70 % approvals, ~10 % declined `AMOUNT_EXCEEDS_ALLOWANCE`, ~10 % `MERCHANT_MISMATCH`, ~10 % exact retries',
    '(same body re-signed: replayed). Load from a separate process: raw sockets, keep-alive, one request in flight per',
    `connection, ${r.settings['warmupS']} s warm-up then ${r.settings['phaseS']} s measured per row.`,
    'Open loop: fixed schedule at the given rate, latency from the *intended* send time (coordinated omission counted);',
    'before the open-loop rows the keys the saturation sweep left are deleted (WAL streams kept) and the trips re-seeded,',
    'so they run in the state the maximum was measured in ("keys" in the JSON: Redis keys at the start of each row).',
    'Client columns in ms; "service" = `swipe_decision_duration_seconds` over the measured window (interpolated inside',
    'buckets; "≤ 1 ms" is exact, 1 ms is a bucket bound); the (3) rows fill these columns from the bare server\'s own',
    'histogram of the same name, buckets and start (the request line). CPU = % of one core used by the api (or bare server) /',
    'redis-server (all its clients) / the load generator / everything else: other processes and hypervisor steal time (the noise: this is a shared VM).',
    '"fail-open" = share of decisions the service made without Redis (`swipe_decisions_total{mode="fail_open"}`: the',
    '25 ms deadline passed or the breaker was open); "loop lag" = `nodejs_eventloop_lag_max_seconds` of the api over the',
    'window (ms); "Redis µs/script" = server time per EVALSHA (`INFO commandstats`) over the window; "no core" = % of the',
    'window the api (all its threads) / redis-server was ready to run but waited for a core (`run_delay` of',
    '`/proc/<pid>/task/*/schedstat`): the cost of sharing two cores, which CPU time does not show.',
    '',
    '| measurement | load | req/s | client p50 | p99 | p99.9 | service p50 | p99 | p99.9 | ≤ 1 ms | fail-open | loop lag | Redis µs/script | CPU % api/redis/gen/other | no core % api/redis |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    row('(1) bare uWS, fixed body', L.bareUws),
    row('(2) script straight at Redis', L.redisScript),
    ...(L.bareUwsScriptSweep ?? []).map((p) => row('(3) bare uWS + script', p)),
    row('(3b) same, ioredis auto-pipelining on', L.bareUwsScriptAutoPipelining),
    row('(3c) same, Redis writes coalesced per loop turn', L.bareUwsScriptCoalesced),
    row("(3) bare uWS + script, at the service's 50 % rate", L.bareUwsScriptHalf),
    ...r.service.saturation.map((p) => row('**service**, saturation', p)),
    ...r.service.openLoop.map((p) => row(`**service**, ${f((p.shareOfMax ?? 0) * 100, 0)} % of max`, p)),
    row('service, shopping mix (swipes)', r.shoppingMix?.phase),
    '',
    `Service maximum (decisions Redis made, fail-open excluded; from "${r.service.maxFrom ?? '?'}"): **${k(max)} swipes/s** = ${ratio(L.bareUwsScript)} of (3), ${ratio(L.redisScript)} of (2),`,
    `${ratio(L.bareUws)} of (1). Peak RSS of the api (VmHWM): **${f(r.service.peakRssMiB, 1)} MiB** over all untraced phases,`,
    `${f(r.service.peakRssSaturationMiB, 1)} MiB by the end of the saturation sweep${r.service.rssNote === undefined ? '' : ` (${r.service.rssNote})`}. RSS / V8 heap used / heap total after each phase (MiB):`,
    [...r.service.saturation, ...r.service.openLoop]
      .map(
        (p) =>
          `${p.name.replace('service ', '')}: ${f(p.apiMemory?.rssMiB, 0)} / ${f(p.apiHeap?.heapUsedMiB, 0)} / ${f(p.apiHeap?.heapTotalMiB, 0)}`,
      )
      .join('; ') + '.',
  );
  const conns = [...new Set((L.bareUwsScriptSweep ?? []).map((b) => b.connections))];
  const bestAt = (runs: PhaseResult[], c: number) =>
    Math.max(0, ...runs.filter((x) => x.connections === c).map((x) => x.decidedPerS ?? x.throughputPerS));
  if (conns.length > 0) {
    lines.push(
      `Service / (3) at the same concurrency (best of the back-to-back runs of each): ${conns
        .map((c) => `${c}: ${pct(bestAt(r.service.saturation, c) / bestAt(L.bareUwsScriptSweep ?? [], c))}`)
        .join(', ')}.`,
    );
  }
  lines.push(
    '',
    'CPU per decision (µs of one core; robust to the noise that moves throughput, since it divides by what was done):',
    '',
    '| measurement | api / server | redis-server | load generator | sum |',
    '| --- | ---: | ---: | ---: | ---: |',
  );
  const cpuRows: Array<[string, PhaseResult | undefined]> = [
    ['(1) bare uWS, fixed body', L.bareUws],
    ['(2) script straight at Redis', L.redisScript],
    ...(L.bareUwsScriptSweep ?? []).map((p): [string, PhaseResult] => [
      `(3) bare uWS + script, closed ${p.connections}`,
      p,
    ]),
    ['(3b) auto-pipelining', L.bareUwsScriptAutoPipelining],
    ['(3c) writes coalesced', L.bareUwsScriptCoalesced],
    ...r.service.saturation.map((p): [string, PhaseResult] => [`service, closed ${p.connections}`, p]),
    ...r.service.openLoop.map((p): [string, PhaseResult] => [
      `service, open ${f((p.shareOfMax ?? 0) * 100, 0)} %`,
      p,
    ]),
  ];
  for (const [label, p] of cpuRows) {
    if (p === undefined || p.throughputPerS === 0) continue;
    const us = (key: string) => {
      const c = p.cpuPercent[key];
      return c === undefined ? undefined : (c / 100 / p.throughputPerS) * 1e6;
    };
    const parts = [us('api'), us('redis'), us('loadgen')];
    const sum = parts.reduce<number>((a, b) => a + (b ?? 0), 0);
    lines.push(`| ${label} | ${parts.map((x) => f(x, 0)).join(' | ')} | ${f(sum, 0)} |`);
  }
  const m = r.shoppingMix;
  if (m !== undefined) {
    lines.push(
      '',
      `Shopping mix: open loop at ${k(m.phase.targetRate)} req/s, ${pct((r.settings['mix'] as { itemShare: number }).itemShare)} item updates (trip API) and the rest swipes, with`,
      `\`node dist/cli.js persist\` draining the WAL into Postgres (a database created for the run). Item update latency:`,
      `p50 ${f(m.phase.clientItems?.p50Ms)} / p99 ${f(m.phase.clientItems?.p99Ms)} / p99.9 ${f(m.phase.clientItems?.p999Ms)} ms.`,
      m.persister
        ? `WAL entries not yet in Postgres: ${k(m.walBacklogAtEnd)} when the load stopped; ${m.drainS === undefined ? `${k(m.walBacklogAfterWait)} still pending after ${m.drainWaitS} s` : `drained to 0 in ${m.drainS} s`}. Persister peak RSS ${f(m.persisterPeakRssMiB, 1)} MiB, CPU ${f(m.phase.cpuPercent['persister'], 0)} % of a core.`
        : `The persister did not run: ${(m.persisterError ?? '').split('\n')[0]}. WAL backlog at the end: ${k(m.walBacklogAtEnd)}.`,
    );
  }
  const c = r.persisterCapacity;
  if (c !== undefined) {
    // The phase the maximum came from (the sweep repeats names): the most decisions Redis made.
    const peak = r.service.saturation.reduce<PhaseResult | undefined>(
      (a, p) => (a === undefined || (p.decidedPerS ?? 0) > (a.decidedPerS ?? 0) ? p : a),
      undefined,
    );
    lines.push(
      '',
      c.eventsPerS === undefined
        ? `Persister capacity: not measured (${(c.error ?? '').split('\n')[0]}).`
        : `Persister capacity, same run: ${c.processes} \`node dist/cli.js persist\` processes (batch ${k(c.batchEventsMax)}) drained the WAL the phases above left (${k(c.backlogBefore)} entries: the api's own decisions and seeded trips; no persister ran during them) into a database of their own: **${k(c.eventsPerS)} events/s**, the best of ${c.windows?.length ?? '?'} consecutive ${c.windowS} s windows once the leases were split, each timed from its first to its last batch commit (whole batches over the time they took; ${(c.windows ?? []).map((w) => k(w.eventsPerS)).join(' / ')} events/s; the api's maximum is likewise the best of its runs), ${k(c.backlogAfter)} entries left${c.ranDry ? ': ran dry, a lower bound' : ''}; CPU % in the best window persisters / postgres / redis / machine ${['persisters', 'postgres', 'redis', 'machine'].map((x) => f(c.cpuPercent?.[x], 0)).join(' / ')}. The api's peak wrote ${k(peak?.walEventsPerS)} WAL events/s for ${k(r.service.maxThroughputPerS)} decisions/s (idempotent retries write none).`,
    );
  }
  lines.push('', '| target | value | limit | met |', '| --- | --- | --- | --- |');
  for (const t of r.targets)
    lines.push(`| ${t.name} | ${t.value} | ${t.limit} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push(
    '',
    '![Latency by percentile](bench-results/latency.svg)',
    '',
    'Chart: client-side swipe latency by percentile (open loop, coordinated omission counted; and the closed-loop',
    'saturation row), log scale. Produced by the same command.',
  );
  return lines.join('\n');
}

function tracingSection(r: BenchResults, jsonPath: string): string {
  const off = r.tracing.off;
  const on = r.tracing.on;
  if (off === undefined || on === undefined) return `No tracing measurement in \`${jsonPath}\`.`;
  const d = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || a === 0
      ? '–'
      : `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)} %`;
  const line = (label: string, a: number | undefined, b: number | undefined, digits = 3) =>
    `| ${label} | ${f(a, digits)} | ${f(b, digits)} | ${d(a, b)} |`;
  return [
    `Produced by \`${r.command}\` (run \`${r.runId}\`) → [\`${jsonPath}\`](${jsonPath}). Same service, same seeded trips,`,
    'same load; "on" sets `OTEL_EXPORTER_OTLP_ENDPOINT` to a local sink that answers 200 to `POST /v1/traces`',
    `(span per request + span per script call, batch span processor, http/protobuf; the sink received ${k(r.tracing.exportRequests)}`,
    `exports, ${k(r.tracing.exportBytes)} bytes). Noisy shared machine: differences of a few % are within run-to-run noise.`,
    '',
    '| | tracing off | tracing on | change |',
    '| --- | ---: | ---: | ---: |',
    line(
      `saturation req/s (closed ${off.saturation.connections})`,
      off.saturation.throughputPerS,
      on.saturation.throughputPerS,
      0,
    ),
    line(
      'api CPU µs per decision, saturation',
      cpuPerRequestUs(off.saturation),
      cpuPerRequestUs(on.saturation),
      1,
    ),
    line(
      `api CPU µs per decision, open loop ${k(off.half.targetRate)}/s`,
      cpuPerRequestUs(off.half),
      cpuPerRequestUs(on.half),
      1,
    ),
    line('open loop 50 %: service p50 ms', off.half.service?.p50Ms, on.half.service?.p50Ms),
    line('open loop 50 %: service p99 ms', off.half.service?.p99Ms, on.half.service?.p99Ms),
    line('open loop 50 %: service p99.9 ms', off.half.service?.p999Ms, on.half.service?.p999Ms),
    line('open loop 50 %: client p50 ms', off.half.client.p50Ms, on.half.client.p50Ms),
    line('open loop 50 %: client p99 ms', off.half.client.p99Ms, on.half.client.p99Ms),
    line('open loop 50 %: client p99.9 ms', off.half.client.p999Ms, on.half.client.p999Ms),
    line('peak RSS MiB', off.peakRssMiB, on.peakRssMiB, 1),
  ].join('\n');
}

const COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#444444'];

/** Percentile spectrum (x: 50 … 99.99, max; y: ms, log scale) as a self-contained SVG. */
export function latencyChart(r: BenchResults): string {
  const series: Array<{ label: string; points: Array<[number, number]>; dash?: boolean }> = [];
  for (const p of r.service.openLoop) {
    series.push({
      label: `service, open loop ${f((p.shareOfMax ?? 0) * 100, 0)} % (${k(p.targetRate)}/s)`,
      points: p.spectrum,
    });
  }
  if (r.tracing.on !== undefined) {
    series.push({
      label: `tracing on, open loop 50 % (${k(r.tracing.on.half.targetRate)}/s)`,
      points: r.tracing.on.half.spectrum,
      dash: true,
    });
  }
  const sat = r.service.saturation.find((p) => p.connections === (r.settings['connections'] as number));
  if (sat !== undefined)
    series.push({
      label: `service, saturation (closed ${sat.connections})`,
      points: sat.spectrum,
      dash: true,
    });
  const W = 760;
  const H = 420;
  const m = { l: 60, r: 20, t: 30, b: 110 };
  const xs = series[0]?.points.map((p) => p[0]) ?? [];
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...all, 0.1)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...all, 1)));
  const x = (i: number) => m.l + (i * (W - m.l - m.r)) / Math.max(1, xs.length - 1);
  const y = (v: number) =>
    m.t +
    (H - m.t - m.b) *
      (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Swipe latency by percentile, client side (run ${r.runId})</text>`,
  ];
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    for (const mult of [1, 2, 5]) {
      const v = mult * 10 ** e;
      if (v > yMax) break;
      out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
      out.push(
        `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)}</text>`,
      );
    }
  }
  xs.forEach((p, i) => {
    out.push(`<line x1="${x(i)}" x2="${x(i)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`);
    out.push(
      `<text x="${x(i)}" y="${H - m.b + 16}" text-anchor="middle">${p === 100 ? 'max' : `p${p}`}</text>`,
    );
  });
  out.push(
    `<text x="16" y="${(H - m.b + m.t) / 2}" transform="rotate(-90 16 ${(H - m.b + m.t) / 2})" text-anchor="middle">ms (log)</text>`,
  );
  series.forEach((s, si) => {
    const color = COLORS[si % COLORS.length];
    const pts = s.points.map((p, i) => `${x(i).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ''} points="${pts}"/>`,
    );
    const ly = H - m.b + 34 + si * 15;
    out.push(
      `<line x1="${m.l}" x2="${m.l + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    out.push(`<text x="${m.l + 30}" y="${ly}">${s.label}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
