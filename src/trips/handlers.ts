// Trip API (CONTRACT §3): bearer-token auth, one script call per write.
import type { Config } from '../config/config.js';
import { parsePathId } from '../domain/fields.js';
import { readJsonBody } from '../http/jsonBody.js';
import { ceilingCents, LINE_CENTS_MAX } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import type { Keys } from '../redis/keys.js';
import { DECLINE_REASONS, type TripView } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import {
  canonicalSpec,
  conflictMessage,
  parseItemUpdate,
  parseTripSpec,
  tripHashFields,
  tripItemEntries,
} from './tripRequest.js';
import * as script from '../redis/commands.js';

export interface TripDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly authorized: (authorizationHeader: string | undefined) => boolean;
  readonly now?: () => number;
  /** Stand-in knowledge for the fail-open policy (src/failopen/standIn.ts). */
  readonly standIn?: {
    learnTrip(shopperId: string, open: boolean, allowanceCents: number | undefined, nowMs: number): void;
    forgetAllowance(shopperId: string): void;
  };
}

function int(v: string | undefined): number {
  return v === undefined || v === '' ? 0 : Number(v);
}

export function tripView(tripId: string, view: TripView): Record<string, unknown> {
  const t = view.trip;
  const hold = int(t['hold_cents']);
  const ceiling = ceilingCents({
    pickedCents: int(t['picked_cents']),
    taxRateBps: int(t['tax_bps']),
    toleranceBps: int(t['tol_bps']),
    toleranceCents: int(t['tol_cents']),
    holdCents: hold < 0 ? null : hold,
  });
  const authorized = int(t['authorized_cents']);
  return {
    trip_id: tripId,
    shopper_id: t['shopper'],
    status: t['status'],
    currency: t['currency'],
    estimated_cents: int(t['est_cents']),
    picked_cents: int(t['picked_cents']),
    authorized_cents: authorized,
    ceiling_cents: ceiling,
    allowance_cents: ceiling - authorized,
    authorizations: view.authorizations.map((a) => {
      const code = Number(a['code']);
      return {
        authorization_id: a['authorization_id'],
        transaction_id: a['transaction_id'] === '' ? null : a['transaction_id'],
        decision: a['decision'],
        reason: code === 0 ? null : DECLINE_REASONS[code - 1],
        amount_cents: a['amount_cents'],
        reversed_cents: a['reversed_cents'],
        mode: a['mode'],
        at_ms: a['at_ms'],
      };
    }),
  };
}

type TripHandler = (req: Request) => Promise<HttpResponse>;

/** What every trip route shares: its dependencies, the clock, the script calls, auth and path ids. */
interface TripRoute {
  readonly deps: TripDeps;
  readonly now: () => number;
  readonly redis: script.ScriptDeps;
  guard(req: Request): GuardedPath | HttpResponse;
  read(shopperId: string, tripId: string): Promise<TripView | undefined>;
}

interface GuardedPath {
  readonly shopperId: string;
  readonly tripId: string;
  readonly p: number;
}

export function createTripHandlers(deps: TripDeps): {
  put: TripHandler;
  updateItem: TripHandler;
  close: TripHandler;
  get: TripHandler;
} {
  const { config, keys, scripts } = deps;
  const redis: script.ScriptDeps = { config, keys, scripts };
  const route: TripRoute = {
    deps,
    now: deps.now ?? Date.now,
    redis,
    guard: (req) => guardTripPath(deps, req),
    read: (shopperId, tripId) => script.readTrip(redis, shopperId, tripId, script.TRIP_AUTHORIZATIONS_KEPT),
  };
  return {
    put: (req) => putTrip(route, req),
    updateItem: (req) => updateTripItem(route, req),
    close: (req) => closeTrip(route, req),
    get: (req) => getTrip(route, req),
  };
}

/** Auth and path ids, shared by every trip route. */
function guardTripPath(deps: TripDeps, req: Request): GuardedPath | HttpResponse {
  if (!deps.authorized(req.headers.authorization === '' ? undefined : req.headers.authorization)) {
    return errorResponse('unauthorized');
  }
  const shopper = parsePathId(req.params[0] ?? '', 'shopper_id');
  if (!shopper.ok) return errorResponse('invalid_request', shopper.message);
  const trip = parsePathId(req.params[1] ?? '', 'trip_id');
  if (!trip.ok) return errorResponse('invalid_request', trip.message);
  return { shopperId: shopper.value, tripId: trip.value, p: deps.keys.partition(shopper.value) };
}

async function putTrip(route: TripRoute, req: Request): Promise<HttpResponse> {
  const g = route.guard(req);
  if ('status' in g) return g;
  const body = readJsonBody(req.body);
  if (!body.ok) return body.response;
  const spec = parseTripSpec(body.json, route.deps.config);
  if (!spec.ok) return errorResponse('invalid_request', spec.message);
  const s = spec.value;
  const { json, hash } = canonicalSpec(s);
  const nowMs = route.now();
  const event = JSON.stringify({
    trip_id: g.tripId,
    shopper_id: g.shopperId,
    partition: g.p,
    ...s,
    spec: json,
    spec_hash: hash,
    at_ms: nowMs,
  });
  const { outcome, existingSpec } = await script.upsertTrip(route.redis, {
    shopperId: g.shopperId,
    tripId: g.tripId,
    nowMs,
    specHash: hash,
    specJson: json,
    event,
    tripFields: tripHashFields(s),
    items: tripItemEntries(s),
  });
  if (outcome === 'trip_conflict') {
    return errorResponse('trip_conflict', conflictMessage(g.shopperId, g.tripId, existingSpec, s));
  }
  if (outcome === 'open_trip_exists')
    return errorResponse('open_trip_exists', 'the shopper has another open trip');
  const view = await route.read(g.shopperId, g.tripId);
  if (view === undefined) return errorResponse('internal_error');
  // A trip created now is the shopper's latest, and open; its allowance moves with every pick,
  // so it is not kept. An identical PUT teaches nothing (it may be an old trip of the shopper's).
  if (outcome === 'created') route.deps.standIn?.learnTrip(g.shopperId, true, undefined, nowMs);
  return jsonResponse(outcome === 'created' ? 201 : 200, tripView(g.tripId, view));
}

async function updateTripItem(route: TripRoute, req: Request): Promise<HttpResponse> {
  const g = route.guard(req);
  if ('status' in g) return g;
  const itemId = parsePathId(req.params[2] ?? '', 'item_id');
  if (!itemId.ok) return errorResponse('invalid_request', itemId.message);
  const body = readJsonBody(req.body);
  if (!body.ok) return body.response;
  const update = parseItemUpdate(body.json);
  if (!update.ok) return errorResponse('invalid_request', update.message);
  const u = update.value;
  const result = await script.updateItem(route.redis, {
    shopperId: g.shopperId,
    tripId: g.tripId,
    itemId: itemId.value,
    nowMs: route.now(),
    status: u.status,
    quantityMilli: u.status === 'not_found' ? '' : u.quantityMilli,
    unitPriceCents: u.status === 'not_found' ? '' : (u.unitPriceCents ?? ''),
    replacementItemId: u.status === 'replaced' ? u.replacementItemId : '',
    customerApproved: u.customerApproved,
    lineCentsMax: LINE_CENTS_MAX,
  });
  if (!result.ok) {
    if (result.error === 'line_too_large') return errorResponse('invalid_request', 'line value is too large');
    return errorResponse(result.error);
  }
  route.deps.standIn?.forgetAllowance(g.shopperId);
  return jsonResponse(200, {
    trip_id: g.tripId,
    item_id: itemId.value,
    status: u.status,
    line_cents: result.lineCents,
    picked_cents: result.pickedCents,
  });
}

async function closeTrip(route: TripRoute, req: Request): Promise<HttpResponse> {
  const g = route.guard(req);
  if ('status' in g) return g;
  const nowMs = route.now();
  const result = await script.closeTrip(route.redis, g.shopperId, g.tripId, nowMs);
  if (result === 'trip_not_found') return errorResponse('trip_not_found');
  // Only a close that happened now: closing an old trip again says nothing of a newer one.
  if (result === 'closed') route.deps.standIn?.learnTrip(g.shopperId, false, undefined, nowMs);
  return viewOrNotFound(route, g);
}

async function getTrip(route: TripRoute, req: Request): Promise<HttpResponse> {
  const g = route.guard(req);
  if ('status' in g) return g;
  return viewOrNotFound(route, g);
}

async function viewOrNotFound(route: TripRoute, g: GuardedPath): Promise<HttpResponse> {
  const view = await route.read(g.shopperId, g.tripId);
  if (view === undefined) return errorResponse('trip_not_found');
  return jsonResponse(200, tripView(g.tripId, view));
}
