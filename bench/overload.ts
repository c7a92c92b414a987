// The overload curve (issue 19): offered load vs what one api pod answered,
// shed (503 overloaded) and decided by the fail-open policy, with Redis
// healthy. Past saturation the pod must shed, never fail open. Driven by
// `npm run bench -- --overload-at=<rate>,<rate>...` (bench/run.ts hook):
// one open-loop phase per offered rate on the seeded service; this file only
// turns each phase's figures into a point and the points into a table.
import type { PhaseResult } from './report.js';

/** Offered rates for a curve past this machine's maximum (BENCHMARKS.md: ~4-5k swipes/s on 2 cores). */
export const OVERLOAD_RATES_DEFAULT = [1000, 2000, 4000, 6000, 8000, 12_000];

export interface OverloadPoint {
  readonly offeredPerS: number;
  /** Decisions the client received (200 approved, 402 declined; replays included), per second. */
  readonly answeredPerS: number;
  /** 503 overloaded, per second. */
  readonly shedPerS: number;
  /** Decisions made by the fail-open policy over the window (must be 0: Redis is healthy). */
  readonly failOpen: number;
  /**
   * Offered but not answered in the window, per second: connection errors, still
   * pending at the end, and requests the load generator could not send because
   * all its connections were waiting (open loop over a fixed connection count).
   */
  readonly unansweredPerS: number;
  /** Client-side p99 of answered swipes, ms (from the intended send time). */
  readonly p99Ms: number | undefined;
}

function statusCount(outcomes: Record<string, number>, status: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(outcomes)) if (k.split(' ').includes(status)) n += v;
  return n;
}

export function overloadPoint(r: PhaseResult, measuredS: number): OverloadPoint {
  const per = (n: number) => Math.round(n / measuredS);
  return {
    offeredPerS: r.targetRate ?? 0,
    answeredPerS: per(statusCount(r.outcomes, '200') + statusCount(r.outcomes, '402')),
    shedPerS: per(statusCount(r.outcomes, '503')),
    failOpen: r.decisionsByMode?.['fail_open'] ?? 0,
    unansweredPerS: per(r.errors + r.unfinished),
    p99Ms: r.client.p99Ms,
  };
}

export function overloadTable(points: readonly OverloadPoint[]): string {
  const rows = points.map(
    (p) =>
      `| ${p.offeredPerS} | ${p.answeredPerS} | ${p.shedPerS} | ${p.failOpen} | ${p.unansweredPerS} | ${p.p99Ms === undefined ? '-' : p.p99Ms.toFixed(1)} |`,
  );
  return [
    '| offered /s | answered /s (200+402) | shed /s (503) | fail-open decisions | not answered /s | p99 ms (client) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
