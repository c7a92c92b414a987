// The one place where the coded results of the Lua scripts become typed
// results. Scripts never return free-text errors: an unexpected shape here is
// a programmer error (thrown), not a business outcome.
import { LUA_DECLINE_REASONS } from './scripts.generated.js';
import type { ScriptName } from './scripts.js';

/**
 * Decline reasons in CONTRACT §1 order; index + 1 is the authorizeSwipe code. The scripts' list is
 * lua/includes/reasons.lua (read at build time); STORAGE_UNAVAILABLE is decided by the api only.
 */
export const DECLINE_REASONS = [...LUA_DECLINE_REASONS, 'STORAGE_UNAVAILABLE'] as const;
export type DeclineReason = (typeof DECLINE_REASONS)[number];

export type DecisionMode = 'normal' | 'fail_open';

/** authorizeSwipe code 11: the partition has no `meta` (Redis lost data, hydrate pending). */
const PARTITION_NOT_READY_CODE = 11;

/**
 * Infrastructure, not a business outcome: Redis answered but cannot vouch for
 * the partition's state, so the api applies the storage fallback.
 */
export class PartitionNotReadyError extends Error {
  constructor() {
    super('partition state not intact (hydrate pending)');
    this.name = 'PartitionNotReadyError';
  }
}

/** authorizeSwipe code 12: the signature was accepted on another processor endpoint. */
const SIGNATURE_ELSEWHERE_CODE = 12;

/** A signed request whose signature another processor endpoint accepted first (CONTRACT §1): 401. */
export class SignatureUsedElsewhereError extends Error {
  constructor() {
    super('signature already used on another endpoint');
    this.name = 'SignatureUsedElsewhereError';
  }
}

export interface AuthorizeResult {
  readonly reason: DeclineReason | undefined;
  readonly authorizationId: string;
  readonly tripId: string;
  readonly amountCents: number;
  readonly remainingCents: number;
  readonly mode: DecisionMode;
  readonly replayed: boolean;
}

export type UpsertOutcome = 'created' | 'identical' | 'trip_conflict' | 'open_trip_exists';
/** `existingSpec`: the stored canonical spec when the outcome is trip_conflict (names what differs). */
export interface UpsertTripResult {
  readonly outcome: UpsertOutcome;
  readonly existingSpec: string;
}

export type UpdateItemResult =
  | { readonly ok: true; readonly pickedCents: number; readonly lineCents: number }
  | {
      readonly ok: false;
      readonly error:
        | 'trip_not_found'
        | 'item_not_found'
        | 'trip_closed'
        | 'trip_expired'
        | 'overpick_requires_approval'
        | 'price_variance_requires_approval'
        | 'line_too_large'
        | 'overpick_above_maximum';
    };

export type CloseTripResult = 'closed' | 'already_closed' | 'trip_not_found';

export interface AuthorizationState {
  readonly authorization_id: string;
  readonly transaction_id: string;
  readonly trip_id: string;
  readonly amount_cents: number;
  readonly reversed_cents: number;
  readonly held_cents: number;
  readonly status: string;
}

export type ReverseResult =
  | { readonly ok: true; readonly replayed: boolean; readonly state: AuthorizationState }
  | {
      readonly ok: false;
      readonly error: 'authorization_not_found' | 'amount_exceeds_held' | 'reversal_conflict';
    };

export interface ClearingState {
  readonly authorization_id: string;
  readonly transaction_id: string;
  readonly trip_id: string;
  readonly currency: string;
  readonly amount_cents: number;
  readonly reversed_cents: number;
  readonly released_cents?: number;
  readonly cleared_cents: number;
  readonly held_cents: number;
  readonly cleared_at_ms?: number;
  readonly status: 'cleared';
}

export type ClearResult =
  | { readonly ok: true; readonly replayed: boolean; readonly state: ClearingState }
  | {
      readonly ok: false;
      readonly error:
        | 'authorization_not_found'
        | 'amount_exceeds_allowance'
        | 'clearing_conflict'
        | 'authorization_not_approved'
        | 'currency_mismatch';
    };

export type ExpireHoldResult =
  | { readonly outcome: 'released'; readonly releasedCents: number }
  | { readonly outcome: 'already_released'; readonly releasedCents: number }
  | { readonly outcome: 'nothing_held' }
  | { readonly outcome: 'shopper_mismatch' };

export type FlagLateResult = 'flagged' | 'already_flagged' | 'not_approved';

export interface TripView {
  readonly trip: Record<string, string>;
  readonly authorizations: ReadonlyArray<Record<string, string | number>>;
}

export interface ScriptResults {
  authorizeSwipe: AuthorizeResult;
  upsertTrip: UpsertTripResult;
  updateItem: UpdateItemResult;
  closeTrip: CloseTripResult;
  readTrip: TripView | undefined;
  reverseAuthorization: ReverseResult;
  clearAuthorization: ClearResult;
  expireHold: ExpireHoldResult;
  flagLate: FlagLateResult;
}

/** A script answered with a shape its decoder does not know: a programmer error, kind `script`. */
export class UnexpectedScriptResultError extends Error {
  constructor(name: string, raw: unknown) {
    super(`script ${name} returned an unexpected result: ${JSON.stringify(raw)?.slice(0, 200)}`);
    this.name = 'UnexpectedScriptResultError';
  }
}

function fail(name: string, raw: unknown): never {
  throw new UnexpectedScriptResultError(name, raw);
}

function arrayOf(name: string, raw: unknown, length: number): unknown[] {
  if (!Array.isArray(raw) || raw.length !== length) fail(name, raw);
  return raw;
}

const UPSERT: readonly UpsertOutcome[] = ['created', 'identical', 'trip_conflict', 'open_trip_exists'];
const CLOSE: readonly CloseTripResult[] = ['closed', 'already_closed', 'trip_not_found'];
const ITEM_ERRORS = [
  'trip_not_found',
  'item_not_found',
  'trip_closed',
  'trip_expired',
  'overpick_requires_approval',
  'price_variance_requires_approval',
  'line_too_large',
  'overpick_above_maximum',
] as const;
const REVERSE_ERRORS = ['authorization_not_found', 'amount_exceeds_held', 'reversal_conflict'] as const;
const CLEAR_ERRORS = [
  'authorization_not_found',
  'amount_exceeds_allowance',
  'clearing_conflict',
  'authorization_not_approved',
  'currency_mismatch',
] as const;
const FLAG_LATE: readonly FlagLateResult[] = ['flagged', 'already_flagged', 'not_approved'];

export function decodeScriptResult<N extends keyof ScriptResults & ScriptName>(
  name: N,
  raw: unknown,
): ScriptResults[N] {
  switch (name) {
    case 'authorizeSwipe': {
      const [code, authorizationId, tripId, amount, remaining, mode, replayed] = arrayOf(name, raw, 7);
      if (code === PARTITION_NOT_READY_CODE) throw new PartitionNotReadyError();
      if (code === SIGNATURE_ELSEWHERE_CODE) throw new SignatureUsedElsewhereError();
      if (typeof code !== 'number' || code < 0 || code > 10) fail(name, raw);
      if (mode !== 'normal' && mode !== 'fail_open') fail(name, raw);
      const result: AuthorizeResult = {
        reason: code === 0 ? undefined : DECLINE_REASONS[code - 1],
        authorizationId: String(authorizationId),
        tripId: String(tripId),
        amountCents: Number(amount),
        remainingCents: Number(remaining),
        mode,
        replayed: replayed === 1,
      };
      return result as ScriptResults[N];
    }
    case 'upsertTrip': {
      const [code, existingSpec] = arrayOf(name, raw, 2);
      const outcome = UPSERT[code as number];
      if (outcome === undefined || typeof existingSpec !== 'string') fail(name, raw);
      return { outcome, existingSpec } as ScriptResults[N];
    }
    case 'updateItem': {
      const [code, picked, line] = arrayOf(name, raw, 3);
      if (code === 0)
        return { ok: true, pickedCents: Number(picked), lineCents: Number(line) } as ScriptResults[N];
      const error = ITEM_ERRORS[(code as number) - 1];
      if (error === undefined) fail(name, raw);
      return { ok: false, error } as ScriptResults[N];
    }
    case 'closeTrip': {
      const [code] = arrayOf(name, raw, 1);
      const result = CLOSE[code as number];
      if (result === undefined) fail(name, raw);
      return result as ScriptResults[N];
    }
    case 'readTrip': {
      if (raw === '' || raw === null) return undefined as ScriptResults[N];
      if (typeof raw !== 'string') fail(name, raw);
      const parsed = JSON.parse(raw) as { trip: Record<string, string>; authorizations: unknown };
      const authorizations = Array.isArray(parsed.authorizations) ? parsed.authorizations : [];
      return { trip: parsed.trip, authorizations } as unknown as ScriptResults[N];
    }
    case 'reverseAuthorization': {
      const [code, state] = arrayOf(name, raw, 2);
      if (code === 0 || code === 1) {
        return { ok: true, replayed: code === 1, state: JSON.parse(String(state)) } as ScriptResults[N];
      }
      const error = REVERSE_ERRORS[(code as number) - 2];
      if (error === undefined) fail(name, raw);
      return { ok: false, error } as ScriptResults[N];
    }
    case 'clearAuthorization': {
      const [code, state] = arrayOf(name, raw, 2);
      if (code === 0 || code === 1) {
        return { ok: true, replayed: code === 1, state: JSON.parse(String(state)) } as ScriptResults[N];
      }
      const error = CLEAR_ERRORS[(code as number) - 2];
      if (error === undefined) fail(name, raw);
      return { ok: false, error } as ScriptResults[N];
    }
    case 'expireHold': {
      const [code, released] = arrayOf(name, raw, 2);
      if (typeof released !== 'number' || released < 0) fail(name, raw);
      const result: ExpireHoldResult | undefined =
        code === 0
          ? { outcome: 'released', releasedCents: released }
          : code === 1
            ? { outcome: 'already_released', releasedCents: released }
            : code === 2
              ? { outcome: 'nothing_held' }
              : code === 3
                ? { outcome: 'shopper_mismatch' }
                : undefined;
      if (result === undefined) fail(name, raw);
      return result as ScriptResults[N];
    }
    case 'flagLate': {
      const [code] = arrayOf(name, raw, 1);
      const result = FLAG_LATE[code as number];
      if (result === undefined) fail(name, raw);
      return result as ScriptResults[N];
    }
    default:
      return fail(name, raw);
  }
}

/** What a replayed fail-open approval became in Redis (journal acks and failopen.replayed). */
export type ReplayOutcome = 'applied' | 'already_decided' | 'conflict' | 'overridden';

export type ReplayCode = ReplayOutcome | 'duplicate' | 'deferred';

export interface ReplayResult {
  readonly code: ReplayCode;
  /** For already_decided / conflict: the authorization Redis had stored for the key. */
  readonly storedAuthorizationId: string;
  readonly tripId: string;
  readonly authorizedCents: number | undefined;
}

/** Indexed by the script's code; 5 (invalid arguments) has no outcome. */
const CODES: readonly (ReplayCode | undefined)[] = [
  'applied',
  'already_decided',
  'conflict',
  'duplicate',
  'deferred',
  undefined,
  'overridden',
];

/** Maps the coded result of replayFailOpen (see its header). */
export function decodeReplayResult(raw: unknown): ReplayResult {
  if (!Array.isArray(raw) || raw.length !== 5 || typeof raw[0] !== 'number') fail('replayFailOpen', raw);
  const code = CODES[raw[0]];
  if (code === undefined) throw new Error(`replayFailOpen refused its arguments (code ${raw[0]})`);
  const authorized = Number(raw[4]);
  return {
    code,
    storedAuthorizationId: String(raw[2]),
    tripId: String(raw[3]),
    authorizedCents: authorized < 0 ? undefined : authorized,
  };
}
