// uWebSockets.js plumbing: routes, header capture, bounded body reading, abort
// safety, JSON responses, per-route metrics. Handlers never see uWS objects.
import { createRequire } from 'node:module';
import uWS from 'uWebSockets.js';
import { type Logger, REQUEST_ID_HEADER } from '../observability/logger.js';
import type { LoadMonitor } from './loadMonitor.js';
import type { Metrics } from '../observability/metrics.js';
import { errorResponse, type HttpResponse, statusLine } from './errors.js';

/** Headers the handlers may read; uWS request objects die when the handler returns. */
export interface RequestHeaders {
  readonly contentType: string;
  readonly contentLength: string;
  readonly signature: string;
  readonly idempotencyKey: string;
  readonly authorization: string;
  readonly traceparent: string;
  readonly tracestate: string;
  readonly requestId: string;
  /** Values of the route's `headers` (Route.headers), in that order; '' when absent. */
  readonly extra?: readonly string[];
}

export interface Request {
  readonly params: readonly string[];
  readonly headers: RequestHeaders;
  readonly body: Buffer;
  /** hrtime when the request line arrived. */
  readonly startedNs: bigint;
  /** Set by the region seam (src/regions/routing.ts): the home region did not answer in time. */
  readonly regionUnreachable?: RegionUnreachable;
  /**
   * Set by the region seam only, on a swipe that came over the verified channel: the id a new
   * decision here takes (forwardedAuthorizationId), the one the forwarding region gives its
   * fail-open answer under should this decision's answer reach it too late. Nothing a request
   * carries sets it.
   */
  readonly regionAuthorizationId?: string;
}

/** The swipe's home region is silent: the fail-open policy answers it here, journaled for that home. */
export interface RegionUnreachable {
  readonly home: string;
  /** The card's shopper, when the directory knows it (processor swipes). */
  readonly shopperId?: string;
  /** The id the forward to the home carried (forwardedAuthorizationId): the fail-open answer's. */
  readonly authorizationId?: string;
}

export type Handler = (req: Request) => Promise<HttpResponse> | HttpResponse;

export interface Route {
  readonly method: 'get' | 'post' | 'put' | 'del';
  readonly pattern: string;
  /** Route template used as the metric label (bounded cardinality). */
  readonly label: string;
  readonly paramCount: number;
  /** 0 = no body expected. */
  readonly bodyBytesMax: number;
  readonly requireJson: boolean;
  readonly handler: Handler;
  /** More request headers this route reads (lower case), e.g. a processor's signature headers. */
  readonly headers?: readonly string[];
  /** Called with the response just before it is written (metrics that belong to one route). */
  readonly onResponse?: (req: Request, res: HttpResponse) => void;
  /**
   * The handler commits state (a decision, a reversal, a trip write): it runs
   * one loop turn later, after uWS has parsed the rest of the bytes that came
   * with the request. A request pipelined behind it makes uWS abort this one
   * (it closes the connection); it is then refused before anything is decided,
   * instead of being decided with its answer lost (docs/deploy.md, "What the ingress must speak").
   */
  readonly commitsState?: boolean;
  /** false: never shed by admission control (health and readiness probes). Default true. */
  readonly admission?: boolean;
  /**
   * Checks on the headers alone, before the body is hashed or parsed (a forged
   * signature's timestamp, say): a response refuses the request, whose body is
   * then read and dropped without being kept.
   */
  readonly precheck?: (headers: RequestHeaders) => HttpResponse | undefined;
}

/**
 * Fails boot when the native uWS binary did not load: the package silently
 * falls back to a slow pure-JS server otherwise.
 */
export function assertNativeUws(): string {
  const require = createRequire(import.meta.url);
  require('uWebSockets.js');
  const binary = Object.keys(require.cache).find((k) => /uws_[a-z0-9]+_[a-z0-9]+_\d+\.node$/.test(k));
  if (binary === undefined || typeof (uWS as unknown as { getParts?: unknown }).getParts !== 'function') {
    throw new Error(
      `uWebSockets.js native binary did not load for node ${process.version} (ABI ${process.versions.modules}); ` +
        'refusing to start on the slow JS fallback',
    );
  }
  return binary;
}

const EMPTY = Buffer.alloc(0);
const NO_EXTRA: readonly string[] = [];

export interface ServerOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Admission control (docs/failopen.md "Overload is not a storage failure"); none: every request is admitted. */
  readonly load?: LoadMonitor;
  /** A body not whole by then: 408 and the connection closed, so a trickle cannot hold a slot. */
  readonly bodyReadTimeoutMs?: number;
}

export class HttpServer {
  readonly app = uWS.App();
  private listenSocket: uWS.us_listen_socket | undefined;
  private inFlight = 0;
  private draining = false;

  constructor(private readonly options: ServerOptions) {}

  route(route: Route): this {
    this.app[route.method](route.pattern, (res, req) => this.accept(route, res, req));
    return this;
  }

  /** JSON 404/405 for everything no route claims. */
  fallback(knownPrefixes: readonly string[]): this {
    this.app.any('/*', (res, req) => {
      const url = req.getUrl();
      const known = knownPrefixes.some((p) => url.startsWith(p));
      const response = known ? errorResponse('method_not_allowed') : errorResponse('not_found');
      const label = known ? 'method_not_allowed' : 'unmatched';
      this.options.metrics.httpRequests.inc({ route: label, status: String(response.status) });
      res.cork(() => {
        res.writeStatus(statusLine(response.status)).writeHeader('Content-Type', 'application/json');
        res.end(response.body, this.draining);
      });
    });
    return this;
  }

  private accept(route: Route, res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    const x: Exchange = {
      route,
      res,
      params: routeParams(route, req),
      headers: requestHeaders(route, req),
      startedNs: process.hrtime.bigint(),
      load: route.admission === false ? undefined : this.options.load,
      aborted: false,
      answered: false,
      started: false,
      heldRequest: false,
      heldBytes: 0,
      bodyTimer: undefined,
    };
    res.onAborted(() => {
      x.aborted = true;
      // Aborted before the body was complete: the handler will never run, so
      // this request is no longer in flight.
      if (!x.started && !x.answered) this.dropUndecided(x);
    });
    this.inFlight++;
    const declared = x.headers.contentLength === '' ? 0 : Number(x.headers.contentLength);
    if (!this.admit(x, declared)) return;
    if (route.bodyBytesMax === 0) {
      this.run(x, EMPTY);
      return;
    }
    if (route.requireJson && !isJsonContentType(x.headers.contentType)) {
      // The body may still be streaming: answer and close rather than read it.
      this.finish(x, errorResponse('unsupported_media_type', 'Content-Type must be application/json'), true);
      return;
    }
    if (declared > route.bodyBytesMax) {
      this.finish(x, tooLarge(route), true);
      return;
    }
    this.readRequestBody(x);
  }

  /**
   * Sheds before any expensive work (body, HMAC, JSON, Redis): an overloaded pod
   * answers 503 and never decides (CONTRACT §1), so it never fails open. Admitted:
   * the request holds its slot and its declared body bytes until it is answered.
   */
  private admit(x: Exchange, declared: number): boolean {
    if (x.load === undefined) return true;
    const reserve =
      Number.isSafeInteger(declared) && declared > 0 ? Math.min(declared, x.route.bodyBytesMax) : 0;
    const verdict = x.load.admit(reserve);
    if (verdict !== 'ok') {
      this.options.metrics.httpShed.inc({ cause: verdict });
      this.finish(x, errorResponse('overloaded', `this pod is overloaded (${verdict}); retry`), true);
      return false;
    }
    x.heldRequest = true;
    x.heldBytes = reserve;
    x.load.inflight++;
    x.load.queuedBytes += reserve;
    return true;
  }

  /** Reads the body under the read timeout; a precheck's refusal reads it and drops it. */
  private readRequestBody(x: Exchange): void {
    const { route, res } = x;
    const onTooLarge = (): void => this.finish(x, tooLarge(route), true);
    const timeoutMs = this.options.bodyReadTimeoutMs;
    if (timeoutMs !== undefined) {
      x.bodyTimer = setTimeout(() => {
        if (!x.started)
          this.finish(
            x,
            errorResponse('request_timeout', `the body did not arrive within ${timeoutMs} ms`),
            true,
          );
      }, timeoutMs);
    }
    const refused = route.precheck?.(x.headers);
    if (refused !== undefined) {
      // Read and drop: no copy, no hash, no parse; the connection stays usable.
      readBody(res, route.bodyBytesMax, () => this.finish(x, refused), onTooLarge, undefined, false);
      return;
    }
    // Bytes beyond the reservation (no or short Content-Length) are counted as they arrive.
    const grow = (size: number): void => {
      if (x.load === undefined || !x.heldRequest || size <= x.heldBytes) return;
      x.load.queuedBytes += size - x.heldBytes;
      x.heldBytes = size;
    };
    readBody(res, route.bodyBytesMax, (body) => this.run(x, body), onTooLarge, grow);
  }

  /** The body is whole: a route that commits state waits one loop turn (Route.commitsState). */
  private run(x: Exchange, body: Buffer): void {
    if (x.bodyTimer !== undefined) clearTimeout(x.bodyTimer);
    if (x.answered) return; // answered already (body read timeout): never decided
    if (x.route.commitsState !== true) {
      this.execute(x, body);
      return;
    }
    setImmediate(() => {
      if (!x.aborted && !x.answered) this.execute(x, body);
      // Refused before deciding: a pipelined request made uWS drop this one.
      else if (!x.answered) this.dropUndecided(x);
    });
  }

  private execute(x: Exchange, body: Buffer): void {
    x.started = true;
    const { route } = x;
    const request: Request = { params: x.params, headers: x.headers, body, startedNs: x.startedNs };
    const done = (response: HttpResponse): void => {
      route.onResponse?.(request, response);
      this.finish(x, response);
    };
    let pending: Promise<HttpResponse> | HttpResponse;
    try {
      pending = route.handler(request);
    } catch (err) {
      pending = this.internalError(route, err);
    }
    // Settled straight from the handler's promise: no extra promises per request.
    if (pending instanceof Promise)
      pending.then(done, (err: unknown) => done(this.internalError(route, err)));
    else done(pending);
  }

  /** Writes the one answer (never after an abort) and gives back what the request held. */
  private finish(x: Exchange, response: HttpResponse, closeConnection = false): void {
    if (x.answered) return;
    x.answered = true;
    if (x.bodyTimer !== undefined) clearTimeout(x.bodyTimer);
    this.inFlight--;
    release(x);
    this.options.metrics.httpRequests.inc({ route: x.route.label, status: String(response.status) });
    if (x.aborted) return; // the client is gone: never touch res after abort
    const { res } = x;
    res.cork(() => {
      res.writeStatus(statusLine(response.status)).writeHeader('Content-Type', 'application/json');
      if (response.replayed === true) res.writeHeader('Idempotent-Replayed', 'true');
      if (response.headers !== undefined) for (const [k, v] of response.headers) res.writeHeader(k, v);
      res.end(response.body, closeConnection || this.draining);
    });
  }

  /** The client went away before the handler ran: nothing decided, nothing written. */
  private dropUndecided(x: Exchange): void {
    x.answered = true;
    this.inFlight--;
    release(x);
    this.options.metrics.httpRequests.inc({ route: x.route.label, status: 'aborted' });
  }

  private internalError(route: Route, err: unknown): HttpResponse {
    this.options.logger.error({ err, route: route.label }, 'unhandled error in handler');
    return errorResponse('internal_error');
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${host}:${port}`));
          return;
        }
        this.listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
      });
    });
  }

  /** Stops accepting connections, then waits (bounded) for in-flight requests. */
  async drain(graceMs: number): Promise<boolean> {
    this.draining = true;
    if (this.listenSocket !== undefined) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.inFlight === 0;
  }

  close(): void {
    if (this.listenSocket !== undefined) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
    (this.app as unknown as { close?: () => void }).close?.();
  }
}

/** One request on its way through accept: what it read, what it holds, whether it was answered. */
interface Exchange {
  readonly route: Route;
  readonly res: uWS.HttpResponse;
  readonly params: readonly string[];
  readonly headers: RequestHeaders;
  readonly startedNs: bigint;
  /** The admission monitor this request counts against; undefined: never shed. */
  readonly load: LoadMonitor | undefined;
  aborted: boolean;
  answered: boolean;
  /** The handler was called. */
  started: boolean;
  /** What it holds of the pod's bounded work (one in-flight slot, body bytes). */
  heldRequest: boolean;
  heldBytes: number;
  bodyTimer: NodeJS.Timeout | undefined;
}

function routeParams(route: Route, req: uWS.HttpRequest): string[] {
  const params: string[] = [];
  for (let i = 0; i < route.paramCount; i++) params.push(req.getParameter(i));
  return params;
}

function requestHeaders(route: Route, req: uWS.HttpRequest): RequestHeaders {
  return {
    contentType: req.getHeader('content-type'),
    contentLength: req.getHeader('content-length'),
    signature: req.getHeader('x-signature'),
    idempotencyKey: req.getHeader('idempotency-key'),
    authorization: req.getHeader('authorization'),
    traceparent: req.getHeader('traceparent'),
    tracestate: req.getHeader('tracestate'),
    requestId: req.getHeader(REQUEST_ID_HEADER),
    extra: route.headers === undefined ? NO_EXTRA : route.headers.map((h) => req.getHeader(h)),
  };
}

/** Gives back the request's admission slot and body bytes (once). */
function release(x: Exchange): void {
  if (x.load === undefined || !x.heldRequest) return;
  x.heldRequest = false;
  x.load.inflight--;
  x.load.queuedBytes -= x.heldBytes;
  x.heldBytes = 0;
}

function tooLarge(route: Route): HttpResponse {
  return errorResponse('payload_too_large', `body larger than ${route.bodyBytesMax} bytes`);
}

function isJsonContentType(value: string): boolean {
  const v = value.toLowerCase();
  return v === 'application/json' || /^application\/json\s*;\s*charset\s*=\s*"?utf-8"?\s*$/.test(v);
}

/**
 * Reads the body, copying each chunk (uWS reuses the buffer), and stops at bytesMax. `keep`
 * false: a refused request's body is read to its end and dropped (onBody gets an empty buffer).
 */
function readBody(
  res: uWS.HttpResponse,
  bytesMax: number,
  onBody: (body: Buffer) => void,
  onTooLarge: () => void,
  onSize?: (size: number) => void,
  keep = true,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  res.onData((chunk, isLast) => {
    if (done) return;
    size += chunk.byteLength;
    if (size > bytesMax) {
      done = true;
      onTooLarge();
      return;
    }
    onSize?.(size);
    if (keep && chunk.byteLength > 0) {
      // A copy from Node's shared allocation pool: ArrayBuffer.slice would give every body
      // a backing store of its own, which the garbage collector must track and free.
      const copy = Buffer.allocUnsafe(chunk.byteLength);
      copy.set(new Uint8Array(chunk));
      chunks.push(copy);
    }
    if (isLast) {
      done = true;
      onBody(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, keep ? size : 0));
    }
  });
}
