// Processor configuration (CONTRACT §6/§7), read with the rest of the config at boot
// (src/config/config.ts calls loadProcessorConfig with its Reader) and frozen with it.
import type { Reader } from '../config/config.js';

export interface ProcessorConfig {
  /** Stripe endpoint secrets (whsec_...), all accepted; none = the Stripe endpoints refuse all. */
  readonly stripeWebhookSecrets: readonly string[];
  /** Sent back as the Stripe-Version header of every authorization answer. */
  readonly stripeApiVersion: string;
  /** user:password pairs for HTTP Basic; none = the Marqeta endpoints refuse all. */
  readonly marqetaBasicAuth: readonly string[];
  /** Standard Webhooks secrets (whsec_<base64>); none = the Lithic endpoints refuse all. */
  readonly lithicWebhookSecrets: readonly string[];
  readonly partialApprovals: boolean;
  /** Processor deadlines (ms): Stripe 2 s, Marqeta 3 s, Lithic as §1 (PROCESSOR_DEADLINE_MS). */
  readonly stripeDeadlineMs: number;
  readonly marqetaDeadlineMs: number;
  /** Body limit of the processor routes: Stripe events carry whole objects. */
  readonly processorBodyBytesMax: number;
  /** Swipes on unknown or retired cards recorded per partition per minute (the rest are counted dropped). */
  readonly unknownCardRecordsPerMinute: number;
}

export function loadProcessorConfig(r: Reader): ProcessorConfig {
  const problems = r.problems;
  const stripeWebhookSecrets = r.list('STRIPE_WEBHOOK_SECRETS');
  for (const s of stripeWebhookSecrets)
    if (!s.startsWith('whsec_') || s.length < 16)
      problems.push('each STRIPE_WEBHOOK_SECRETS entry must be a whsec_... secret');
  const stripeApiVersion = r.str('STRIPE_API_VERSION', '2024-06-20');
  if (!/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(stripeApiVersion))
    problems.push(`STRIPE_API_VERSION must look like 2024-06-20, got "${stripeApiVersion}"`);
  const marqetaBasicAuth = r.list('MARQETA_BASIC_AUTH');
  for (const p of marqetaBasicAuth) {
    const colon = p.indexOf(':');
    if (colon < 1 || p.length - colon - 1 < 12)
      problems.push('each MARQETA_BASIC_AUTH entry must be user:password with a password of >= 12 chars');
  }
  const lithicWebhookSecrets = r.list('LITHIC_WEBHOOK_SECRETS');
  for (const s of lithicWebhookSecrets)
    if (!/^whsec_[A-Za-z0-9+/]{16,}={0,2}$/.test(s))
      problems.push('each LITHIC_WEBHOOK_SECRETS entry must be whsec_<base64>');
  return Object.freeze({
    stripeWebhookSecrets: Object.freeze(stripeWebhookSecrets),
    stripeApiVersion,
    marqetaBasicAuth: Object.freeze(marqetaBasicAuth),
    lithicWebhookSecrets: Object.freeze(lithicWebhookSecrets),
    partialApprovals: r.bool('PARTIAL_APPROVALS', false),
    stripeDeadlineMs: 2000,
    marqetaDeadlineMs: 3000,
    processorBodyBytesMax: 64 * 1024,
    unknownCardRecordsPerMinute: r.int('UNKNOWN_CARD_RECORDS_PER_MINUTE', 10, 0, 100_000),
  });
}
