// Drives the real api over HTTP with a shopping mix (trip PUTs, item picks,
// signed swipes, reversals, closes) and keeps the books the persister must
// match: how many WAL events each accepted request produced, and every
// authorization id the api answered with.
import { type Reply, safewayTrip, startTestApi, swipeBody, type TestApi } from '../../helpers/api.js';

export interface Books {
  events: Record<string, number>;
  authorizationIds: Set<string>;
  /** Responses whose effect on the WAL is unknown (must stay 0 for exact checks). */
  ambiguous: number;
  latenciesMs: number[];
  trips: { shopperId: string; tripId: string; closed: boolean }[];
  approvedTxns: { shopperId: string; txn: string; amountCents: number; reversedCents: number }[];
}

export function newBooks(): Books {
  return {
    events: {},
    authorizationIds: new Set(),
    ambiguous: 0,
    latenciesMs: [],
    trips: [],
    approvedTxns: [],
  };
}

function add(b: Books, type: string): void {
  b.events[type] = (b.events[type] ?? 0) + 1;
}

export function totalEvents(b: Books): number {
  return Object.values(b.events).reduce((s, n) => s + n, 0);
}

export async function createTrips(api: TestApi, books: Books, tag: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const shopperId = `${tag}-s${i}`;
    const tripId = `${tag}-t${i}`;
    const r = await api.putTrip(shopperId, tripId, safewayTrip({ tolerance_cents: 5000 }));
    if (r.status !== 201) throw new Error(`PUT trip: ${r.status} ${r.text}`);
    add(books, 'trip.upserted');
    books.trips.push({ shopperId, tripId, closed: false });
  }
}

function pickOne<T>(xs: readonly T[]): T {
  const x = xs[Math.floor(Math.random() * xs.length)];
  if (x === undefined) throw new Error('empty');
  return x;
}

function recordSwipe(books: Books, r: Reply, ms: number): void {
  books.latenciesMs.push(ms);
  if (r.headers.get('idempotent-replayed') === 'true') return;
  const j = r.json;
  if (
    (r.status !== 200 && r.status !== 402) ||
    j.mode === 'fail_open' ||
    j.reason === 'STORAGE_UNAVAILABLE'
  ) {
    books.ambiguous++;
    return;
  }
  if (j.reason === 'IDEMPOTENCY_CONFLICT') return;
  add(books, 'authorization.decided');
  books.authorizationIds.add(String(j.authorization_id));
}

/** One request of the mix. */
export async function step(api: TestApi, books: Books): Promise<void> {
  const open = books.trips.filter((t) => !t.closed);
  const t = pickOne(open.length > 0 ? open : books.trips);
  const roll = Math.random();
  if (roll < 0.4) {
    const milk = 1 + Math.floor(Math.random() * 10);
    const r = await api.pick(t.shopperId, t.tripId, Math.random() < 0.5 ? 'milk' : 'apples', {
      status: 'picked',
      quantity: milk,
      customer_approved: true,
    });
    if (r.status === 200) add(books, 'item.updated');
    else if (r.status >= 500) books.ambiguous++;
  } else if (roll < 0.9) {
    const body = swipeBody(t.shopperId, (1 + Math.floor(Math.random() * 400) / 100).toFixed(2));
    const started = performance.now();
    const r = await api.swipe(body);
    recordSwipe(books, r, performance.now() - started);
    if (r.status === 200 && r.json.mode === 'normal') {
      books.approvedTxns.push({
        shopperId: t.shopperId,
        txn: body.transaction_id,
        amountCents: Number(r.json.amount_cents),
        reversedCents: 0,
      });
    }
  } else {
    const a = books.approvedTxns.find((x) => x.reversedCents < x.amountCents);
    if (a === undefined) return;
    const cents = Math.min(50, a.amountCents - a.reversedCents);
    const r = await api.reverse({
      transaction_id: a.txn,
      shopper_id: a.shopperId,
      amount: (cents / 100).toFixed(2),
    });
    if (r.status === 200 && r.headers.get('idempotent-replayed') !== 'true') {
      a.reversedCents += cents;
      add(books, 'reversal.applied');
    } else if (r.status >= 500) books.ambiguous++;
  }
}

/** Runs `workers` concurrent request loops at about `ratePerS` in total until `until()` says stop. */
export async function drive(
  api: TestApi,
  books: Books,
  workers: number,
  ratePerS: number,
  until: () => boolean,
): Promise<void> {
  const gapMs = (1000 * workers) / ratePerS;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!until()) {
        const started = performance.now();
        await step(api, books);
        const left = gapMs - (performance.now() - started);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
    }),
  );
}

export async function closeSome(api: TestApi, books: Books, fraction: number): Promise<void> {
  for (const t of books.trips) {
    if (t.closed || Math.random() >= fraction) continue;
    const r = await api.closeTrip(t.shopperId, t.tripId);
    if (r.status === 200) {
      t.closed = true;
      add(books, 'trip.closed');
    }
  }
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/**
 * An api for tests that count every decision exactly: no rate limit, a generous deadline,
 * fail-open off, and a starved test machine not taken for overload to shed.
 */
export function startCountingApi(prefix: string, partitions: number, databaseUrl: string): Promise<TestApi> {
  return startTestApi({
    REDIS_PREFIX: prefix,
    PARTITIONS: String(partitions),
    DATABASE_URL: databaseUrl,
    MAX_SWIPES_PER_MINUTE: '100000',
    DECISION_TIMEOUT_MS: '800',
    FAILOPEN_ENABLED: 'false',
    OVERLOAD_LOOP_LAG_MS: '5000',
    OVERLOAD_WAIT_MS: '5000',
  });
}
