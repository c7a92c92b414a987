// POST /v1/authorizations/reversals (CONTRACT §2): signed like the webhook,
// releases part or all of an approved authorization back to its trip.
import { readSignedAuthorizationRef, refuseSignatureUsedElsewhere } from './signedBody.js';
import type { Config } from '../config/config.js';
import { parseOptionalKey } from '../domain/fields.js';
import { parseAmountCents } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { reverseAuthorization } from '../redis/commands.js';

export interface ReverseDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly now?: () => number;
}

export function createReversalHandler(deps: ReverseDeps): (req: Request) => Promise<HttpResponse> {
  const { config, keys, scripts } = deps;
  const now = deps.now ?? Date.now;
  return async (req) => {
    // One clock reading per request: the signature window and the recorded time agree.
    const nowMs = now();
    const ref = readSignedAuthorizationRef(req, config, nowMs);
    if (!ref.ok) return ref.response;
    const { body, txn: transactionId, shopperId, signatureId } = ref;
    const reversalId = parseOptionalKey(body['reversal_id'], 'reversal_id');
    if (!reversalId.ok) return errorResponse('invalid_request', reversalId.message);
    let amount = '';
    if (body['amount'] !== undefined && body['amount'] !== null) {
      const a = parseAmountCents(body['amount'], 'amount');
      if (!a.ok) return errorResponse('invalid_request', a.message);
      amount = String(a.value);
    }

    const elsewhere = await refuseSignatureUsedElsewhere(
      scripts.client,
      keys,
      config,
      shopperId,
      signatureId,
      'reversals',
    );
    if (elsewhere !== undefined) return elsewhere;
    const reversalKey = reversalId.value ?? '-';
    const result = await reverseAuthorization(
      { config, keys, scripts },
      { shopperId, transactionId, reversalKey, amount, signature: signatureId, nowMs },
    );
    if (!result.ok) return errorResponse(result.error);
    return { ...jsonResponse(200, result.state), replayed: result.replayed };
  };
}
