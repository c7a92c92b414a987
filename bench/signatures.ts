// Micro-benchmark: what authenticating one request costs on the api's request path, per
// processor scheme, on bodies the size each processor sends (docs/processors.md).
//   node .bench-build/bench/signatures.js   (after: npm run build && tsc -p bench/tsconfig.json)
import { performance } from 'node:perf_hooks';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { signatureHeader, verifySignature } from '../src/auth/signature.js';
import { createBasicCheck } from '../src/processors/common/basicAuth.js';
import { createStandardWebhookCheck } from '../src/processors/lithic/asa.js';
import { verifyStripeSignature } from '../src/processors/stripe/authorizations.js';
import { PROCESSOR_BENCH_ENV, processorRequestBytes } from './processorFormats.js';
import type { Swipe } from './workload.js';

const ITERATIONS = Number(process.argv[2] ?? 20_000);
const swipe: Swipe = {
  kind: 'approve',
  txn: 'sigbench0001',
  shopperId: 'bs1',
  amount: '12.34',
  amountCents: 1234,
  merchantName: 'bench store',
  json: '',
};

function bodyOf(bytes: string): Buffer {
  return Buffer.from(bytes.slice(bytes.indexOf('\r\n\r\n') + 4));
}
function header(bytes: string, name: string): string {
  const m = new RegExp(`\\r\\n${name}: ([^\\r]+)`, 'i').exec(bytes);
  return m?.[1] ?? '';
}

function time(label: string, bytes: number, fn: () => boolean): void {
  for (let i = 0; i < 2000; i++) if (!fn()) throw new Error(`${label}: verification failed`);
  const t0 = performance.now();
  for (let i = 0; i < ITERATIONS; i++) fn();
  const us = ((performance.now() - t0) * 1000) / ITERATIONS;
  console.log(`${label.padEnd(44)} ${String(bytes).padStart(5)} B  ${us.toFixed(1).padStart(6)} µs/request`);
}

const host = '127.0.0.1:8080';
const stripeReq = processorRequestBytes('stripe', swipe, host);
const lithicReq = processorRequestBytes('lithic', swipe, host);
const marqetaReq = processorRequestBytes('marqeta', swipe, host);
const nativeBody = Buffer.from(
  '{"transaction_id":"sigbench0001","shopper_id":"bs1","amount":"12.34","currency":"USD","merchant":{"name":"bench store","address":"1 bench way"}}',
);
const nativeSecret = 'bench-signature-secret-0123456789abcdef';
const nativeHeader = signatureHeader(nativeSecret, Math.floor(Date.now() / 1000), nativeBody);

const stripeBody = bodyOf(stripeReq);
const stripeHeader = header(stripeReq, 'Stripe-Signature');
const stripeSecrets = [PROCESSOR_BENCH_ENV['STRIPE_WEBHOOK_SECRETS'] as string];
const lithicBody = bodyOf(lithicReq);
const lithicHeaders = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => header(lithicReq, h));
const lithicCheck = createStandardWebhookCheck([PROCESSOR_BENCH_ENV['LITHIC_WEBHOOK_SECRETS'] as string]);
const lithicRequest = { headers: { extra: lithicHeaders }, body: lithicBody } as never;
const basic = createBasicCheck([PROCESSOR_BENCH_ENV['MARQETA_BASIC_AUTH'] as string]);
const basicHeader = header(marqetaReq, 'Authorization');
const raw = new Webhook(PROCESSOR_BENCH_ENV['LITHIC_WEBHOOK_SECRETS'] as string);

console.log(`node ${process.version}, ${ITERATIONS} iterations each`);
time('native X-Signature (node:crypto HMAC)', nativeBody.length, () =>
  verifySignature(nativeHeader, nativeBody, [nativeSecret], Math.floor(Date.now() / 1000), 300).ok,
);
time('Stripe-Signature (stripe verifyHeader)', stripeBody.length, () =>
  verifyStripeSignature(stripeSecrets, stripeHeader, stripeBody, Date.now()),
);
time('Standard Webhooks (standardwebhooks verify)', lithicBody.length, () => lithicCheck(lithicRequest));
time('  of which: Webhook.sign alone (fast-sha256)', lithicBody.length, () => raw.sign(lithicHeaders[0] as string, new Date(), lithicBody).length > 0);
time('HTTP Basic (sha256 + timingSafeEqual)', 0, () => basic(basicHeader));
void Stripe;
