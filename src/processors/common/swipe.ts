// What every processor adapter parses its request into (CONTRACT §7), and how it
// becomes the one SwipeRequest the decision core (src/decisions/authorize.ts) decides.
import { sha256Hex } from '../../auth/sha256.js';
import type { SwipeRequest } from '../../decisions/swipeRequest.js';
import { normalizeAddress, normalizeMerchantName } from '../../domain/merchant.js';

export const PROCESSORS = ['stripe', 'marqeta', 'lithic'] as const;
export type ProcessorName = (typeof PROCESSORS)[number];

export function isProcessor(v: string): v is ProcessorName {
  return (PROCESSORS as readonly string[]).includes(v);
}

/** Passed to lua/authorizeSwipe-4.lua as ARGV[25..33]. */
export interface ProcessorSwipeFields {
  readonly processor: ProcessorName;
  readonly cardId: string;
  /** The processor's id of the authorization (shared by its incremental requests). */
  readonly authorizationRef: string;
  /** The processor's id of this request: the idempotency key. */
  readonly requestId: string;
  readonly networkId: string;
  readonly postal: string;
  readonly mcc: string;
  readonly partialAllowed: boolean;
}

/** A processor's swipe, parsed from its own format. Amount in integer cents, whatever it sent. */
export interface ProcessorSwipe {
  readonly processor: ProcessorName;
  readonly cardId: string;
  readonly authorizationRef: string;
  readonly requestId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly merchant: {
    readonly name: string;
    readonly street: string;
    readonly city: string;
    readonly state: string;
    readonly postal: string;
    readonly country: string;
    readonly mcc: string;
    readonly networkId: string;
  };
  /** The processor lets us approve less than asked (and PARTIAL_APPROVALS is on). */
  readonly partialAllowed: boolean;
}

/** The native webhook: no processor arguments (authorizeSwipe's §4 matching, no partial approval). */
const NO_ARGS: readonly string[] = [];

/** authorizeSwipe's ARGV[29..34] for a processor swipe (their presence selects §4b matching). */
export function processorScriptArgs(p: ProcessorSwipeFields | undefined): readonly string[] {
  if (p === undefined) return NO_ARGS;
  return [p.networkId, p.postal, p.mcc, p.partialAllowed ? '1' : '', p.processor, p.authorizationRef];
}

/** CONTRACT §4b: postal codes compare on their first 5 characters, case and spaces ignored. */
export function normalizePostal(raw: string): string {
  return raw.replace(/\s+/g, '').toUpperCase().slice(0, 5);
}

/** Acquirer merchant ids: trimmed, upper case; ',' never occurs (the Lua set separator). */
export function normalizeNetworkId(raw: string): string {
  return raw.trim().toUpperCase().replace(/,/g, '');
}

export function normalizeMcc(raw: string): string {
  return /^\d{4}$/.test(raw.trim()) ? raw.trim() : '';
}

/** The transaction id the core keys idempotency on: the processor's own request id. */
export function processorTransactionId(processor: ProcessorName, requestId: string): string {
  return `${processor}:${requestId}`;
}

export function toSwipeRequest(s: ProcessorSwipe, shopperId: string): SwipeRequest {
  const nameNorm = normalizeMerchantName(s.merchant.name);
  const streetNorm = s.merchant.street === '' ? '' : normalizeAddress(s.merchant.street);
  const transactionId = processorTransactionId(s.processor, s.requestId);
  const shown = [s.merchant.street, s.merchant.city, s.merchant.state, s.merchant.postal, s.merchant.country]
    .filter((x) => x !== '')
    .join(', ');
  return {
    transactionId,
    shopperId,
    amountCents: s.amountCents,
    currency: s.currency,
    merchantName: s.merchant.name,
    merchantAddress: shown,
    merchantNameNorm: nameNorm,
    merchantAddressNorm: streetNorm,
    lat: '',
    lng: '',
    idempotencyKey: `t:${transactionId}`,
    fingerprint: sha256Hex(
      `${shopperId}\n${nameNorm}\n${s.processor}:${s.cardId}\n${s.merchant.networkId}\n${s.amountCents}`,
    ).slice(0, 32),
    processor: {
      processor: s.processor,
      cardId: s.cardId,
      authorizationRef: s.authorizationRef,
      requestId: s.requestId,
      networkId: normalizeNetworkId(s.merchant.networkId),
      postal: normalizePostal(s.merchant.postal),
      mcc: normalizeMcc(s.merchant.mcc),
      partialAllowed: s.partialAllowed,
    },
  };
}
