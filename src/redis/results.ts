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

/** authorizeSwipe code 13: the authorization id a forwarded swipe came with names another decision here. */
const AUTHORIZATION_ID_TAKEN_CODE = 13;

/** Nothing decided, nothing written: the api decides the swipe again under an id of its own. */
export class AuthorizationIdTakenError extends Error {
  constructor() {
    super('the forwarded authorization id names another decision here');
    this.name = 'AuthorizationIdTakenError';
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

function decodeAuthorize(raw: unknown): AuthorizeResult {
  const [code, authorizationId, tripId, amount, remaining, mode, replayed] = arrayOf(
    'authorizeSwipe',
    raw,
    7,
  );
  if (code === PARTITION_NOT_READY_CODE) throw new PartitionNotReadyError();
  if (code === SIGNATURE_ELSEWHERE_CODE) throw new SignatureUsedElsewhereError();
  if (code === AUTHORIZATION_ID_TAKEN_CODE) throw new AuthorizationIdTakenError();
  if (typeof code !== 'number' || code < 0 || code > 10) fail('authorizeSwipe', raw);
  if (mode !== 'normal' && mode !== 'fail_open') fail('authorizeSwipe', raw);
  return {
    reason: code === 0 ? undefined : DECLINE_REASONS[code - 1],
    authorizationId: String(authorizationId),
    tripId: String(tripId),
    amountCents: Number(amount),
    remainingCents: Number(remaining),
    mode,
    replayed: replayed === 1,
  };
}

function decodeUpsert(raw: unknown): UpsertTripResult {
  const [code, existingSpec] = arrayOf('upsertTrip', raw, 2);
  const outcome = UPSERT[code as number];
  if (outcome === undefined || typeof existingSpec !== 'string') fail('upsertTrip', raw);
  return { outcome, existingSpec };
}

function decodeUpdateItem(raw: unknown): UpdateItemResult {
  const [code, picked, line] = arrayOf('updateItem', raw, 3);
  if (code === 0) return { ok: true, pickedCents: Number(picked), lineCents: Number(line) };
  const error = ITEM_ERRORS[(code as number) - 1];
  if (error === undefined) fail('updateItem', raw);
  return { ok: false, error };
}

/** A single code that indexes `outcomes` (closeTrip, flagLate). */
function decodeCodeOnly<T>(name: ScriptName, outcomes: readonly T[], raw: unknown): T {
  const [code] = arrayOf(name, raw, 1);
  const result = outcomes[code as number];
  if (result === undefined) fail(name, raw);
  return result;
}

function decodeReadTrip(raw: unknown): TripView | undefined {
  if (raw === '' || raw === null) return undefined;
  if (typeof raw !== 'string') fail('readTrip', raw);
  const parsed = JSON.parse(raw) as { trip: Record<string, string>; authorizations: unknown };
  const authorizations = Array.isArray(parsed.authorizations) ? parsed.authorizations : [];
  return { trip: parsed.trip, authorizations } as TripView;
}

/**
 * reverseAuthorization and clearAuthorization: code 0 (applied) or 1 (replayed) with the
 * authorization's JSON state, else 2 + the index of the error in `errors`.
 */
function decodeStateChange<S, E>(
  name: ScriptName,
  errors: readonly E[],
  raw: unknown,
): { ok: true; replayed: boolean; state: S } | { ok: false; error: E } {
  const [code, state] = arrayOf(name, raw, 2);
  if (code === 0 || code === 1)
    return { ok: true, replayed: code === 1, state: JSON.parse(String(state)) as S };
  const error = errors[(code as number) - 2];
  if (error === undefined) fail(name, raw);
  return { ok: false, error };
}

const EXPIRE_OUTCOMES = ['released', 'already_released', 'nothing_held', 'shopper_mismatch'] as const;

function decodeExpireHold(raw: unknown): ExpireHoldResult {
  const [code, released] = arrayOf('expireHold', raw, 2);
  if (typeof released !== 'number' || released < 0) fail('expireHold', raw);
  const outcome = EXPIRE_OUTCOMES[code as number];
  if (outcome === undefined) fail('expireHold', raw);
  if (outcome === 'released' || outcome === 'already_released') return { outcome, releasedCents: released };
  return { outcome };
}

const DECODERS: { readonly [N in keyof ScriptResults]: (raw: unknown) => ScriptResults[N] } = {
  authorizeSwipe: decodeAuthorize,
  upsertTrip: decodeUpsert,
  updateItem: decodeUpdateItem,
  closeTrip: (raw) => decodeCodeOnly('closeTrip', CLOSE, raw),
  readTrip: decodeReadTrip,
  reverseAuthorization: (raw) =>
    decodeStateChange<AuthorizationState, ReverseError>('reverseAuthorization', REVERSE_ERRORS, raw),
  clearAuthorization: (raw) =>
    decodeStateChange<ClearingState, ClearError>('clearAuthorization', CLEAR_ERRORS, raw),
  expireHold: decodeExpireHold,
  flagLate: (raw) => decodeCodeOnly('flagLate', FLAG_LATE, raw),
};

type ReverseError = (typeof REVERSE_ERRORS)[number];
type ClearError = (typeof CLEAR_ERRORS)[number];

export function decodeScriptResult<N extends keyof ScriptResults & ScriptName>(
  name: N,
  raw: unknown,
): ScriptResults[N] {
  const decode = DECODERS[name] as ((raw: unknown) => ScriptResults[N]) | undefined;
  if (decode === undefined) return fail(name, raw);
  return decode(raw);
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
