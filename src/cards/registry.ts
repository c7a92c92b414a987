// Processor cards (CONTRACT §7): PUT/DELETE /v1/shoppers/{shopper_id}/cards/{processor}/{card_id}
// with the trip API bearer, and the lookup on the request path. A card key lives in the
// partition of the card's own id (docs/processors.md, "Card registry").
import { parsePathId } from '../domain/fields.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import { readJsonBody } from '../http/jsonBody.js';
import type { Request } from '../http/server.js';
import { isObject } from '../domain/json.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { registerCard } from '../redis/commands.js';
import { isProcessor, type ProcessorName } from '../processors/common/swipe.js';

export interface CardDeps {
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly authorized: (authorizationHeader: string | undefined) => boolean;
  readonly now?: () => number;
}

export function createCardHandlers(deps: CardDeps) {
  const { keys, scripts, authorized } = deps;
  const now = deps.now ?? Date.now;

  function guard(
    req: Request,
  ): { shopperId: string; processor: ProcessorName; cardId: string } | HttpResponse {
    if (!authorized(req.headers.authorization === '' ? undefined : req.headers.authorization))
      return errorResponse('unauthorized');
    const shopper = parsePathId(req.params[0] ?? '', 'shopper_id');
    if (!shopper.ok) return errorResponse('invalid_request', shopper.message);
    const processor = req.params[1] ?? '';
    if (!isProcessor(processor))
      return errorResponse('invalid_request', 'processor must be stripe, marqeta or lithic');
    const card = parsePathId(req.params[2] ?? '', 'card_id');
    if (!card.ok) return errorResponse('invalid_request', card.message);
    return { shopperId: shopper.value, processor, cardId: card.value };
  }

  async function run(
    g: { shopperId: string; processor: ProcessorName; cardId: string },
    op: 'put' | 'delete',
  ) {
    return registerCard(
      { keys, scripts },
      { processor: g.processor, cardId: g.cardId, shopperId: g.shopperId, op, nowMs: now() },
    );
  }

  async function put(req: Request): Promise<HttpResponse> {
    const g = guard(req);
    if ('status' in g) return g;
    if (req.body.length > 0) {
      const body = readJsonBody(req.body);
      if (!body.ok) return body.response;
      if (!isObject(body.json)) return errorResponse('invalid_request', 'body must be a JSON object');
    }
    const outcome = await run(g, 'put');
    const view = { shopper_id: g.shopperId, processor: g.processor, card_id: g.cardId, status: 'active' };
    if (outcome === 'registered') return jsonResponse(201, view);
    if (outcome === 'identical') return jsonResponse(200, view);
    return errorResponse('card_conflict', `card ${g.cardId} belongs to another shopper`);
  }

  async function remove(req: Request): Promise<HttpResponse> {
    const g = guard(req);
    if ('status' in g) return g;
    const outcome = await run(g, 'delete');
    if (outcome === 'other_shopper')
      return errorResponse('not_found', `shopper ${g.shopperId} has no card ${g.cardId}`);
    return { status: 204, body: '' };
  }

  return { put, remove };
}
