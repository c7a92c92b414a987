// Tracing: off by default (shared no-op span, nothing loaded); when on, spans reach a
// real OTLP/HTTP receiver started here, continue an incoming W3C trace, and the
// script span is a child of the request span.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTracing, NOOP_SPAN, traceIdOf, tracingEnabled } from '../../src/observability/tracing.js';

interface Received {
  path: string;
  contentType: string;
  body: Buffer;
}

const received: Received[] = [];
let server: Server;
let endpoint: string;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      resolve(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void readBody(req).then((body) => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type'] ?? ''), body });
      // An empty ExportTraceServiceResponse is valid in both encodings.
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;

interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number; message?: string };
  attributes: { key: string; value: Record<string, unknown> }[];
}

function jsonSpans(bodies: Received[]): { spans: JsonSpan[]; serviceNames: unknown[] } {
  const spans: JsonSpan[] = [];
  const serviceNames: unknown[] = [];
  for (const r of bodies) {
    const doc = JSON.parse(r.body.toString('utf8')) as {
      resourceSpans: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: JsonSpan[] }[];
      }[];
    };
    for (const rs of doc.resourceSpans) {
      serviceNames.push(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue);
      for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
  }
  return { spans, serviceNames };
}

describe('tracing off', () => {
  it('is off by default and hands out the one shared no-op span', async () => {
    expect(tracingEnabled({})).toBe(false);
    const t = initTracing({});
    expect(t.enabled).toBe(false);
    const a = t.requestSpan('POST /v1/authorizations', TRACEPARENT, undefined);
    const b = t.requestSpan('PUT /v1/shoppers/:sid/trips/:tid', undefined, undefined);
    expect(a).toBe(NOOP_SPAN);
    expect(b).toBe(NOOP_SPAN);
    expect(t.scriptSpan(a, 'authorizeSwipe')).toBe(NOOP_SPAN);
    a.setAttribute('k', 1);
    a.setError('boom');
    a.end();
    expect(traceIdOf(a)).toBeUndefined();
    await t.shutdown();
  });

  it('follows OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER and the OTLP endpoints', () => {
    expect(tracingEnabled({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(tracingEnabled({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(
      tracingEnabled({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }),
    ).toBe(false);
    expect(tracingEnabled({ OTEL_METRICS_EXPORTER: 'otlp' })).toBe(false);
  });
});

describe('tracing on', () => {
  it('exports request and script spans as OTLP/JSON, continuing the incoming trace', async () => {
    received.length = 0;
    const t = initTracing({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'swipe-authorizer-test',
    });
    expect(t.enabled).toBe(true);

    const req = t.requestSpan('POST /v1/authorizations', TRACEPARENT, 'vendor=abc');
    expect(req).not.toBe(NOOP_SPAN);
    expect(traceIdOf(req)).toBe(TRACE_ID);
    req.setAttribute('http.response.status_code', 402);
    const script = t.scriptSpan(req, 'authorizeSwipe');
    script.setAttribute('swipe.result_code', 7);
    script.end();
    req.setError('declined');
    req.end();

    // A bad traceparent starts a fresh trace instead of failing.
    const fresh = t.requestSpan(
      'GET /readyz',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      undefined,
    );
    fresh.end();
    const fresh2 = t.requestSpan('GET /healthz', 'garbage', undefined);
    fresh2.end();

    await t.shutdown(); // flushes the batch processor
    expect(received.length).toBeGreaterThan(0);
    expect(received.every((r) => r.path === '/v1/traces')).toBe(true);
    expect(received[0]!.contentType).toContain('application/json');

    const { spans, serviceNames } = jsonSpans(received);
    expect(serviceNames).toContain('swipe-authorizer-test');
    const reqSpan = spans.find((s) => s.name === 'POST /v1/authorizations');
    const scriptSpan = spans.find((s) => s.name === 'EVALSHA authorizeSwipe');
    expect(reqSpan).toBeDefined();
    expect(scriptSpan).toBeDefined();
    expect(reqSpan!.traceId.toLowerCase()).toBe(TRACE_ID);
    expect(reqSpan!.parentSpanId?.toLowerCase()).toBe(PARENT_SPAN_ID);
    expect(reqSpan!.kind).toBe(2); // SERVER
    expect(reqSpan!.status?.code).toBe(2); // ERROR
    expect(reqSpan!.status?.message).toBe('declined');
    expect(scriptSpan!.traceId).toBe(reqSpan!.traceId);
    expect(scriptSpan!.parentSpanId).toBe(reqSpan!.spanId);
    expect(scriptSpan!.kind).toBe(3); // CLIENT
    expect(scriptSpan!.attributes).toContainEqual({
      key: 'db.stored_procedure.name',
      value: { stringValue: 'authorizeSwipe' },
    });

    const readyz = spans.find((s) => s.name === 'GET /readyz');
    const healthz = spans.find((s) => s.name === 'GET /healthz');
    expect(readyz!.traceId).not.toBe(TRACE_ID);
    expect(readyz!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(readyz!.parentSpanId ?? '').toBe('');
    expect(healthz!.parentSpanId ?? '').toBe('');
  });

  it('speaks the default http/protobuf protocol too (trace id bytes on the wire)', async () => {
    received.length = 0;
    const t = initTracing({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    expect(t.enabled).toBe(true);
    const req = t.requestSpan('POST /v1/authorizations/reversals', TRACEPARENT, undefined);
    t.scriptSpan(req, 'reverseAuthorization').end();
    req.end();
    await t.shutdown();

    expect(received.length).toBeGreaterThan(0);
    expect(received[0]!.path).toBe('/v1/traces');
    expect(received[0]!.contentType).toContain('application/x-protobuf');
    const body = Buffer.concat(received.map((r) => r.body));
    expect(body.includes(Buffer.from(TRACE_ID, 'hex'))).toBe(true);
    expect(body.includes(Buffer.from(PARENT_SPAN_ID, 'hex'))).toBe(true);
    expect(body.includes(Buffer.from('POST /v1/authorizations/reversals'))).toBe(true);
    expect(body.includes(Buffer.from('EVALSHA reverseAuthorization'))).toBe(true);
    expect(body.includes(Buffer.from('swipe-authorizer'))).toBe(true);
  });

  it('leaves process.env as it found it', () => {
    expect(process.env['OTEL_EXPORTER_OTLP_PROTOCOL']).toBeUndefined();
    expect(process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']).toBeUndefined();
  });
});
