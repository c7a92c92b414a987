// Reconciliation (docs/ledger.md "Reconciliation"): compares a processor
// settlement file with Postgres and records every mismatch in one of three
// classes:
//   auto_adjusted  classifiable, corrected automatically (a ledger posting, or a
//                  hold released through Redis), status "adjusted"
//   needs_review   classifiable, a person must act, status "open"
//   unclassified   not understood, status "queued"
// The file is loaded into a temporary table and compared in SQL, in one
// transaction. Runs are keyed by the file's sha256 and items by (file hash,
// row key), adjustments by their subject: re-running a file changes nothing.
import type { Knex } from '@mikro-orm/postgresql';
import {
  ADJUSTMENTS,
  EXPOSURE,
  move,
  PAYABLE,
  type Posting,
  type Transfer,
  writePostings,
} from '../ledger/postings.js';
import { fileHash, readSettlementFile } from './csv.js';
import { refundItems } from './refunds.js';

export type ItemClass = 'auto_adjusted' | 'needs_review' | 'unclassified';

/** Every kind of mismatch, its class (amount_differs depends on the difference). */
export const KINDS = {
  settled_without_authorization: 'auto_adjusted',
  failopen_missing_from_wal: 'auto_adjusted',
  failopen_conflict_settled: 'auto_adjusted',
  amount_differs: 'auto_adjusted',
  authorized_never_settled: 'needs_review',
  duplicate_settlement: 'needs_review',
  currency_differs: 'needs_review',
  shopper_differs: 'needs_review',
  settled_declined_authorization: 'needs_review',
  clearing_missing: 'needs_review',
  refund_not_booked: 'needs_review',
  refund_amount_differs: 'needs_review',
  refund_currency_differs: 'needs_review',
  refund_never_settled: 'needs_review',
  refund_exceeds_clearing: 'needs_review',
  missing_after_takeover: 'needs_review',
  unknown_transaction: 'unclassified',
  stand_in_for_authorized: 'unclassified',
  malformed_row: 'unclassified',
} as const satisfies Record<string, ItemClass>;
export type Kind = keyof typeof KINDS;

export interface ReconItem {
  readonly rowKey: string;
  readonly kind: Kind;
  readonly klass: ItemClass;
  readonly status: 'adjusted' | 'open' | 'queued';
  readonly rowNo: number | null;
  readonly transactionId: string | null;
  readonly authorizationId: string | null;
  readonly fileAmountCents: number | null;
  readonly ourAmountCents: number | null;
  readonly fileCurrency: string | null;
  readonly ourCurrency: string | null;
  readonly adjustmentId: string | null;
  readonly detail: string;
}

export interface ReconOptions {
  /** Authorizations decided in [fromMs, toMs] are expected in the file; defaults from the file's settled_at. */
  readonly fromMs?: number;
  readonly toMs?: number;
  /** Default window: from min(settled_at) - lookback to max(settled_at) - grace. */
  readonly lookbackMs?: number;
  readonly settleGraceMs?: number;
  /** amount_differs up to this many cents is adjusted automatically; above, a person looks. */
  readonly autoAdjustMaxCents?: number;
  /** Releases a late answer's hold through Redis (lua/expireHold-3.lua); absent: left to a person. */
  readonly releaseHold?: (a: {
    authorization_id: string;
    shopper_id: string;
    currency: string;
    transaction_id: string;
    held: string;
  }) => Promise<{ released: boolean; eventId: string }>;
  readonly now?: () => number;
}

export interface ReconResult {
  readonly runId: string;
  readonly fileHash: string;
  /** True when this file was reconciled before: nothing was changed, the stored result is returned. */
  readonly replayed: boolean;
  readonly rows: number;
  readonly windowFromMs: number;
  readonly windowToMs: number;
  readonly durationMs: number;
  readonly items: ReconItem[];
}

const DAY_MS = 86_400_000;
const LOAD_BATCH_ROWS = 5000;
const ITEMS_BATCH = 2000;

type Db = Knex | Knex.Transaction;

async function raw<T>(db: Db, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
  return ((await db.raw(sql, bindings as never)) as { rows: T[] }).rows;
}

function itemFromRow(r: Record<string, unknown>): ReconItem {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    rowKey: String(r['row_key']),
    kind: r['kind'] as Kind,
    klass: r['class'] as ItemClass,
    status: r['status'] as ReconItem['status'],
    rowNo: n(r['row_no']),
    transactionId: (r['transaction_id'] as string | null) ?? null,
    authorizationId: (r['authorization_id'] as string | null) ?? null,
    fileAmountCents: n(r['file_amount_cents']),
    ourAmountCents: n(r['our_amount_cents']),
    fileCurrency: (r['file_currency'] as string | null) ?? null,
    ourCurrency: (r['our_currency'] as string | null) ?? null,
    adjustmentId: (r['adjustment_id'] as string | null) ?? null,
    detail: String(r['detail'] ?? ''),
  };
}

async function storedResult(
  db: Db,
  hash: string,
  startedMs: number,
  now: () => number,
): Promise<ReconResult | undefined> {
  const [run] = await raw<Record<string, string>>(
    db,
    'select * from reconciliation_runs where file_hash = ?',
    [hash],
  );
  if (run === undefined) return undefined;
  const items = await raw<Record<string, unknown>>(
    db,
    'select * from reconciliation_items where file_hash = ? order by row_no nulls last, row_key',
    [hash],
  );
  return {
    runId: String(run['run_id']),
    fileHash: hash,
    replayed: true,
    rows: Number(run['rows_total']),
    windowFromMs: Number(run['window_from_ms']),
    windowToMs: Number(run['window_to_ms']),
    durationMs: now() - startedMs,
    items: items.map(itemFromRow),
  };
}

/** Loads the file into a temporary table (dropped at commit); returns row count and settled_at range. */
async function loadFile(
  trx: Knex.Transaction,
  path: string,
): Promise<{ rows: number; minMs: number; maxMs: number }> {
  await trx.raw(`create temporary table recon_rows (
      row_no int primary key, txn text not null, shopper text not null, merchant text not null, amount bigint,
      currency text not null, settled_ms bigint, type text not null, error text) on commit drop`);
  let rows = 0;
  let minMs = Number.POSITIVE_INFINITY;
  let maxMs = Number.NEGATIVE_INFINITY;
  for await (const batch of readSettlementFile(path, LOAD_BATCH_ROWS)) {
    rows += batch.length;
    for (const r of batch) {
      if (r.settledMs !== null) {
        if (r.settledMs < minMs) minMs = r.settledMs;
        if (r.settledMs > maxMs) maxMs = r.settledMs;
      }
    }
    await trx.raw(
      `insert into recon_rows select x.* from json_to_recordset(?::json) as x(row_no int, txn text, shopper text,
         merchant text, amount bigint, currency text, settled_ms bigint, type text, error text)`,
      [
        JSON.stringify(
          batch.map((r) => ({
            row_no: r.rowNo,
            txn: r.txn,
            shopper: r.shopper,
            merchant: r.merchant,
            amount: r.amountCents,
            currency: r.currency,
            settled_ms: r.settledMs,
            type: r.type,
            error: r.error,
          })),
        ),
      ],
    );
  }
  await trx.raw('create index on recon_rows (txn)');
  await trx.raw('analyze recon_rows');
  return { rows, minMs, maxMs };
}

/**
 * A processor's own authorization id as the file names it, `<processor>:<id>` (stripe:iauth_…,
 * marqeta:<transaction token>, lithic:<transaction token>), matched against the processor's ids
 * kept on each authorization. Incremental requests are authorizations of their own sharing that
 * id: the processor settles them as one, so their approved amounts, reversals and clearings add up.
 */
const PROCESSOR_KEY = `a.processor || ':' || a.processor_authorization_id`;
/** A row's `<processor>:<id>` split at its first ':' (processor names have none), to use the indexes. */
const SPLIT_KEY = `split_part(s.txn, ':', 1) as processor, substr(s.txn, strpos(s.txn, ':') + 1) as pid`;
// Joined on the two columns (not on PROCESSOR_KEY) so authorizations_processor_auth_idx is used.
const BY_PROCESSOR_ID_SQL = `
  select k.txn as pkey, min(a.authorization_id) as authorization_id,
         case when bool_or(a.decision = 'approved') then 'approved' else min(a.decision) end as decision,
         min(a.shopper_id) as shopper_id, min(a.currency) as currency,
         coalesce(sum(a.amount_cents) filter (where a.decision = 'approved'), 0) as amount_cents,
         coalesce(sum(a.reversed_cents) filter (where a.decision = 'approved'), 0) as reversed_cents,
         sum(a.cleared_cents) filter (where a.decision = 'approved') as cleared_cents
    from (select distinct s.txn, ${SPLIT_KEY} from recon_rows s
           where s.type <> 'refund' and strpos(s.txn, ':') > 0) k
    join authorizations a on a.processor = k.processor and a.processor_authorization_id = k.pid
   group by 1`;

/** File rows that do not match Postgres, with their kind (SQL, one pass). */
const ROW_BREAKS_SQL = `
with r as (
  select s.*, row_number() over (partition by s.txn order by s.row_no) as occ from recon_rows s
   where s.type <> 'refund' or s.error is not null
), p as (${BY_PROCESSOR_ID_SQL}), j as (
  select r.*, coalesce(p.authorization_id, a.authorization_id) as authorization_id,
         coalesce(p.decision, a.decision) as decision, coalesce(p.shopper_id, a.shopper_id) as a_shopper,
         coalesce(p.currency, a.currency) as a_currency, coalesce(p.amount_cents, a.amount_cents) as a_amount,
         coalesce(p.reversed_cents, a.reversed_cents) as a_reversed,
         case when p.pkey is not null then p.cleared_cents else a.cleared_cents end as a_cleared,
         exists (select 1 from failopen_replays f where f.transaction_id = r.txn) as fo_seen,
         (select u.from_region from region_takeover_unpersisted u where u.transaction_id = r.txn limit 1) as tk_wal,
         (select t.from_region from region_takeover_shoppers t where t.shopper_id = r.shopper) as tk_shopper
    from r left join p on p.pkey = r.txn
           left join authorizations a on p.pkey is null and a.transaction_id = r.txn
)
select * from (
  select j.*, case
    when error is not null then 'malformed_row'
    when occ > 1 then 'duplicate_settlement'
    when type = 'stand_in' and authorization_id is null then 'settled_without_authorization'
    when type = 'stand_in' then 'stand_in_for_authorized'
    when type = 'fail_open' and authorization_id is null and not fo_seen then 'failopen_missing_from_wal'
    when type = 'fail_open' and fo_seen and (authorization_id is null or decision <> 'approved')
      then 'failopen_conflict_settled'
    when authorization_id is null and (tk_wal is not null or tk_shopper is not null) then 'missing_after_takeover'
    when authorization_id is null then 'unknown_transaction'
    when decision <> 'approved' then 'settled_declined_authorization'
    when currency <> a_currency then 'currency_differs'
    when shopper <> a_shopper then 'shopper_differs'
    when a_cleared is null then 'clearing_missing'
    when amount <> a_cleared then 'amount_differs'
  end as kind from j
) k where kind is not null
order by row_no`;

/** Approved authorizations in the window that should have settled and are not in the file. */
const NEVER_SETTLED_SQL = `
select a.authorization_id, a.transaction_id, a.shopper_id, a.currency, a.amount_cents, a.reversed_cents,
       a.cleared_cents, a.late_ms, (a.amount_cents - a.reversed_cents)::text as held
  from authorizations a
 where a.decision = 'approved' and a.transaction_id is not null
   and a.decided_ms between ? and ?
   and (a.cleared_cents is not null or (a.expired_ms is null and a.amount_cents > a.reversed_cents))
   and not exists (select 1 from recon_rows s
                    where s.type <> 'refund' and (s.txn = a.transaction_id or s.txn = ${PROCESSOR_KEY}))
 order by a.decided_ms, a.authorization_id`;

function adjustment(id: string, r: Record<string, unknown>, transfers: Transfer[], nowMs: number): Posting {
  return {
    postingId: id,
    kind: 'adjustment',
    authorizationId: (r['authorization_id'] as string | null) ?? null,
    transactionId: String(r['txn']),
    shopperId: String(r['shopper']),
    currency: String(r['currency']),
    eventMs: nowMs,
    transfers,
  };
}

/** One mismatch of a settlement-file row (ROW_BREAKS_SQL); its adjustment, if any, goes to `postings`. */
function rowItem(r: Record<string, unknown>, autoMax: number, nowMs: number, postings: Posting[]): ReconItem {
  const txn = String(r['txn']);
  const amount = r['amount'] === null ? null : Number(r['amount']);
  const ours = r['a_cleared'] === null || r['a_cleared'] === undefined ? null : Number(r['a_cleared']);
  const { kind, klass, adjustmentId, detail } = judgeRow(r, { txn, amount, ours, autoMax, nowMs }, postings);
  return {
    rowKey: `row:${String(r['row_no'])}`,
    kind,
    klass,
    status: klass === 'auto_adjusted' ? 'adjusted' : klass === 'needs_review' ? 'open' : 'queued',
    rowNo: Number(r['row_no']),
    transactionId: txn === '' ? null : txn,
    authorizationId: (r['authorization_id'] as string | null) ?? null,
    fileAmountCents: amount,
    ourAmountCents: ours ?? (r['a_amount'] === null ? null : Number(r['a_amount']) - Number(r['a_reversed'])),
    fileCurrency: String(r['currency']) || null,
    ourCurrency: (r['a_currency'] as string | null) ?? null,
    adjustmentId,
    detail,
  };
}

interface RowFigures {
  readonly txn: string;
  readonly amount: number | null;
  readonly ours: number | null;
  readonly autoMax: number;
  readonly nowMs: number;
}

/** A break's class, its adjustment (pushed onto postings) and what the report says of it. */
function judgeRow(r: Record<string, unknown>, f: RowFigures, postings: Posting[]) {
  const { txn, amount, ours, autoMax, nowMs } = f;
  let kind = r['kind'] as Kind;
  let klass: ItemClass = KINDS[kind];
  let adjustmentId: string | null = null;
  let detail = '';
  switch (kind) {
    case 'malformed_row':
      detail = String(r['error']);
      break;
    case 'duplicate_settlement':
      detail = 'settled again: claim the duplicate back from the processor';
      break;
    case 'settled_without_authorization':
      adjustmentId = `recon:stand_in:${txn}`;
      postings.push(adjustment(adjustmentId, r, move(ADJUSTMENTS, PAYABLE, amount as number), nowMs));
      detail = 'network stand-in: settlement booked from adjustments';
      break;
    case 'failopen_missing_from_wal':
    case 'failopen_conflict_settled':
      adjustmentId = `recon:fail_open:${txn}`;
      postings.push(adjustment(adjustmentId, r, move(EXPOSURE, PAYABLE, amount as number), nowMs));
      detail =
        kind === 'failopen_missing_from_wal'
          ? 'fail-open approval never replayed into the WAL (journal lost?): settlement booked from fail-open exposure'
          : 'fail-open approval Redis had decided otherwise: settlement booked from fail-open exposure';
      break;
    case 'amount_differs': {
      const diff = (amount as number) - (ours as number);
      if (Math.abs(diff) <= autoMax) {
        adjustmentId = `recon:amount:${txn}`;
        postings.push(adjustment(adjustmentId, r, move(ADJUSTMENTS, PAYABLE, diff), nowMs));
        detail = `settled ${diff > 0 ? 'above' : 'below'} the clearing by ${Math.abs(diff)} cents: adjusted`;
      } else {
        klass = 'needs_review';
        detail = `settled ${diff > 0 ? 'above' : 'below'} the clearing by ${Math.abs(diff)} cents (limit ${autoMax})`;
      }
      break;
    }
    case 'currency_differs':
      detail = `file ${String(r['currency'])}, authorization ${String(r['a_currency'])}`;
      break;
    case 'shopper_differs':
      detail = `file shopper ${String(r['shopper'])}, authorization shopper ${String(r['a_shopper'])}`;
      break;
    case 'clearing_missing':
      detail = 'settled, but the clearing webhook never arrived: the hold is still open';
      break;
    case 'missing_after_takeover':
      detail = takeoverDetail(r);
      break;
    default:
      kind = r['kind'] as Kind;
      detail =
        kind === 'settled_declined_authorization' ? 'we declined this transaction' : 'not found in Postgres';
  }
  return { kind, klass, adjustmentId, detail };
}

/** A settlement of a shopper taken over from a lost region, for an authorization we do not have. */
function takeoverDetail(r: Record<string, unknown>): string {
  const wal = r['tk_wal'] as string | null;
  if (wal !== null)
    return `decided in lost region ${wal}; its WAL entry never reached Postgres (region-takeover listed it)`;
  return `shopper taken over from lost region ${String(r['tk_shopper'])}; no record of this authorization survived (decided after the last persisted WAL position?)`;
}

/** An approval in the window the file never settled (NEVER_SETTLED_SQL); a late one's hold is released. */
async function neverSettledItem(a: Record<string, string | null>, options: ReconOptions): Promise<ReconItem> {
  const cleared = a['cleared_cents'];
  let klass: ItemClass = 'needs_review';
  let adjustmentId: string | null = null;
  let detail = cleared !== null ? 'cleared with us, never settled by the processor' : 'held, never settled';
  if (cleared === null && a['late_ms'] !== null) {
    detail = 'late answer (the processor declined it), never settled';
    if (options.releaseHold !== undefined) {
      const r = await options.releaseHold({
        authorization_id: String(a['authorization_id']),
        shopper_id: String(a['shopper_id']),
        currency: String(a['currency']),
        transaction_id: String(a['transaction_id']),
        held: String(a['held']),
      });
      klass = 'auto_adjusted';
      adjustmentId = r.eventId;
      detail += r.released ? ': hold released (hold.expired)' : ': hold already released';
    }
  }
  return {
    rowKey: `auth:${String(a['authorization_id'])}`,
    kind: 'authorized_never_settled',
    klass,
    status: klass === 'auto_adjusted' ? 'adjusted' : 'open',
    rowNo: null,
    transactionId: a['transaction_id'] ?? null,
    authorizationId: String(a['authorization_id']),
    fileAmountCents: null,
    ourAmountCents: cleared !== null ? Number(cleared) : Number(a['held']),
    fileCurrency: null,
    ourCurrency: a['currency'] ?? null,
    adjustmentId,
    detail,
  };
}

/** The run's items, ITEMS_BATCH rows per statement; a re-run of the same file adds none. */
async function insertItems(
  trx: Knex,
  runId: string,
  hash: string,
  items: readonly ReconItem[],
): Promise<void> {
  for (let i = 0; i < items.length; i += ITEMS_BATCH) {
    await trx.raw(
      `insert into reconciliation_items (run_id, file_hash, row_key, kind, class, status, row_no, transaction_id,
              authorization_id, file_amount_cents, our_amount_cents, file_currency, our_currency, adjustment_id, detail)
       select ?, ?, x.* from json_to_recordset(?::json) as x(row_key text, kind text, class text, status text,
              row_no int, transaction_id text, authorization_id text, file_amount_cents bigint, our_amount_cents bigint,
              file_currency text, our_currency text, adjustment_id text, detail text)
       on conflict (file_hash, row_key) do nothing`,
      [
        runId,
        hash,
        JSON.stringify(
          items.slice(i, i + ITEMS_BATCH).map((it) => ({
            row_key: it.rowKey,
            kind: it.kind,
            class: it.klass,
            status: it.status,
            row_no: it.rowNo,
            transaction_id: it.transactionId,
            authorization_id: it.authorizationId,
            file_amount_cents: it.fileAmountCents,
            our_amount_cents: it.ourAmountCents,
            file_currency: it.fileCurrency,
            our_currency: it.ourCurrency,
            adjustment_id: it.adjustmentId,
            detail: it.detail,
          })),
        ),
      ],
    );
  }
}

export async function reconcile(
  knex: Knex,
  path: string,
  fileName: string,
  options: ReconOptions = {},
): Promise<ReconResult> {
  const now = options.now ?? Date.now;
  const startedMs = now();
  const hash = await fileHash(path);
  const before = await storedResult(knex, hash, startedMs, now);
  if (before !== undefined) return before;
  const autoMax = options.autoAdjustMaxCents ?? 200;

  return knex.transaction(async (trx) => {
    const { rows, minMs, maxMs } = await loadFile(trx, path);
    const fromMs =
      options.fromMs ?? (Number.isFinite(minMs) ? minMs - (options.lookbackMs ?? 7 * DAY_MS) : 0);
    const toMs = options.toMs ?? (Number.isFinite(maxMs) ? maxMs - (options.settleGraceMs ?? DAY_MS) : 0);
    const [run] = await raw<{ run_id: string }>(
      trx,
      `insert into reconciliation_runs (file_hash, file_name, rows_total, items_total, window_from_ms, window_to_ms,
              started_ms, duration_ms, summary)
       values (?, ?, ?, 0, ?, ?, ?, 0, '{}') returning run_id`,
      [hash, fileName, rows, fromMs, toMs, startedMs],
    );
    const runId = String(run?.run_id);
    const items: ReconItem[] = [];
    const postings: Posting[] = [];
    const nowMs = now();
    for (const r of await raw<Record<string, unknown>>(trx, ROW_BREAKS_SQL)) {
      items.push(rowItem(r, autoMax, nowMs, postings));
    }
    for (const a of await raw<Record<string, string | null>>(trx, NEVER_SETTLED_SQL, [fromMs, toMs])) {
      items.push(await neverSettledItem(a, options));
    }
    items.push(...(await refundItems(trx, fromMs, toMs)));
    await writePostings(trx, postings);
    await insertItems(trx, runId, hash, items);
    const durationMs = now() - startedMs;
    await trx.raw(
      'update reconciliation_runs set items_total = ?, duration_ms = ?, summary = ? where run_id = ?',
      [items.length, durationMs, JSON.stringify(summarize(items)), runId],
    );
    return {
      runId,
      fileHash: hash,
      replayed: false,
      rows,
      windowFromMs: fromMs,
      windowToMs: toMs,
      durationMs,
      items,
    };
  });
}

export interface Summary {
  readonly byClass: Record<ItemClass, number>;
  readonly byKind: Record<
    string,
    { readonly count: number; readonly fileCents: number; readonly ourCents: number }
  >;
}

export function summarize(items: readonly ReconItem[]): Summary {
  const byClass: Record<ItemClass, number> = { auto_adjusted: 0, needs_review: 0, unclassified: 0 };
  const byKind: Record<string, { count: number; fileCents: number; ourCents: number }> = {};
  for (const it of items) {
    byClass[it.klass]++;
    const key = `${it.kind}/${it.klass}`;
    const k = byKind[key] ?? { count: 0, fileCents: 0, ourCents: 0 };
    byKind[key] = k;
    k.count++;
    k.fileCents += it.fileAmountCents ?? 0;
    k.ourCents += it.ourAmountCents ?? 0;
  }
  return { byClass, byKind };
}
