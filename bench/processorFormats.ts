// Processor formats in the bench (CONTRACT §7): the same swipe mix as the native webhook,
// sent as Stripe Issuing, Marqeta JIT Funding and Lithic ASA requests, signed the way each
// processor signs (the load generator pays for the signing, the service for verifying).
// One closed-loop phase per format at the saturation connections gives its maximum and p99
// next to the native format's (run.ts hook; BENCHMARKS.md "Processor formats").
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import type { PhaseResult } from './report.js';
import { type BenchShopper, OTHER_STORE, type Swipe, TOKEN } from './workload.js';

export const PROCESSOR_FORMATS = ['stripe', 'marqeta', 'lithic'] as const;
export type ProcessorFormat = (typeof PROCESSOR_FORMATS)[number];
export type BenchFormat = 'native' | ProcessorFormat;

const STRIPE_SECRET = 'whsec_bench_stripe_0123456789abcdef';
const LITHIC_SECRET = `whsec_${Buffer.from('bench-lithic-secret-0123456789ab').toString('base64')}`;
const MARQETA_PAIR = 'bench_gateway:bench-marqeta-password-0123';
/** The bench store's acquirer merchant id (workload.ts tripBody network_ids). */
export const BENCH_NETWORK_ID = 'BENCH0042';

/** Extra api environment: the processors' secrets. */
export const PROCESSOR_BENCH_ENV: Record<string, string> = {
  STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET,
  MARQETA_BASIC_AUTH: MARQETA_PAIR,
  LITHIC_WEBHOOK_SECRETS: LITHIC_SECRET,
};

export function benchCardId(format: ProcessorFormat, shopperId: string): string {
  return format === 'stripe' ? `ic_${shopperId}` : `${format.slice(0, 2)}-${shopperId}`;
}

/** Registers a card of each processor for each shopper (200 when it already is). */
export async function registerBenchCards(port: number, shoppers: readonly BenchShopper[]): Promise<void> {
  const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  let next = 0;
  const worker = async () => {
    while (next < shoppers.length) {
      const s = shoppers[next++] as BenchShopper;
      for (const format of PROCESSOR_FORMATS) {
        const url = `http://127.0.0.1:${port}/v1/shoppers/${s.shopperId}/cards/${format}/${benchCardId(format, s.shopperId)}`;
        const r = await fetch(url, { method: 'PUT', headers, body: '{}' });
        if (r.status !== 201 && r.status !== 200) throw new Error(`card PUT ${r.status}: ${await r.text()}`);
        await r.arrayBuffer().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

const stripe = new Stripe('sk_bench_not_used');
const lithic = new Webhook(LITHIC_SECRET);
const marqetaAuth = `Basic ${Buffer.from(MARQETA_PAIR).toString('base64')}`;

function merchantName(s: Swipe): string {
  return s.merchantName === OTHER_STORE ? 'OTHER STORE' : 'BENCH STORE #0042';
}

function stripeBody(s: Swipe): string {
  const card = benchCardId('stripe', s.shopperId);
  return (
    `{"id":"evt_${s.txn}","object":"event","api_version":"2024-06-20","created":1764800000,"livemode":false,` +
    `"type":"issuing_authorization.request","data":{"object":{"id":"iauth_${s.txn}","object":"issuing.authorization",` +
    `"amount":0,"amount_details":{"atm_fee":null,"cashback_amount":null},"approved":false,"authorization_method":"chip",` +
    `"balance_transactions":[],"card":{"id":"${card}","object":"issuing.card","brand":"Visa","currency":"usd",` +
    `"last4":"4242","status":"active","type":"physical"},"cardholder":"ich_bench","created":1764800000,"currency":"usd",` +
    `"livemode":false,"merchant_amount":0,"merchant_currency":"usd","merchant_data":{"category":"grocery_stores_supermarkets",` +
    `"category_code":"5411","city":"SAN FRANCISCO","country":"US","name":"${merchantName(s)}","network_id":"${BENCH_NETWORK_ID}",` +
    `"postal_code":"94103","state":"CA","terminal_id":"00000001","url":null},"metadata":{},"network_data":null,` +
    `"pending_request":{"amount":${s.amountCents},"amount_details":{"atm_fee":null,"cashback_amount":null},"currency":"usd",` +
    `"is_amount_controllable":false,"merchant_amount":${s.amountCents},"merchant_currency":"usd","network_risk_score":null},` +
    `"request_history":[],"status":"pending","transactions":[],"verification_data":{"address_line1_check":"not_provided",` +
    `"address_postal_code_check":"match","cvc_check":"match","expiry_check":"match"},"wallet":null}}}`
  );
}

function marqetaBody(s: Swipe): string {
  const card = benchCardId('marqeta', s.shopperId);
  return (
    `{"type":"authorization","state":"PENDING","token":"txn-${s.txn}","user_token":"u-${s.shopperId}",` +
    `"card_token":"${card}","currency_code":"USD","amount":${s.amount},"gpa_order":{"token":"gpa-${s.txn}",` +
    `"amount":${s.amount},"state":"PENDING","funding_source_token":"pgfs","currency_code":"USD",` +
    `"jit_funding":{"token":"jit-${s.txn}","method":"pgfs.authorization","user_token":"u-${s.shopperId}",` +
    `"acting_user_token":"u-${s.shopperId}","amount":${s.amount}}},"card_acceptor":{"mid":"${BENCH_NETWORK_ID}",` +
    `"mcc":"5411","name":"${merchantName(s)}","city":"San Francisco","state":"CA","postal_code":"94103",` +
    `"country_code":"USA"},"network":"VISA"}`
  );
}

function lithicBody(s: Swipe): string {
  const card = benchCardId('lithic', s.shopperId);
  return (
    `{"event_type":"card_authorization.approval_request","token":"${s.txn}","event_token":"${s.txn}",` +
    `"status":"AUTHORIZATION","acquirer_fee":0,"amount":${s.amountCents},"cash_amount":0,"network":"VISA",` +
    `"card":{"token":"${card}","last_four":"4242","memo":"bench","spend_limit":0,"spend_limit_duration":"TRANSACTION",` +
    `"state":"OPEN","type":"VIRTUAL"},"amounts":{"cardholder":{"amount":${s.amountCents},"conversion_rate":"1.000000",` +
    `"currency":"USD"},"merchant":{"amount":${s.amountCents},"currency":"USD"},"settlement":null,"hold":null},` +
    `"merchant":{"acceptor_id":"${BENCH_NETWORK_ID}","acquiring_institution_id":"191231","city":"SAN FRANCISCO",` +
    `"country":"USA","descriptor":"${merchantName(s)}","mcc":"5411","state":"CA","postal_code":"94103",` +
    `"street_address":null,"phone_number":null},"pos":{"terminal":{"partial_approval_capable":false,"type":"POS"}}}`
  );
}

/** The HTTP/1.1 request bytes of one swipe in a processor's format. */
export function processorRequestBytes(format: ProcessorFormat, s: Swipe, host: string): string {
  let path: string;
  let body: string;
  let auth: string;
  if (format === 'stripe') {
    path = '/v1/processors/stripe/authorizations';
    body = stripeBody(s);
    auth = `Stripe-Signature: ${stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET })}\r\n`;
  } else if (format === 'marqeta') {
    path = '/v1/processors/marqeta/jit';
    body = marqetaBody(s);
    auth = `Authorization: ${marqetaAuth}\r\n`;
  } else {
    path = '/v1/processors/lithic/asa';
    body = lithicBody(s);
    const now = new Date();
    const id = `msg_${s.txn}`;
    auth =
      `webhook-id: ${id}\r\nwebhook-timestamp: ${Math.floor(now.getTime() / 1000)}\r\n` +
      `webhook-signature: ${lithic.sign(id, now, body)}\r\n`;
  }
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n${auth}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export interface ProcessorFormatRow {
  readonly format: ProcessorFormat;
  readonly phase: PhaseResult;
}

export const PROCESSOR_SECTION = {
  title: '## Processor formats',
  begin: '<!-- bench:processors:begin -->',
  end: '<!-- bench:processors:end -->',
} as const;

/** BENCHMARKS.md table: each format's maximum and p99 next to the native format's, same run. */
export function processorSection(native: PhaseResult | undefined, rows: readonly ProcessorFormatRow[]): string {
  const line = (name: string, p: PhaseResult) => {
    const max = p.decidedPerS ?? p.throughputPerS;
    const nativeMax = native === undefined ? undefined : (native.decidedPerS ?? native.throughputPerS);
    const share = nativeMax === undefined || nativeMax === 0 ? '–' : `${((max / nativeMax) * 100).toFixed(0)} %`;
    const svc = p.service === undefined ? '–' : `${p.service.p99Ms}`;
    return `| ${name} | ${Math.round(max).toLocaleString('en-US')} | ${share} | ${p.client.p99Ms} | ${svc} |`;
  };
  const out = [
    'Closed loop at the saturation connections, same swipe mix (70 % approvals, 10 % too high,',
    '10 % wrong merchant, 10 % retries), one phase per format back to back. Client-side p99 includes',
    "the load generator's own signing; service p99 is the api's swipe_decision_duration_seconds.",
    '',
    '| format | max decisions/s | of native | client p99 ms | service p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  if (native !== undefined) out.push(line('native (§1)', native));
  for (const r of rows) out.push(line(r.format, r.phase));
  return out.join('\n');
}
