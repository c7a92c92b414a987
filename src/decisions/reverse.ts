// POST /v1/authorizations/reversals (CONTRACT §2): signed like the webhook,
// releases part or all of an approved authorization back to its trip.
import { readSignedBody } from './signedBody.js';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { parseOptionalKey, parseShopperId } from '../domain/fields.js';
import { isObject } from '../domain/json.js';
import { parseAmountCents } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import type { Keys } from '../redis/keys.js';
import { decodeScriptResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';

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
    const signed = readSignedBody(req, config, now());
    if (!signed.ok) return signed.response;
    const body = signed.body;
    if (!isObject(body)) return errorResponse('invalid_request', 'body must be a JSON object');
    const txn = parseOptionalKey(body['transaction_id'], 'transaction_id');
    if (!txn.ok) return errorResponse('invalid_request', txn.message);
    if (txn.value === undefined) return errorResponse('invalid_request', 'transaction_id is required');
    const shopper = parseShopperId(body['shopper_id']);
    if (!shopper.ok) return errorResponse('invalid_request', shopper.message);
    const reversalId = parseOptionalKey(body['reversal_id'], 'reversal_id');
    if (!reversalId.ok) return errorResponse('invalid_request', reversalId.message);
    let amount = '';
    if (body['amount'] !== undefined && body['amount'] !== null) {
      const a = parseAmountCents(body['amount'], 'amount');
      if (!a.ok) return errorResponse('invalid_request', a.message);
      amount = String(a.value);
    }

    const p = keys.partition(shopper.value);
    const reversalKey = reversalId.value ?? '-';
    const raw = await scripts.run(
      'reverseAuthorization',
      [keys.idem(p, `t:${txn.value}`), keys.reversal(p, txn.value, reversalKey), keys.wal(p)],
      [
        now(),
        randomUUID(),
        shopper.value,
        txn.value,
        `${txn.value}:${reversalKey}`,
        amount,
        config.authorizationTtlS,
      ],
    );
    const result = decodeScriptResult('reverseAuthorization', raw);
    if (!result.ok) return errorResponse(result.error);
    return { ...jsonResponse(200, result.state), replayed: result.replayed };
  };
}
