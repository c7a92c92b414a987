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
    const startedNs = process.hrtime.bigint();
    const params: string[] = [];
    for (let i = 0; i < route.paramCount; i++) params.push(req.getParameter(i));
    const headers: RequestHeaders = {
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
    const state = { aborted: false, answered: false, started: false };
    // Admission: what this request holds of the pod's bounded work (in flight, body bytes).
    const load = route.admission === false ? undefined : this.options.load;
    const held = { request: false, bytes: 0 };
    const release = (): void => {
      if (load === undefined || !held.request) return;
      held.request = false;
      load.inflight--;
      load.queuedBytes -= held.bytes;
      held.bytes = 0;
    };
    res.onAborted(() => {
      state.aborted = true;
      // Aborted before the body was complete: the handler will never run, so
      // this request is no longer in flight.
      if (!state.started && !state.answered) {
        state.answered = true;
        this.inFlight--;
        release();
        this.options.metrics.httpRequests.inc({ route: route.label, status: 'aborted' });
      }
    });
    this.inFlight++;

    let bodyTimer: NodeJS.Timeout | undefined;
    const finish = (response: HttpResponse, closeConnection = false): void => {
      if (state.answered) return;
      state.answered = true;
      if (bodyTimer !== undefined) clearTimeout(bodyTimer);
      this.inFlight--;
      release();
      this.options.metrics.httpRequests.inc({ route: route.label, status: String(response.status) });
      if (state.aborted) return; // the client is gone: never touch res after abort
      res.cork(() => {
        res.writeStatus(statusLine(response.status)).writeHeader('Content-Type', 'application/json');
        if (response.replayed === true) res.writeHeader('Idempotent-Replayed', 'true');
        if (response.headers !== undefined) for (const [k, v] of response.headers) res.writeHeader(k, v);
        res.end(response.body, closeConnection || this.draining);
      });
    };
    const run = (body: Buffer): void => {
      if (bodyTimer !== undefined) clearTimeout(bodyTimer);
      if (state.answered) return; // answered already (body read timeout): never decided
      if (route.commitsState === true) {
        setImmediate(() => {
          if (!state.aborted && !state.answered) execute(body);
          else if (!state.answered) {
            // Refused before deciding: a pipelined request made uWS drop this one.
            state.answered = true;
            this.inFlight--;
            release();
            this.options.metrics.httpRequests.inc({ route: route.label, status: 'aborted' });
          }
        });
        return;
      }
      execute(body);
    };
    const execute = (body: Buffer): void => {
      state.started = true;
      const request: Request = { params, headers, body, startedNs };
      const done = (response: HttpResponse): void => {
        route.onResponse?.(request, response);
        finish(response);
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
    };

    const declared = headers.contentLength === '' ? 0 : Number(headers.contentLength);
    if (load !== undefined) {
      // Shed before any expensive work (body, HMAC, JSON, Redis): an overloaded
      // pod answers 503 and never decides (CONTRACT §1), so it never fails open.
      const reserve =
        Number.isSafeInteger(declared) && declared > 0 ? Math.min(declared, route.bodyBytesMax) : 0;
      const verdict = load.admit(reserve);
      if (verdict !== 'ok') {
        this.options.metrics.httpShed.inc({ cause: verdict });
        finish(errorResponse('overloaded', `this pod is overloaded (${verdict}); retry`), true);
        return;
      }
      held.request = true;
      held.bytes = reserve;
      load.inflight++;
      load.queuedBytes += reserve;
    }
    if (route.bodyBytesMax === 0) {
      run(EMPTY);
      return;
    }
    if (route.requireJson && !isJsonContentType(headers.contentType)) {
      // The body may still be streaming: answer and close rather than read it.
      finish(errorResponse('unsupported_media_type', 'Content-Type must be application/json'), true);
      return;
    }
    if (declared > route.bodyBytesMax) {
      finish(errorResponse('payload_too_large', `body larger than ${route.bodyBytesMax} bytes`), true);
      return;
    }
    const tooLarge = (): void =>
      finish(errorResponse('payload_too_large', `body larger than ${route.bodyBytesMax} bytes`), true);
    const timeoutMs = this.options.bodyReadTimeoutMs;
    if (timeoutMs !== undefined) {
      bodyTimer = setTimeout(() => {
        if (!state.started)
          finish(errorResponse('request_timeout', `the body did not arrive within ${timeoutMs} ms`), true);
      }, timeoutMs);
    }
    const refused = route.precheck?.(headers);
    if (refused !== undefined) {
      // Read and drop: no copy, no hash, no parse; the connection stays usable.
      readBody(res, route.bodyBytesMax, () => finish(refused), tooLarge, undefined, false);
      return;
    }
    // Bytes beyond the reservation (no or short Content-Length) are counted as they arrive.
    const grow = (size: number): void => {
      if (load === undefined || !held.request || size <= held.bytes) return;
      load.queuedBytes += size - held.bytes;
      held.bytes = size;
    };
    readBody(res, route.bodyBytesMax, run, tooLarge, grow);
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
