// Refund rows of the settlement file (type `refund`, README "Settlement file") against the
// `refunds` table the persister writes (docs/processors.md "Refunds"). A refund id is unique
// only within its processor, so a row names it `<processor>:<refund id>`; a bare id matches
// nothing (it could be another processor's). Every break needs a person: a refund moves money
// back to the company, and an automatic correction of it would book what the records do not say.
import type { Knex } from '@mikro-orm/postgresql';
import type { ReconItem } from './reconcile.js';

type Db = Knex | Knex.Transaction;

/** Refund rows that do not match a booked refund, with their kind. Malformed rows are judged with the rest. */
const REFUND_ROW_BREAKS_SQL = `
with r as (
  select s.*, row_number() over (partition by s.txn order by s.row_no) as occ,
         split_part(s.txn, ':', 1) as processor, substr(s.txn, strpos(s.txn, ':') + 1) as rid
    from recon_rows s where s.type = 'refund' and s.error is null
), j as (
  select r.*, f.authorization_id, f.transaction_id as f_txn, f.currency as f_currency, f.amount_cents as f_amount
    from r left join refunds f on strpos(r.txn, ':') > 0 and f.processor = r.processor and f.refund_id = r.rid
)
select * from (
  select j.*, case
    when occ > 1 then 'duplicate_settlement'
    when f_amount is null then 'refund_not_booked'
    when currency <> f_currency then 'refund_currency_differs'
    when amount <> f_amount then 'refund_amount_differs'
  end as kind from j
) k where kind is not null
order by row_no`;

/** Refunds booked in the window that no refund row names. */
const REFUND_NEVER_SETTLED_SQL = `
select f.processor, f.refund_id, f.authorization_id, f.currency, f.amount_cents, f.flagged
  from refunds f
 where f.refunded_at_ms between ? and ?
   and not exists (select 1 from recon_rows s where s.type = 'refund' and s.txn = f.processor || ':' || f.refund_id)
 order by f.refunded_at_ms, f.processor, f.refund_id`;

/**
 * Processor authorizations whose linked refunds (all of them, for those refunded in the window)
 * add up to more than their approved requests cleared: money came back that we never paid out.
 */
const REFUND_EXCESS_SQL = `
with touched as (
  select distinct f.authorization_id from refunds f
   where f.authorization_id is not null and f.refunded_at_ms between ? and ?
), refunded as (
  select f.authorization_id, min(f.processor) as processor, min(f.authorization_ref) as ref,
         min(f.currency) as currency, sum(f.amount_cents) as refunded_cents
    from refunds f join touched t using (authorization_id) group by f.authorization_id
)
select * from (
  select r.*, coalesce((select sum(a.cleared_cents) from authorizations a
                         where a.processor = r.processor and a.processor_authorization_id = r.ref
                           and a.decision = 'approved'), 0) as cleared_cents
    from refunded r
) x where refunded_cents > cleared_cents
 order by processor, ref`;

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function rowDetail(r: Record<string, unknown>): string {
  const file = Number(r['amount']);
  const ours = Number(r['f_amount']);
  switch (r['kind']) {
    case 'duplicate_settlement':
      return 'refund settled again: the second credit is not ours to keep';
    case 'refund_not_booked':
      return 'refunded by the processor, never booked by us (no refund event, or not <processor>:<refund id>)';
    case 'refund_currency_differs':
      return `file ${String(r['currency'])}, booked ${String(r['f_currency'])}`;
    default:
      return `settled ${file > ours ? 'above' : 'below'} the booked refund by ${Math.abs(file - ours)} cents`;
  }
}

function rowItem(r: Record<string, unknown>): ReconItem {
  return {
    rowKey: `row:${String(r['row_no'])}`,
    kind: r['kind'] as ReconItem['kind'],
    klass: 'needs_review',
    status: 'open',
    rowNo: Number(r['row_no']),
    transactionId: String(r['txn']),
    authorizationId: (r['authorization_id'] as string | null) ?? null,
    fileAmountCents: num(r['amount']),
    ourAmountCents: num(r['f_amount']),
    fileCurrency: String(r['currency']),
    ourCurrency: (r['f_currency'] as string | null) ?? null,
    adjustmentId: null,
    detail: rowDetail(r),
  };
}

function neverSettledItem(f: Record<string, unknown>): ReconItem {
  const key = `${String(f['processor'])}:${String(f['refund_id'])}`;
  return {
    rowKey: `refund:${key}`,
    kind: 'refund_never_settled',
    klass: 'needs_review',
    status: 'open',
    rowNo: null,
    transactionId: key,
    authorizationId: (f['authorization_id'] as string | null) ?? null,
    fileAmountCents: null,
    ourAmountCents: num(f['amount_cents']),
    fileCurrency: null,
    ourCurrency: String(f['currency']),
    adjustmentId: null,
    detail: `booked, never settled by the processor${f['flagged'] === true ? ' (flagged: no authorization matched)' : ''}`,
  };
}

function excessItem(r: Record<string, unknown>): ReconItem {
  const key = `${String(r['processor'])}:${String(r['ref'])}`;
  const refunded = Number(r['refunded_cents']);
  const cleared = Number(r['cleared_cents']);
  return {
    rowKey: `refund_excess:${key}`,
    kind: 'refund_exceeds_clearing',
    klass: 'needs_review',
    status: 'open',
    rowNo: null,
    transactionId: key,
    authorizationId: String(r['authorization_id']),
    fileAmountCents: null,
    ourAmountCents: refunded,
    fileCurrency: null,
    ourCurrency: String(r['currency']),
    adjustmentId: null,
    detail: `refunds booked ${refunded} cents, ${refunded - cleared} more than the ${cleared} cents cleared`,
  };
}

/** Every refund break of the loaded file (recon_rows) and of refunds booked in [fromMs, toMs]. */
export async function refundItems(db: Db, fromMs: number, toMs: number): Promise<ReconItem[]> {
  const rows = ((await db.raw(REFUND_ROW_BREAKS_SQL)) as { rows: Record<string, unknown>[] }).rows;
  const missing = (
    (await db.raw(REFUND_NEVER_SETTLED_SQL, [fromMs, toMs])) as { rows: Record<string, unknown>[] }
  ).rows;
  const excess = ((await db.raw(REFUND_EXCESS_SQL, [fromMs, toMs])) as { rows: Record<string, unknown>[] })
    .rows;
  return [...rows.map(rowItem), ...missing.map(neverSettledItem), ...excess.map(excessItem)];
}
