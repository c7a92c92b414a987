// Log-bucketed latency histogram (HdrHistogram-like): values in 100 ns ticks,
// 64 sub-buckets per power of two above 128 ticks, so any recorded value is
// off by at most 1/64 (1.6 %). Fixed size (1664 counters), mergeable,
// serializable as sparse [index, count] pairs.

const SUB_BUCKETS = 64;
const LINEAR_MAX = 2 * SUB_BUCKETS; // values below this are exact
const BUCKETS = LINEAR_MAX + 24 * SUB_BUCKETS;
/** Largest value that fits: 2^31 - 1 ticks = 214 s. Larger values are clamped. */
const TICKS_MAX = 0x7fffffff;
const TICKS_PER_MS = 10_000;

function indexOf(ticks: number): number {
  if (ticks < LINEAR_MAX) return ticks;
  const bits = 32 - Math.clz32(ticks);
  const shift = bits - 7;
  return LINEAR_MAX + (shift - 1) * SUB_BUCKETS + ((ticks >>> shift) - SUB_BUCKETS);
}

/** Highest value (ticks) that lands in bucket `index`. */
function highestOf(index: number): number {
  if (index < LINEAR_MAX) return index;
  const shift = ((index - LINEAR_MAX) >> 6) + 1;
  const mantissa = ((index - LINEAR_MAX) & (SUB_BUCKETS - 1)) + SUB_BUCKETS;
  return (mantissa + 1) * 2 ** shift - 1;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  total = 0;
  maxMs = 0;
  sumMs = 0;

  recordMs(ms: number): void {
    const v = ms <= 0 ? 0 : Math.min(TICKS_MAX, Math.round(ms * TICKS_PER_MS));
    this.counts[indexOf(v)]! += 1;
    this.total += 1;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sumMs += other.sumMs;
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs;
  }

  /** q in [0, 1]; the highest value equivalent to the q-quantile, in ms (HdrHistogram convention). */
  percentileMs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestOf(i) / TICKS_PER_MS, this.maxMs);
    }
    return this.maxMs;
  }

  /** Fraction of recorded values <= ms. */
  fractionAtOrBelow(ms: number): number {
    if (this.total === 0) return 0;
    const limit = Math.round(ms * TICKS_PER_MS);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (highestOf(i) > limit) break;
      seen += this.counts[i]!;
    }
    return seen / this.total;
  }

  summary(): LatencySummary {
    return {
      count: this.total,
      meanMs: round3(this.total === 0 ? 0 : this.sumMs / this.total),
      p50Ms: round3(this.percentileMs(0.5)),
      p90Ms: round3(this.percentileMs(0.9)),
      p99Ms: round3(this.percentileMs(0.99)),
      p999Ms: round3(this.percentileMs(0.999)),
      p9999Ms: round3(this.percentileMs(0.9999)),
      maxMs: round3(this.maxMs),
    };
  }

  /** The percentile spectrum for charts: [percentile, ms] at 0, 90, 99, 99.9 ... */
  spectrum(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const p of SPECTRUM_PERCENTILES) out.push([p, round3(this.percentileMs(p / 100))]);
    out.push([100, round3(this.maxMs)]);
    return out;
  }

  toJSON(): SerializedHistogram {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { unitNs: 100, subBuckets: SUB_BUCKETS, buckets, maxMs: this.maxMs, sumMs: this.sumMs };
  }

  static fromJSON(s: SerializedHistogram): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, c] of s.buckets) {
      h.counts[i] = c;
      h.total += c;
    }
    h.maxMs = s.maxMs;
    h.sumMs = s.sumMs;
    return h;
  }
}

export const SPECTRUM_PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99];

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  p9999Ms: number;
  maxMs: number;
}

export interface SerializedHistogram {
  unitNs: number;
  subBuckets: number;
  buckets: Array<[number, number]>;
  maxMs: number;
  sumMs: number;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
