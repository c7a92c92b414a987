// POST /v1/authorizations/reversals (CONTRACT §2): signed like the webhook,
// releases part or all of an approved authorization back to its trip.
import {
  refuseSignatureUsedElsewhere,
  type SignedRefDeps,
  signedAuthorizationRefHandler,
} from './signedBody.js';
import { parseOptionalKey } from '../domain/fields.js';
import { parseAmountCents } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import { reverseAuthorization } from '../redis/commands.js';

export type ReverseDeps = SignedRefDeps;

export function createReversalHandler(deps: ReverseDeps): (req: Request) => Promise<HttpResponse> {
  return signedAuthorizationRefHandler(deps, async (ref, nowMs) => {
    const { body, txn: transactionId, shopperId, signatureId } = ref;
    const reversalId = parseOptionalKey(body['reversal_id'], 'reversal_id');
    if (!reversalId.ok) return errorResponse('invalid_request', reversalId.message);
    let amount = '';
    if (body['amount'] !== undefined && body['amount'] !== null) {
      const a = parseAmountCents(body['amount'], 'amount');
      if (!a.ok) return errorResponse('invalid_request', a.message);
      amount = String(a.value);
    }

    const elsewhere = await refuseSignatureUsedElsewhere(deps, ref, 'reversals');
    if (elsewhere !== undefined) return elsewhere;
    const reversalKey = reversalId.value ?? '-';
    const result = await reverseAuthorization(deps, {
      shopperId,
      transactionId,
      reversalKey,
      amount,
      signature: signatureId,
      nowMs,
    });
    if (!result.ok) return errorResponse(result.error);
    return { ...jsonResponse(200, result.state), replayed: result.replayed };
  });
}
