// Late answers: an approval whose answer left the api after the processor's
// deadline (PROCESSOR_DEADLINE_MS) was declined by the processor, which gave
// up waiting. Its hold is flagged (lua/flagLate-2.lua: auth hash late_ms + WAL
// authorization.late) off the response path; the processor's reversal or
// reconciliation releases it (docs/ledger.md).
import type { Logger } from '../observability/logger.js';
import type { Keys } from '../redis/keys.js';
import type { FlagLateResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { flagLate } from '../redis/commands.js';

/** Flags not yet written are bounded: under a storm of late answers the rest are left to reconciliation. */
const LATE_FLAGS_IN_FLIGHT_MAX = 1000;

export interface LateFlagger {
  /** Fire and forget: never throws, never delays the answer. */
  flag(shopperId: string, authorizationId: string, elapsedMs: number): void;
  /** Resolves when every flag started so far has finished (tests, shutdown). */
  settled(): Promise<void>;
}

export function createLateFlagger(deps: {
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly logger: Logger;
  readonly deadlineMs: number;
  readonly now?: () => number;
}): LateFlagger {
  const { keys, scripts, logger, deadlineMs } = deps;
  const now = deps.now ?? Date.now;
  const inFlight = new Set<Promise<unknown>>();

  async function run(shopperId: string, authorizationId: string, elapsedMs: number): Promise<FlagLateResult> {
    return flagLate({ keys, scripts }, shopperId, authorizationId, elapsedMs, deadlineMs, now());
  }

  return {
    flag(shopperId, authorizationId, elapsedMs) {
      if (inFlight.size >= LATE_FLAGS_IN_FLIGHT_MAX) {
        logger.warn(
          { authorization_id: authorizationId, elapsed_ms: elapsedMs },
          'late answer not flagged: too many in flight',
        );
        return;
      }
      const job = run(shopperId, authorizationId, elapsedMs)
        .then((outcome) =>
          logger.warn(
            { authorization_id: authorizationId, elapsed_ms: elapsedMs, deadline_ms: deadlineMs, outcome },
            'late answer',
          ),
        )
        .catch((err: unknown) =>
          logger.warn(
            { authorization_id: authorizationId, err: err instanceof Error ? err.message : String(err) },
            'late answer flag failed; reconciliation will find it',
          ),
        )
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    },
    async settled() {
      await Promise.all([...inFlight]);
    },
  };
}
