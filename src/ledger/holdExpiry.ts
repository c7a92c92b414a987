// Hold expiry (docs/ledger.md): approved authorizations never cleared nor
// fully reversed are released HOLD_EXPIRY_S after their decision. The sweep
// runs in the persister process; candidates come from Postgres, the release
// itself is lua/expireHold-3.lua per authorization (idempotent: it releases
// what Redis still holds and XADDs hold.expired), so Redis and Postgres agree
// and the persister posts the release like any other event.
import type { Knex } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Keys } from '../redis/keys.js';
import type { ExpireHoldResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { expireHold } from '../redis/commands.js';

/** Authorizations examined per tick: bounds one tick's Redis calls and time. */
export const HOLD_SWEEP_BATCH_MAX = 200;
/** How often the persister sweeps. */
export const HOLD_SWEEP_INTERVAL_MS = 30_000;

export interface HoldCandidate {
  readonly authorization_id: string;
  readonly shopper_id: string;
  readonly partition: number;
  readonly currency: string;
  readonly transaction_id: string | null;
  readonly held: string;
  readonly decided_ms: string;
}

export interface SweepResult {
  readonly examined: number;
  readonly released: number;
  readonly releasedCents: number;
  readonly untouched: number;
}

export interface ReleaseDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
}

/** Releases one authorization's hold through Redis (expiry or reconciliation). */
export async function releaseHold(
  deps: ReleaseDeps,
  c: Omit<HoldCandidate, 'decided_ms' | 'partition'>,
  reason: 'expiry' | 'reconciliation',
  nowMs: number,
): Promise<ExpireHoldResult & { eventId: string }> {
  return expireHold(deps, c, reason, nowMs);
}

export class HoldExpirySweeper {
  /** Keyset cursor: candidates Redis has nothing for (Postgres behind) do not block the rest. */
  private after: { decidedMs: string; id: string } | undefined;

  constructor(
    private readonly deps: ReleaseDeps & {
      readonly knex: Knex;
      readonly logger: Logger;
      /** Partitions this process sweeps (its leases); undefined = all. */
      readonly partitions?: () => readonly number[];
      readonly now?: () => number;
      readonly batchMax?: number;
    },
  ) {}

  async tick(): Promise<SweepResult> {
    const { knex, config, logger } = this.deps;
    const nowMs = (this.deps.now ?? Date.now)();
    const batchMax = this.deps.batchMax ?? HOLD_SWEEP_BATCH_MAX;
    const owned = this.deps.partitions?.();
    if (owned !== undefined && owned.length === 0)
      return { examined: 0, released: 0, releasedCents: 0, untouched: 0 };
    const cutoff = nowMs - config.holdExpiryS * 1000;
    const res = (await knex.raw(
      `select authorization_id, shopper_id, partition, currency, transaction_id,
              (amount_cents - reversed_cents)::text as held, decided_ms::text as decided_ms
         from authorizations
        where decision = 'approved' and cleared_cents is null and expired_ms is null
          and amount_cents > reversed_cents and decided_ms < ?
          and (?::int[] is null or partition = any(?::int[]))
          and (decided_ms, authorization_id) > (?::bigint, ?::text)
        order by decided_ms, authorization_id
        limit ?`,
      [
        cutoff,
        owned === undefined ? null : `{${owned.join(',')}}`,
        owned === undefined ? null : `{${owned.join(',')}}`,
        this.after?.decidedMs ?? '-1',
        this.after?.id ?? '',
        batchMax,
      ],
    )) as { rows: HoldCandidate[] };
    const candidates = res.rows;
    this.after =
      candidates.length < batchMax
        ? undefined
        : {
            decidedMs: (candidates.at(-1) as HoldCandidate).decided_ms,
            id: (candidates.at(-1) as HoldCandidate).authorization_id,
          };
    let released = 0;
    let releasedCents = 0;
    for (const c of candidates) {
      const r = await releaseHold(this.deps, c, 'expiry', nowMs);
      if (r.outcome === 'released') {
        released++;
        releasedCents += r.releasedCents;
      }
    }
    if (released > 0) logger.info({ released, releasedCents, examined: candidates.length }, 'holds expired');
    return { examined: candidates.length, released, releasedCents, untouched: candidates.length - released };
  }
}
