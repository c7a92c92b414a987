// The routing seam between regions (CONTRACT §8, docs/regions.md): every route of the
// api is wrapped; the local handler runs first and unchanged, and only an answer that
// says "the shopper or card is not here" looks up the home region and forwards the
// original request there, one attempt under REGION_FORWARD_TIMEOUT_MS. The home's
// status, body and the headers that matter come back unchanged. No answer in time:
// a swipe is answered by this region's fail-open policy (journaled for the home),
// any other call is a retryable 503. A request that came over the channel is
// verified and answered where it arrived, never forwarded again (the loop guard).
import { validateHeaderValue } from 'node:http';
import type { Config } from '../config/config.js';
import { parseShopperId } from '../domain/fields.js';
import type { JsonValue } from '../domain/json.js';
import { errorResponse, type HttpResponse } from '../http/errors.js';
import { readJsonBody } from '../http/jsonBody.js';
import type { RegionUnreachable, Request, Route } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, RegionForwardOutcome } from '../observability/metrics.js';
import {
  forwardedAuthorizationId,
  REGION_ORIGIN_HEADER,
  REGION_SIGNATURE_HEADER,
  REGION_TIMESTAMP_HEADER,
  signForward,
  verifyForward,
} from './channel.js';
import { cardKey, type Directory, type Home, type HomeKey, shopperKey } from './directory.js';
import { PeerFailure, type PeerLink, type PeerReply } from './peerLink.js';

/** Set by a home region on an answer that says the key is not there either (the directory was stale). */
export const REGION_NOT_HERE_HEADER = 'x-region-not-here';
const CHANNEL_HEADERS = [REGION_ORIGIN_HEADER, REGION_TIMESTAMP_HEADER, REGION_SIGNATURE_HEADER] as const;

/** Swipe decision endpoints: an unreachable home is answered by the fail-open policy. */
const DECISION_LABELS: ReadonlySet<string> = new Set([
  '/v1/authorizations',
  '/v1/processors/stripe/authorizations',
  '/v1/processors/marqeta/jit',
  '/v1/processors/lithic/asa',
]);
const SIGNED_REF_LABELS: ReadonlySet<string> = new Set([
  '/v1/authorizations/reversals',
  '/v1/authorizations/clearings',
]);

export interface SeamDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly directory: Directory;
  readonly links: ReadonlyMap<string, PeerLink>;
  /** A trip or card was created here: tell the peers (best effort, not awaited). */
  readonly announce: (keys: readonly { key: HomeKey; shopperId?: string }[]) => void;
}

/** What a 201 on a trip or card PUT makes this region the home of. */
function createdKeys(route: Route, req: Request): { key: HomeKey; shopperId?: string }[] {
  const [shopper = '', a = '', b = ''] = req.params;
  if (route.label === '/v1/shoppers/:shopper_id/trips/:trip_id') return [{ key: shopperKey(shopper) }];
  if (route.label === '/v1/shoppers/:shopper_id/cards/:processor/:card_id')
    return [{ key: cardKey(a, b), shopperId: shopper }];
  return [];
}

/** Headers of the channel, as verifyForward reads them ('' from uWS = absent). */
function channelHeaders(values: readonly string[], at: number): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  CHANNEL_HEADERS.forEach((name, i) => {
    const v = values[at + i];
    out[name] = v === undefined || v === '' ? undefined : v;
  });
  return out;
}

/** The request's path, rebuilt from the route's pattern and its parameters (ids have no '/'). */
export function pathOf(route: Route, params: readonly string[]): string {
  let i = 0;
  return route.pattern.replace(/:[A-Za-z_]+/g, () => params[i++] ?? '');
}

function methodOf(route: Route): string {
  return route.method === 'del' ? 'DELETE' : route.method.toUpperCase();
}

/** The shopper_id of a signed JSON body, when it has a valid one. */
function bodyShopper(body: Buffer): string | undefined {
  const json = readJsonBody(body);
  if (!json.ok || json.json === null || typeof json.json !== 'object' || Array.isArray(json.json))
    return undefined;
  const id = parseShopperId((json.json as { [k: string]: JsonValue })['shopper_id']);
  return id.ok ? id.value : undefined;
}

/** The directory key when this answer says "not here" (never on a success). */
export function notHereKey(route: Route, req: Request, res: HttpResponse): HomeKey | undefined {
  if (res.notHere !== undefined) return res.notHere;
  if (res.status === 402 && route.label === '/v1/authorizations') {
    if (!res.body.includes('"reason":"UNKNOWN_SHOPPER"')) return undefined;
  } else if (res.status === 404 && SIGNED_REF_LABELS.has(route.label)) {
    if (!res.body.includes('"authorization_not_found"')) return undefined;
  } else if (
    res.status === 404 &&
    route.method !== 'put' &&
    route.label.startsWith('/v1/shoppers/:shopper_id/trips/')
  ) {
    return res.body.includes('"trip_not_found"') ? shopperKey(req.params[0] ?? '') : undefined;
  } else return undefined;
  const shopper = bodyShopper(req.body);
  return shopper === undefined ? undefined : shopperKey(shopper);
}

function sendable(name: string, value: string): boolean {
  try {
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}

/** The original request's headers that authenticate it and key its idempotency, plus the channel's. */
function forwardHeaders(deps: SeamDeps, route: Route, req: Request, path: string): Record<string, string> {
  const h = req.headers;
  const out: Record<string, string> = { 'content-type': h.contentType || 'application/json' };
  // A value node:http refuses to send is left out (the home judges the request without
  // it); sent, it would fail the forward as if the home were silent, and fail open.
  const add = (name: string, value: string): void => {
    if (value !== '' && sendable(name, value)) out[name] = value;
  };
  add('x-signature', h.signature);
  add('idempotency-key', h.idempotencyKey);
  add('authorization', h.authorization);
  add('traceparent', h.traceparent);
  add('tracestate', h.tracestate);
  add('x-request-id', h.requestId);
  const names = route.headers ?? [];
  for (let i = 0; i < names.length; i++) add(names[i] as string, h.extra?.[i] ?? '');
  const nowS = Math.floor(Date.now() / 1000);
  const channel = { method: methodOf(route), path, body: req.body };
  return { ...out, ...signForward(deps.config.regions.secrets, deps.config.regions.region, channel, nowS) };
}

/** The home's answer as this region gives it: status, body, Idempotent-Replayed, Stripe-Version. */
function replyResponse(reply: PeerReply): HttpResponse {
  const stripeVersion = reply.headers['stripe-version'];
  return {
    status: reply.status,
    body: reply.body.toString('utf8'),
    replayed: reply.headers['idempotent-replayed'] === 'true',
    ...(typeof stripeVersion === 'string' ? { headers: [['Stripe-Version', stripeVersion] as const] } : {}),
  };
}

type Forwarded =
  | { readonly kind: 'answered'; readonly response: HttpResponse }
  | { readonly kind: 'not_home' }
  /** `authorizationId`: the id the forward carried (the home may have decided under it). */
  | { readonly kind: 'unreachable'; readonly authorizationId?: string };

/** The id a forwarded swipe is decided under at the home: from the channel headers and Idempotency-Key it carries. */
function authorizationIdOf(
  route: Route,
  headers: Readonly<Record<string, string | undefined>>,
  idempotencyKey: string,
): string | undefined {
  const sig = headers[REGION_SIGNATURE_HEADER];
  const ts = headers[REGION_TIMESTAMP_HEADER];
  if (!DECISION_LABELS.has(route.label) || sig === undefined || ts === undefined) return undefined;
  return forwardedAuthorizationId(sig, Number(ts), idempotencyKey);
}

/** One attempt at the home region, measured and counted. */
async function forward(
  deps: SeamDeps,
  route: Route,
  req: Request,
  home: Home,
  timeoutMs = deps.config.regions.forwardTimeoutMs,
): Promise<Forwarded> {
  const link = deps.links.get(home.region);
  if (link === undefined) return { kind: 'not_home' };
  if (timeoutMs <= 0) return { kind: 'unreachable' }; // the budget went on finding the home
  const path = pathOf(route, req.params);
  const headers = forwardHeaders(deps, route, req, path);
  // The Idempotency-Key as sent (an unsendable value is left out: the home sees none either).
  const authorizationId = authorizationIdOf(route, headers, headers['idempotency-key'] ?? '');
  const started = process.hrtime.bigint();
  let outcome: RegionForwardOutcome = 'answered';
  try {
    const reply = await link.send({ method: methodOf(route), path, headers, body: req.body, timeoutMs });
    deps.metrics.regionPeerUp.set({ peer: home.region }, 1);
    if (reply.headers[REGION_NOT_HERE_HEADER] !== undefined) outcome = 'not_home';
    return outcome === 'not_home'
      ? { kind: 'not_home' }
      : { kind: 'answered', response: replyResponse(reply) };
  } catch (err) {
    outcome = err instanceof PeerFailure ? err.outcome : 'error';
    if (outcome !== 'refused') deps.metrics.regionPeerUp.set({ peer: home.region }, 0);
    deps.logger.warn(
      { peer: home.region, outcome, err: (err as Error).message },
      'forward to home region failed',
    );
    return authorizationId === undefined ? { kind: 'unreachable' } : { kind: 'unreachable', authorizationId };
  } finally {
    deps.metrics.regionForward.inc({ peer: home.region, outcome });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    deps.metrics.regionForwardDuration.observe({ peer: home.region }, seconds);
  }
}

/** The local "not here" is the answer after all: a swipe's UNKNOWN_SHOPPER decline is counted here (its handler left it). */
function keptLocal(deps: SeamDeps, route: Route, local: HttpResponse): HttpResponse {
  if (DECISION_LABELS.has(route.label))
    deps.metrics.decisions.inc({ decision: 'declined', reason: 'UNKNOWN_SHOPPER', mode: 'normal' });
  return local;
}

/** The lookup's answer, or at `endMs` what this pod already knew (the lookup goes on, and fills the directory). */
function withinBudget(
  lookup: Promise<Home | undefined>,
  endMs: number,
  known: () => Home | undefined,
): Promise<Home | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Home | undefined>((resolve) => {
    timer = setTimeout(() => resolve(known()), Math.max(0, endMs - Date.now()));
  });
  return Promise.race([lookup, late]).finally(() => clearTimeout(timer));
}

/** "Not here" locally: the home's answer, else (home silent) the fail-open policy or a 503. */
async function answerFromHome(
  deps: SeamDeps,
  route: Route,
  req: Request,
  local: HttpResponse,
  key: HomeKey,
): Promise<HttpResponse> {
  // One budget for finding the home and asking it, so a stale entry (peers asked, then the
  // home asked) still leaves the fail-open answer inside the processor's deadline.
  const endMs = Date.now() + deps.config.regions.forwardTimeoutMs;
  const home = await withinBudget(deps.directory.lookup(key), endMs, () => deps.directory.known(key));
  if (home === undefined) return keptLocal(deps, route, local); // nobody claims it: the decline stands
  const result = await forward(deps, route, req, home, endMs - Date.now());
  if (result.kind === 'answered') return result.response;
  if (result.kind === 'not_home') {
    void deps.directory.forget(key);
    return keptLocal(deps, route, local);
  }
  if (DECISION_LABELS.has(route.label)) {
    const unreachable: RegionUnreachable = {
      home: home.region,
      ...(home.shopperId === undefined ? {} : { shopperId: home.shopperId }),
      ...(result.authorizationId === undefined ? {} : { authorizationId: result.authorizationId }),
    };
    return route.handler({ ...req, regionUnreachable: unreachable });
  }
  return errorResponse('storage_unavailable', `the home region ${home.region} did not answer in time; retry`);
}

const TRIP_PUT_LABEL = '/v1/shoppers/:shopper_id/trips/:trip_id';

/**
 * A trip PUT for a shopper this region knows to live elsewhere goes to that home, so a shopper
 * keeps one home (and its one-open-trip rule). The home silent: undefined, the trip is created
 * here, which makes this region the shopper's home (announced).
 */
async function putAtHome(deps: SeamDeps, route: Route, req: Request): Promise<HttpResponse | undefined> {
  const home = await deps.directory.peek(shopperKey(req.params[0] ?? ''));
  if (home === undefined) return undefined;
  const result = await forward(deps, route, req, home);
  return result.kind === 'answered' ? result.response : undefined;
}

/** A request that came over the channel: verified, answered here, marked when it is not here either. */
async function answerForPeer(
  deps: SeamDeps,
  route: Route,
  req: Request,
  channel: Record<string, string | undefined>,
): Promise<HttpResponse> {
  const verdict = verifyForward(
    deps.config.regions.secrets,
    channel,
    { method: methodOf(route), path: pathOf(route, req.params), body: req.body },
    Math.floor(Date.now() / 1000),
  );
  if (!verdict.ok)
    return errorResponse('invalid_signature', `region channel signature refused (${verdict.code})`);
  // A forwarded swipe is decided under the id its forwarder would give a fail-open answer.
  const authorizationId = authorizationIdOf(route, channel, req.headers.idempotencyKey);
  const res = await route.handler(
    authorizationId === undefined ? req : { ...req, regionAuthorizationId: authorizationId },
  );
  if (res.status === 201 && route.method === 'put') deps.announce(createdKeys(route, req));
  if (notHereKey(route, req, res) === undefined) return res;
  return { ...res, headers: [...(res.headers ?? []), [REGION_NOT_HERE_HEADER, '1'] as const] };
}

/** The route with the seam in front of its handler; it also reads the channel's headers. */
export function withRegionSeam(deps: SeamDeps, route: Route): Route {
  const own = route.headers ?? [];
  const at = own.length;
  const handler = async (req: Request): Promise<HttpResponse> => {
    const values = req.headers.extra ?? [];
    if ((values[at] ?? '') !== '') return answerForPeer(deps, route, req, channelHeaders(values, at));
    if (route.method === 'put' && route.label === TRIP_PUT_LABEL) {
      const atHome = await putAtHome(deps, route, req);
      if (atHome !== undefined) return atHome;
    }
    const local = await route.handler(req);
    if (local.status === 201 && route.method === 'put') deps.announce(createdKeys(route, req));
    const key = notHereKey(route, req, local);
    return key === undefined ? local : answerFromHome(deps, route, req, local, key);
  };
  return { ...route, headers: [...own, ...CHANNEL_HEADERS], handler };
}
