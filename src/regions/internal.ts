// The internal channel's own endpoints (CONTRACT §8, docs/regions.md), signed like a
// forwarded request and refused without a valid channel signature:
// - GET  /internal/regions/home/shopper/:shopper          is this shopper's trip here?
// - GET  /internal/regions/home/card/:processor/:card      is this card registered here (and whose)?
// - POST /internal/regions/announce   {"region","keys":[{"key","shopper_id"?}]}   homes, learned
// - POST /internal/regions/replay     one fail-open journal entry given elsewhere, applied here
import type { Config } from '../config/config.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import { readJsonBody } from '../http/jsonBody.js';
import type { Request, Route } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import type { RedisClient } from '../redis/client.js';
import { type FailOpenApproval, lookupCard, replayFailOpen } from '../redis/commands.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { REPLAY_DEFER_MAX_MS } from '../failopen/replayer.js';
import {
  REGION_ORIGIN_HEADER,
  REGION_SIGNATURE_HEADER,
  REGION_TIMESTAMP_HEADER,
  verifyForward,
} from './channel.js';
import type { Directory } from './directory.js';

const CHANNEL_HEADERS = [REGION_ORIGIN_HEADER, REGION_TIMESTAMP_HEADER, REGION_SIGNATURE_HEADER] as const;
/** Keys in one announcement. */
export const ANNOUNCE_KEYS_MAX = 1000;
const INTERNAL_BODY_BYTES_MAX = 256 * 1024;

export interface InternalDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly keys: Keys;
  /** The trip API's connection and runner (not the deadline-bound decision one). */
  readonly redis: RedisClient;
  readonly scripts: ScriptRunner;
  readonly directory: Directory;
}

type InternalHandler = (req: Request, origin: string) => Promise<HttpResponse>;

/** Verifies the channel signature, then runs the handler with the origin region's name. */
function signed(deps: InternalDeps, route: Omit<Route, 'handler' | 'headers'>, h: InternalHandler): Route {
  const handler = async (req: Request): Promise<HttpResponse> => {
    const v = req.headers.extra ?? [];
    const headers = Object.fromEntries(CHANNEL_HEADERS.map((n, j) => [n, v[j] === '' ? undefined : v[j]]));
    let i = 0;
    const path = route.pattern.replace(/:[A-Za-z_]+/g, () => req.params[i++] ?? '');
    const method = route.method.toUpperCase();
    const verdict = verifyForward(
      deps.config.regions.secrets,
      headers,
      { method, path, body: req.body },
      Math.floor(Date.now() / 1000),
    );
    if (!verdict.ok)
      return errorResponse('invalid_signature', `region channel signature refused (${verdict.code})`);
    return h(req, verdict.origin);
  };
  return { ...route, headers: CHANNEL_HEADERS, handler };
}

async function shopperHome(deps: InternalDeps, req: Request): Promise<HttpResponse> {
  const shopperId = req.params[0] ?? '';
  const p = deps.keys.partition(shopperId);
  const trip = await deps.redis.hget(deps.keys.shopper(p, shopperId), 'trip');
  return jsonResponse(200, { home: trip !== null, region: deps.config.regions.region });
}

async function cardHome(deps: InternalDeps, req: Request): Promise<HttpResponse> {
  const card = await lookupCard(deps, req.params[0] ?? '', req.params[1] ?? '');
  const home = card.status === 'active';
  return jsonResponse(200, {
    home,
    region: deps.config.regions.region,
    ...(home ? { shopper_id: card.shopperId } : {}),
  });
}

/** Homes announced by a peer (after a trip or card was created there, or a takeover). */
async function announced(deps: InternalDeps, req: Request, origin: string): Promise<HttpResponse> {
  const json = readJsonBody(req.body);
  if (!json.ok) return json.response;
  const body = json.json as { region?: unknown; keys?: unknown };
  const region = body.region;
  if (typeof region !== 'string' || !Array.isArray(body.keys) || body.keys.length > ANNOUNCE_KEYS_MAX)
    return errorResponse('invalid_request', `announce needs region and at most ${ANNOUNCE_KEYS_MAX} keys`);
  // A region announces only its own homes: the signer, never a third region or a made-up name.
  if (region !== origin)
    return errorResponse('invalid_request', `region ${origin} may only announce its own homes`);
  let learned = 0;
  for (const k of body.keys as { key?: unknown; shopper_id?: unknown }[]) {
    if (typeof k?.key !== 'string' || !/^(s:[^:]+|c:[a-z]+:[^:]+)$/.test(k.key)) continue;
    if (region === deps.config.regions.region) await deps.directory.forget(k.key);
    else
      await deps.directory.learn(k.key, {
        region,
        ...(typeof k.shopper_id === 'string' ? { shopperId: k.shopper_id } : {}),
      });
    learned++;
  }
  return jsonResponse(200, { learned });
}

/** A fail-open approval another region gave for a shopper of ours: applied as our own journal would. */
async function replayed(deps: InternalDeps, req: Request, origin: string): Promise<HttpResponse> {
  const json = readJsonBody(req.body);
  if (!json.ok) return json.response;
  const e = JSON.parse(req.body.toString('utf8')) as FailOpenApproval; // exact integers: validated below
  if (
    typeof e.id !== 'string' ||
    typeof e.shopper !== 'string' ||
    !Number.isSafeInteger(e.amount) ||
    e.amount <= 0
  )
    return errorResponse('invalid_request', 'replay needs a fail-open journal entry');
  const nowMs = Date.now();
  const result = await replayFailOpen(deps, e, nowMs, nowMs - e.at < REPLAY_DEFER_MAX_MS);
  deps.logger.info(
    { authorization_id: e.id, shopper_id: e.shopper, from_region: origin, outcome: result.code },
    'fail-open approval given in another region replayed here',
  );
  return jsonResponse(200, result);
}

export function internalRoutes(deps: InternalDeps): Route[] {
  const get = { method: 'get', bodyBytesMax: 0, requireJson: false } as const;
  const post = { method: 'post', bodyBytesMax: INTERNAL_BODY_BYTES_MAX, requireJson: true } as const;
  const shopper = '/internal/regions/home/shopper/:shopper';
  const card = '/internal/regions/home/card/:processor/:card';
  return [
    signed(deps, { ...get, pattern: shopper, label: shopper, paramCount: 1 }, (r) => shopperHome(deps, r)),
    signed(deps, { ...get, pattern: card, label: card, paramCount: 2 }, (r) => cardHome(deps, r)),
    signed(
      deps,
      { ...post, pattern: '/internal/regions/announce', label: '/internal/regions/announce', paramCount: 0 },
      (r, origin) => announced(deps, r, origin),
    ),
    signed(
      deps,
      {
        ...post,
        pattern: '/internal/regions/replay',
        label: '/internal/regions/replay',
        paramCount: 0,
        commitsState: true,
      },
      (r, origin) => replayed(deps, r, origin),
    ),
  ];
}
