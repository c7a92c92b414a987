// Validates a webhook body into a SwipeRequest: integer cents, normalized
// merchant, the idempotency key by contract precedence and the fingerprint.
import { sha256Hex } from '../auth/sha256.js';
import {
  parseCurrency,
  parseLocation,
  parseOptionalKey,
  parseShopperId,
  parseText,
} from '../domain/fields.js';
import { isObject, type JsonValue } from '../domain/json.js';
import { MERCHANT_TEXT_LENGTH_MAX, normalizeAddress, normalizeMerchantName } from '../domain/merchant.js';
import { type Parsed, parseAmountCents } from '../domain/money.js';
import type { SwipeToDecide } from '../redis/commands.js';

/**
 * Descriptors repeat (a few thousand stores): normalizing (NFKC + regexes) is
 * memoized in bounded maps, emptied when full (bounded memory, no LRU work).
 */
const NORMALIZED_ENTRIES_MAX = 10_000;
const nameCache = new Map<string, string>();
const addressCache = new Map<string, string>();

function memo(cache: Map<string, string>, normalize: (s: string) => string, raw: string): string {
  let value = cache.get(raw);
  if (value === undefined) {
    value = normalize(raw);
    if (cache.size >= NORMALIZED_ENTRIES_MAX) cache.clear();
    cache.set(raw, value);
  }
  return value;
}

/** Window of the derived idempotency key (CONTRACT §1). */
export const DERIVED_KEY_WINDOW_MS = 30_000;

/** A validated swipe: what the decision script takes (SwipeToDecide), and how it was signed. */
export interface SwipeRequest extends SwipeToDecide {
  /** The signature id the request was accepted with (native webhook): fail-open answers it too. */
  readonly signature?: string;
}

function sha256HexPrefix(text: string, hexChars: number): string {
  return sha256Hex(text).slice(0, hexChars);
}

export function parseSwipeRequest(
  body: JsonValue,
  idempotencyHeader: string,
  nowMs: number,
  signature = '',
): Parsed<SwipeRequest> {
  if (!isObject(body)) return { ok: false, message: 'body must be a JSON object' };
  const transactionId = parseOptionalKey(body['transaction_id'], 'transaction_id');
  if (!transactionId.ok) return transactionId;
  const shopperId = parseShopperId(body['shopper_id']);
  if (!shopperId.ok) return shopperId;
  const amount = parseAmountCents(body['amount'], 'amount');
  if (!amount.ok) return amount;
  const currency = parseCurrency(body['currency']);
  if (!currency.ok) return currency;
  const merchant = body['merchant'];
  if (!isObject(merchant)) return { ok: false, message: 'merchant must be an object with name and address' };
  const name = parseText(merchant['name'], 'merchant.name', MERCHANT_TEXT_LENGTH_MAX);
  if (!name.ok) return name;
  const address = parseText(merchant['address'], 'merchant.address', MERCHANT_TEXT_LENGTH_MAX);
  if (!address.ok) return address;
  const location = parseLocation(body['location'], 'location');
  if (!location.ok) return location;
  const headerKey = parseOptionalKey(
    idempotencyHeader === '' ? undefined : idempotencyHeader,
    'Idempotency-Key',
  );
  if (!headerKey.ok) return headerKey;

  const nameNorm = memo(nameCache, normalizeMerchantName, name.value);
  const addressNorm = memo(addressCache, normalizeAddress, address.value);
  const merchantPart = `${shopperId.value}\n${nameNorm}\n${addressNorm}\n${amount.value}`;
  let idempotencyKey: string;
  if (transactionId.value !== undefined) idempotencyKey = `t:${transactionId.value}`;
  else if (headerKey.value !== undefined) idempotencyKey = `h:${headerKey.value}`;
  else
    idempotencyKey = `d:${sha256HexPrefix(`${merchantPart}\n${Math.floor(nowMs / DERIVED_KEY_WINDOW_MS)}`, 40)}`;

  return {
    ok: true,
    value: {
      transactionId: transactionId.value,
      shopperId: shopperId.value,
      amountCents: amount.value,
      currency: currency.value,
      merchantName: name.value,
      merchantAddress: address.value,
      merchantNameNorm: nameNorm,
      merchantAddressNorm: addressNorm,
      lat: location.value?.lat ?? '',
      lng: location.value?.lng ?? '',
      idempotencyKey,
      fingerprint: sha256HexPrefix(merchantPart, 32),
      ...(signature === '' ? {} : { signature }),
    },
  };
}
