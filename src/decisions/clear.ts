// POST /v1/authorizations/clearings (CONTRACT §2): signed like the webhook,
// posts the final settled amount of an approved authorization. The script
// (lua/clearAuthorization-3.lua) releases the hold, moves the trip's
// authorized total to the cleared amount and XADDs clearing.posted; the
// persister writes the ledger posting (docs/ledger.md).
import {
  refuseSignatureUsedElsewhere,
  type SignedRefDeps,
  signedAuthorizationRefHandler,
} from './signedBody.js';
import { parseRfc3339Ms } from '../domain/dates.js';
import { parseCurrency } from '../domain/fields.js';
import type { JsonValue } from '../domain/json.js';
import { parseAmountCents } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import type { ClearingState } from '../redis/results.js';
import { clearAuthorization } from '../redis/commands.js';

export type ClearDeps = SignedRefDeps;

/** 2000-01-01 .. 2100-01-01: anything outside is a malformed time, not a settlement. */
const CLEARED_AT_MIN_MS = 946_684_800_000;
const CLEARED_AT_MAX_MS = 4_102_444_800_000;

/** cleared_at: optional RFC 3339 time; absent = now. */
export function parseClearedAt(
  v: JsonValue | undefined,
  nowMs: number,
): { ok: true; value: number } | { ok: false; message: string } {
  if (v === undefined || v === null) return { ok: true, value: nowMs };
  const ms = typeof v === 'string' ? parseRfc3339Ms(v) : null;
  if (ms === null) {
    return {
      ok: false,
      message: 'cleared_at must be a real RFC 3339 date-time, e.g. 2026-11-21T18:04:05Z',
    };
  }
  if (ms < CLEARED_AT_MIN_MS || ms > CLEARED_AT_MAX_MS) {
    return { ok: false, message: 'cleared_at is out of range' };
  }
  return { ok: true, value: ms };
}

/** Fixed field order (cjson's is not stable), so a replay is byte-identical. */
export function clearingBody(s: ClearingState): Record<string, unknown> {
  return {
    status: s.status,
    authorization_id: s.authorization_id,
    transaction_id: s.transaction_id,
    trip_id: s.trip_id,
    currency: s.currency,
    amount_cents: s.amount_cents,
    reversed_cents: s.reversed_cents,
    released_cents: s.released_cents ?? 0,
    cleared_cents: s.cleared_cents,
    held_cents: s.held_cents,
    cleared_at_ms: s.cleared_at_ms ?? null,
  };
}

export function createClearingHandler(deps: ClearDeps): (req: Request) => Promise<HttpResponse> {
  return signedAuthorizationRefHandler(deps, async (ref, nowMs) => {
    const { body, txn: transactionId, shopperId, signatureId } = ref;
    const amount = parseAmountCents(body['amount'], 'amount');
    if (!amount.ok) return errorResponse('invalid_request', amount.message);
    const clearedAt = parseClearedAt(body['cleared_at'], nowMs);
    if (!clearedAt.ok) return errorResponse('invalid_request', clearedAt.message);
    let currency = '';
    if (body['currency'] !== undefined && body['currency'] !== null) {
      const c = parseCurrency(body['currency']);
      if (!c.ok) return errorResponse('invalid_request', c.message);
      currency = c.value;
    }

    const elsewhere = await refuseSignatureUsedElsewhere(deps, ref, 'clearings');
    if (elsewhere !== undefined) return elsewhere;
    const result = await clearAuthorization(deps, {
      shopperId,
      transactionId,
      clearedCents: amount.value,
      clearedAtMs: clearedAt.value,
      currency,
      signature: signatureId,
      nowMs,
    });
    if (!result.ok) {
      if (result.error === 'amount_exceeds_allowance' || result.error === 'authorization_not_approved') {
        // Not applied, never lost: the script recorded it for review (clearing.flagged).
        const why =
          result.error === 'amount_exceeds_allowance'
            ? 'amount is above what the authorization still holds plus the trip slack'
            : 'the authorization was not approved';
        return errorResponse(result.error, `${why}; the clearing is recorded and flagged for review`);
      }
      return errorResponse(result.error);
    }
    return { ...jsonResponse(200, clearingBody(result.state)), replayed: result.replayed };
  });
}
