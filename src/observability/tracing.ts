// OpenTelemetry tracing, off unless configured by the standard OTEL_* variables.
//
// The request path runs in synchronous uWebSockets.js callbacks (no node:http),
// so auto-instrumentation does not apply: the api creates a span per request and
// a child span per Redis script call through this module, passing parents
// explicitly. No async context propagation is needed, so no AsyncLocalStorage
// context manager is installed (it would tax every promise in the process).
//
// Off (the default) costs one branch per call: every method returns the shared
// NOOP_SPAN, nothing is allocated and the SDK is never loaded (it is required
// lazily: ~300 ms and ~11 MB of heap that a process without tracing never pays).
//
// On: the Node SDK (@opentelemetry/sdk-node) builds the exporter, batch span
// processor, sampler, resource and limits from OTEL_* exactly as the spec says
// (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL http/protobuf (default) |
// http/json | grpc, _HEADERS, _TIMEOUT, OTEL_BSP_*, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME). Metrics and logs stay with
// prom-client and pino: the SDK's metric and log pipelines are not started.
import { createRequire } from 'node:module';
import {
  type Context,
  type ContextManager,
  context,
  DiagLogLevel,
  diag,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from './logger.js';

export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): void;
  setError(message: string): void;
  end(): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Span per HTTP request; continues a W3C trace from `traceparent`/`tracestate` header values when valid. */
  requestSpan(route: string, traceparent: string | undefined, tracestate: string | undefined): SpanLike;
  /** Child span of `parent` for one Redis script call. */
  scriptSpan(parent: SpanLike, script: string): SpanLike;
  shutdown(): Promise<void>;
}

/** The one span object handed out when tracing is off (or the parent is not traced). */
export const NOOP_SPAN: SpanLike = Object.freeze({
  setAttribute(): void {},
  setError(): void {},
  end(): void {},
});

const DISABLED: Tracing = Object.freeze({
  enabled: false,
  requestSpan: (): SpanLike => NOOP_SPAN,
  scriptSpan: (): SpanLike => NOOP_SPAN,
  shutdown: async (): Promise<void> => {},
});

export const DEFAULT_SERVICE_NAME = 'swipe-authorizer';
const TRACER_NAME = 'swipe-authorizer';
/** Script names come from code (a handful); the cache of span names is bounded anyway. */
const SCRIPT_SPAN_NAMES_MAX = 256;

type Env = Record<string, string | undefined>;

/**
 * Tracing is on when OTEL_SDK_DISABLED is not "true" and either OTEL_TRACES_EXPORTER
 * names an exporter (otlp, console, zipkin) or an OTLP endpoint is set. An explicit
 * OTEL_TRACES_EXPORTER=none always wins.
 */
export function tracingEnabled(env: Env): boolean {
  if ((env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  if (exporters.includes('none')) return false;
  if (exporters.some((e) => e === 'otlp' || e === 'console' || e === 'zipkin')) return true;
  return nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']) || nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

/**
 * Starts tracing when the environment asks for it, else returns the no-op tracing.
 * `env` decides on/off and the service name; while the SDK is built, its OTEL_*
 * variables are the ones the SDK sees (so a test can pass its own env).
 * `logger` (optional) receives the SDK's own warnings and errors (export failures).
 */
export function initTracing(env: NodeJS.ProcessEnv = process.env, logger?: Logger): Tracing {
  if (!tracingEnabled(env)) return DISABLED;
  const serviceName = nonEmpty(env['OTEL_SERVICE_NAME'])
    ? env['OTEL_SERVICE_NAME']!.trim()
    : DEFAULT_SERVICE_NAME;
  if (logger !== undefined && !nonEmpty(env['OTEL_LOG_LEVEL']))
    diag.setLogger(diagToPino(logger), DiagLogLevel.WARN);

  const require = createRequire(import.meta.url);
  const sdkNode = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const sdk = withOtelEnv(env, () => {
    const s = new sdkNode.NodeSDK({
      serviceName,
      instrumentations: [],
      contextManager: new SyncContextManager(),
      metricReaders: [],
      logRecordProcessors: [],
    });
    s.start();
    return s;
  });
  return new OtelTracing(trace.getTracer(TRACER_NAME), new sdkNode.core.W3CTraceContextPropagator(), sdk);
}

/** The trace id of a span handed out by `Tracing` (for log correlation), or undefined. */
export function traceIdOf(span: SpanLike): string | undefined {
  return span instanceof OtelSpan ? span.span.spanContext().traceId : undefined;
}

class OtelSpan implements SpanLike {
  private ctx: Context | undefined;
  constructor(readonly span: Span) {}

  setAttribute(key: string, value: string | number | boolean): void {
    this.span.setAttribute(key, value);
  }

  setError(message: string): void {
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
  }

  end(): void {
    this.span.end();
  }

  /** Context carrying this span, built once, only when a child is made. */
  context(): Context {
    this.ctx ??= trace.setSpan(ROOT_CONTEXT, this.span);
    return this.ctx;
  }
}

interface TraceHeaders {
  traceparent: string | undefined;
  tracestate: string | undefined;
}

const headerGetter: TextMapGetter<TraceHeaders> = {
  keys: () => ['traceparent', 'tracestate'],
  get: (carrier, key) =>
    key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined,
};

class OtelTracing implements Tracing {
  readonly enabled = true;
  private readonly scriptSpanNames = new Map<string, string>();
  private stopped = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly w3c: TextMapPropagator,
    private readonly sdk: { shutdown(): Promise<void> },
  ) {}

  requestSpan(route: string, traceparent: string | undefined, tracestate: string | undefined): SpanLike {
    // The W3C propagator validates the header (version, lengths, all-zero ids);
    // an invalid one starts a new trace.
    const parent =
      traceparent === undefined
        ? ROOT_CONTEXT
        : this.w3c.extract(ROOT_CONTEXT, { traceparent, tracestate }, headerGetter);
    const span = this.tracer.startSpan(
      route,
      { kind: SpanKind.SERVER, attributes: { 'http.route': route } },
      parent,
    );
    return new OtelSpan(span);
  }

  scriptSpan(parent: SpanLike, script: string): SpanLike {
    if (!(parent instanceof OtelSpan)) return NOOP_SPAN;
    const span = this.tracer.startSpan(
      this.scriptSpanName(script),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'redis',
          'db.operation.name': 'EVALSHA',
          'db.stored_procedure.name': script,
        },
      },
      parent.context(),
    );
    return new OtelSpan(span);
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.sdk.shutdown(); // flushes the batch span processor
    } finally {
      // Unregister the globals so a later initTracing in this process starts clean.
      trace.disable();
      propagation.disable();
      context.disable();
      diag.disable();
    }
  }

  private scriptSpanName(script: string): string {
    let name = this.scriptSpanNames.get(script);
    if (name === undefined) {
      name = `EVALSHA ${script}`;
      if (this.scriptSpanNames.size < SCRIPT_SPAN_NAMES_MAX) this.scriptSpanNames.set(script, name);
    }
    return name;
  }
}

/**
 * Synchronous context manager: `with` sets the active context for the duration of
 * the callback only. Enough for the SDK's own use (suppressing tracing around an
 * export); the api never relies on implicit async propagation.
 */
class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.current;
    this.current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = previous;
    }
  }

  bind<T>(_ctx: Context, target: T): T {
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}

/** Runs `fn` with process.env's OTEL_* variables replaced by those of `env` (the SDK reads process.env). */
function withOtelEnv<T>(env: Env, fn: () => T): T {
  if (env === process.env) return fn();
  const saved = new Map<string, string | undefined>();
  for (const key of new Set([...Object.keys(process.env), ...Object.keys(env)])) {
    if (!key.startsWith('OTEL_')) continue;
    saved.set(key, process.env[key]);
    const value = env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    return fn();
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

function diagToPino(logger: Logger) {
  const log = logger.child({ component: 'otel' });
  const detail = (args: unknown[]) => ({
    detail: args.map((a) => (a instanceof Error ? a.message : String(a))),
  });
  return {
    error: (message: string, ...args: unknown[]) => log.error(detail(args), message),
    warn: (message: string, ...args: unknown[]) => log.warn(detail(args), message),
    info: (message: string, ...args: unknown[]) => log.info(detail(args), message),
    debug: (message: string, ...args: unknown[]) => log.debug(detail(args), message),
    verbose: (message: string, ...args: unknown[]) => log.trace(detail(args), message),
  };
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value.trim().length > 0;
}
