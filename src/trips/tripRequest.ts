// Validates trip API bodies into canonical, integer-only specs.
import { storeEvidenceFields } from '../processors/common/merchant.js';
import { sha256Hex } from '../auth/sha256.js';
import type { Config } from '../config/config.js';
import { ID_PATTERN, parseCurrency, parseLocation, parseOptionalBool, parseText } from '../domain/fields.js';
import { isObject, JsonNumber, type JsonValue } from '../domain/json.js';
import { MERCHANT_TEXT_LENGTH_MAX, normalizeAddress, normalizeMerchantName } from '../domain/merchant.js';
import {
  LINE_CENTS_MAX,
  lineCents,
  type Parsed,
  parseIntegerInRange,
  parseQuantityMilli,
  parseUnitPriceCents,
} from '../domain/money.js';

export const ORDERS_MAX = 50;
const UNIT_PATTERN = /^[a-z]{1,8}$/;

export interface TripItemSpec {
  readonly item_id: string;
  readonly quantity_milli: number;
  readonly unit: string;
  readonly unit_price_cents: number;
  readonly estimated_cents: number;
}

export interface TripSpec {
  readonly merchant: {
    name: string;
    address: string;
    lat: string | null;
    lng: string | null;
    /** CONTRACT §4b; present in the canonical spec only when sent, so older trips keep their hash. */
    postal_code?: string;
    city?: string;
    mccs?: string[];
    network_ids?: string[];
  };
  readonly currency: string;
  readonly tax_rate_bps: number;
  readonly tolerance_bps: number;
  readonly tolerance_cents: number;
  readonly hold_cents: number | null;
  readonly estimated_cents: number;
  readonly orders: ReadonlyArray<{ order_id: string; items: readonly TripItemSpec[] }>;
}

const fail = (message: string): Parsed<never> => ({ ok: false, message });

type JsonObject = { [key: string]: JsonValue };

/** body[field], an integer 0..max; absent or null: the fallback. */
function optionalInt(body: JsonObject, field: string, fallback: number, max: number): Parsed<number> {
  const v = body[field];
  if (v === undefined || v === null) return { ok: true, value: fallback };
  return parseIntegerInRange(v, field, 0, max);
}

function parseId(v: JsonValue | undefined, field: string): Parsed<string> {
  if (typeof v === 'string' && ID_PATTERN.test(v)) return { ok: true, value: v };
  if (v instanceof JsonNumber && /^\d{1,18}$/.test(v.raw)) return { ok: true, value: v.raw };
  return fail(`${field} must be 1-64 characters of A-Z a-z 0-9 _ -`);
}

function parseItem(v: JsonValue, field: string): Parsed<TripItemSpec> {
  if (!isObject(v)) return fail(`${field} must be an object`);
  const itemId = parseId(v['item_id'], `${field}.item_id`);
  if (!itemId.ok) return itemId;
  const quantity = parseQuantityMilli(v['quantity'], `${field}.quantity`);
  if (!quantity.ok) return quantity;
  const price = parseUnitPriceCents(v['unit_price'], `${field}.unit_price`);
  if (!price.ok) return price;
  const unit = v['unit'] ?? 'each';
  if (typeof unit !== 'string' || !UNIT_PATTERN.test(unit))
    return fail(`${field}.unit must be a short unit name`);
  const estimated = lineCents(quantity.value, price.value);
  if (estimated > LINE_CENTS_MAX) return fail(`${field} is worth more than the line maximum`);
  return {
    ok: true,
    value: {
      item_id: itemId.value,
      quantity_milli: quantity.value,
      unit,
      unit_price_cents: price.value,
      estimated_cents: estimated,
    },
  };
}

export function parseTripSpec(body: JsonValue, config: Config): Parsed<TripSpec> {
  if (!isObject(body)) return fail('body must be a JSON object');
  const merchant = parseTripMerchant(body['merchant']);
  if (!merchant.ok) return merchant;
  const currency = parseCurrency(body['currency']);
  if (!currency.ok) return currency;
  const terms = parseCeilingTerms(body, config);
  if (!terms.ok) return terms;
  const orders = parseOrders(body['orders'], config);
  if (!orders.ok) return orders;
  return {
    ok: true,
    value: {
      merchant: merchant.value,
      currency: currency.value,
      ...terms.value,
      estimated_cents: orders.value.estimatedCents,
      orders: orders.value.orders,
    },
  };
}

function parseTripMerchant(merchant: JsonValue | undefined): Parsed<TripSpec['merchant']> {
  if (!isObject(merchant)) return fail('merchant must be an object with name and address');
  const name = parseText(merchant['name'], 'merchant.name', MERCHANT_TEXT_LENGTH_MAX);
  if (!name.ok) return name;
  const address = parseText(merchant['address'], 'merchant.address', MERCHANT_TEXT_LENGTH_MAX);
  if (!address.ok) return address;
  if (normalizeMerchantName(name.value) === '')
    return fail('merchant.name has no letters or digits to match on');
  if (normalizeAddress(address.value) === '')
    return fail('merchant.address has no letters or digits to match on');
  const hasLocation = merchant['lat'] !== undefined || merchant['lng'] !== undefined;
  const location = parseLocation(
    hasLocation ? { lat: merchant['lat'] ?? null, lng: merchant['lng'] ?? null } : undefined,
    'merchant',
  );
  if (!location.ok) return location;
  const evidence = parseStoreEvidence(merchant);
  if (!evidence.ok) return evidence;
  return {
    ok: true,
    value: {
      name: name.value,
      address: address.value,
      lat: location.value?.lat ?? null,
      lng: location.value?.lng ?? null,
      ...evidence.value,
    },
  };
}

type CeilingTerms = Pick<TripSpec, 'tax_rate_bps' | 'tolerance_bps' | 'tolerance_cents' | 'hold_cents'>;

/** Tax, tolerances and hold: each defaulted from the config and capped by its configured maximum. */
function parseCeilingTerms(body: JsonObject, config: Config): Parsed<CeilingTerms> {
  const tax = optionalInt(body, 'tax_rate_bps', config.defaultTaxRateBps, 10_000);
  if (!tax.ok) return tax;
  // Configured maxima (TRIP_TOLERANCE_BPS_MAX, TRIP_TOLERANCE_CENTS_MAX,
  // TRIP_HOLD_CENTS_MAX): the trip API cannot grant more than the deployment allows.
  const tolBps = optionalInt(body, 'tolerance_bps', config.defaultToleranceBps, config.tripToleranceBpsMax);
  if (!tolBps.ok) return tolBps;
  const tolCents = optionalInt(
    body,
    'tolerance_cents',
    config.defaultToleranceCents,
    config.tripToleranceCentsMax,
  );
  if (!tolCents.ok) return tolCents;
  let hold: number | null = null;
  if (body['hold_cents'] !== undefined && body['hold_cents'] !== null) {
    const h = parseIntegerInRange(body['hold_cents'], 'hold_cents', 0, config.tripHoldCentsMax);
    if (!h.ok) return h;
    hold = h.value;
  }
  return {
    ok: true,
    value: {
      tax_rate_bps: tax.value,
      tolerance_bps: tolBps.value,
      tolerance_cents: tolCents.value,
      hold_cents: hold,
    },
  };
}

interface ParsedOrders {
  readonly orders: Array<{ order_id: string; items: TripItemSpec[] }>;
  readonly estimatedCents: number;
}

/** Orders and their items: ids unique within the trip, at most TRIP_ITEMS_MAX items in all. */
function parseOrders(ordersRaw: JsonValue | undefined, config: Config): Parsed<ParsedOrders> {
  if (!Array.isArray(ordersRaw) || ordersRaw.length === 0) return fail('orders must be a non-empty array');
  if (ordersRaw.length > ORDERS_MAX) return fail(`orders must have at most ${ORDERS_MAX} entries`);
  const seenOrders = new Set<string>();
  const seenItems = new Set<string>();
  const orders: Array<{ order_id: string; items: TripItemSpec[] }> = [];
  let estimatedCents = 0;
  for (let o = 0; o < ordersRaw.length; o++) {
    const order = ordersRaw[o]!;
    if (!isObject(order)) return fail(`orders[${o}] must be an object`);
    const orderId = parseId(order['order_id'], `orders[${o}].order_id`);
    if (!orderId.ok) return orderId;
    if (seenOrders.has(orderId.value)) return fail(`orders[${o}].order_id is a duplicate`);
    seenOrders.add(orderId.value);
    const itemsRaw = order['items'];
    if (!Array.isArray(itemsRaw) || itemsRaw.length === 0)
      return fail(`orders[${o}].items must be a non-empty array`);
    const items: TripItemSpec[] = [];
    for (let i = 0; i < itemsRaw.length; i++) {
      const field = `orders[${o}].items[${i}]`;
      if (seenItems.size >= config.tripItemsMax)
        return fail(`a trip may have at most ${config.tripItemsMax} items`);
      const item = parseItem(itemsRaw[i]!, field);
      if (!item.ok) return item;
      if (seenItems.has(item.value.item_id)) return fail(`${field}.item_id is a duplicate within the trip`);
      seenItems.add(item.value.item_id);
      estimatedCents += item.value.estimated_cents;
      items.push(item.value);
    }
    orders.push({ order_id: orderId.value, items });
  }
  return { ok: true, value: { orders, estimatedCents } };
}

const STORE_TEXT_LENGTH_MAX = 64;
const STORE_LIST_MAX = 32;
const MCC_PATTERN = /^\d{4}$/;
const NETWORK_ID_PATTERN = /^[A-Za-z0-9 _./-]{1,32}$/;

/** The optional §4b store fields: postal_code, city, mccs, network_ids (absent ones stay absent). */
function parseStoreEvidence(m: { [k: string]: JsonValue }): Parsed<{
  postal_code?: string;
  city?: string;
  mccs?: string[];
  network_ids?: string[];
}> {
  const out: { postal_code?: string; city?: string; mccs?: string[]; network_ids?: string[] } = {};
  for (const field of ['postal_code', 'city'] as const) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    const t = parseText(v, `merchant.${field}`, STORE_TEXT_LENGTH_MAX);
    if (!t.ok) return t;
    out[field] = t.value;
  }
  for (const [field, pattern] of [
    ['mccs', MCC_PATTERN],
    ['network_ids', NETWORK_ID_PATTERN],
  ] as const) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.length > STORE_LIST_MAX)
      return fail(`merchant.${field} must be an array of at most ${STORE_LIST_MAX} strings`);
    const list: string[] = [];
    for (const x of v) {
      if (typeof x !== 'string' || !pattern.test(x))
        return fail(
          field === 'mccs'
            ? 'merchant.mccs entries must be 4-digit strings'
            : 'merchant.network_ids entries must be 1-32 characters of A-Z a-z 0-9 space _ . / -',
        );
      list.push(x);
    }
    if (list.length > 0) out[field] = list;
  }
  return { ok: true, value: out };
}

/** Canonical JSON (fixed key order from construction) and its hash: "identical PUT" means equal hashes. */
export function canonicalSpec(spec: TripSpec): { json: string; hash: string } {
  const json = JSON.stringify(spec);
  return { json, hash: sha256Hex(json) };
}

/** Fields named in a 409 at most: the message stays short whatever the bodies. */
const DIFFERING_FIELDS_SHOWN_MAX = 8;

/**
 * What differs between a stored trip (its canonical spec JSON) and a new body, for the 409 of
 * CONTRACT §3: top-level fields, `merchant.<field>`, and per order `orders[<order_id>]`.
 */
export function specDifferences(storedJson: string, spec: TripSpec): string[] {
  try {
    return differences(JSON.parse(storedJson), spec);
  } catch {
    return []; // a stored body of another shape: the 409 says only that the bodies differ
  }
}

function differences(parsed: unknown, spec: TripSpec): string[] {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return [];
  const stored = parsed as Record<string, unknown>;
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const storedMerchant = (stored['merchant'] ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(spec.merchant)) {
    if (!same(storedMerchant[k], v)) out.push(`merchant.${k}`);
  }
  for (const k of Object.keys(spec) as (keyof TripSpec)[]) {
    if (k === 'merchant' || k === 'orders') continue;
    if (!same(stored[k], spec[k])) out.push(k);
  }
  const storedOrders = new Map<string, unknown>();
  const orders = Array.isArray(stored['orders']) ? (stored['orders'] as unknown[]) : [];
  for (const o of orders) {
    if (typeof o === 'object' && o !== null)
      storedOrders.set(String((o as { order_id?: unknown }).order_id), o);
  }
  for (const o of spec.orders) {
    if (!same(storedOrders.get(o.order_id), o)) out.push(`orders[${o.order_id}]`);
    storedOrders.delete(o.order_id);
  }
  for (const id of storedOrders.keys()) out.push(`orders[${id}]`);
  return out.slice(0, DIFFERING_FIELDS_SHOWN_MAX);
}

/** The 409 of CONTRACT §3: which trip, and what differs from the stored body when that can be told. */
export function conflictMessage(
  shopperId: string,
  tripId: string,
  storedSpec: string,
  spec: TripSpec,
): string {
  const differs = storedSpec === '' ? [] : specDifferences(storedSpec, spec);
  const what = differs.length === 0 ? '' : `: ${differs.join(', ')} differ${differs.length === 1 ? 's' : ''}`;
  return `trip ${tripId} of shopper ${shopperId} exists with a different body${what}`;
}

/** The trip hash fields a new trip starts with (docs/redis-layout.md), besides its totals. */
export function tripHashFields(spec: TripSpec): [string, string | number][] {
  const store = normalizedStore(spec);
  return [
    ['currency', spec.currency],
    ['m_name', store.name],
    ['m_addr', store.address],
    ['lat', spec.merchant.lat ?? ''],
    ['lng', spec.merchant.lng ?? ''],
    ['tax_bps', spec.tax_rate_bps],
    ['tol_bps', spec.tolerance_bps],
    ['tol_cents', spec.tolerance_cents],
    ['hold_cents', spec.hold_cents ?? -1],
    ['est_cents', spec.estimated_cents],
    ...storeEvidenceFields(spec.merchant),
  ];
}

/** The trip's items hash: item_id → {o: order, q: quantity milli, p: unit price, u: unit, e: estimate}. */
export function tripItemEntries(spec: TripSpec): [string, string][] {
  const items: [string, string][] = [];
  for (const order of spec.orders) {
    for (const item of order.items) {
      items.push([
        item.item_id,
        JSON.stringify({
          o: order.order_id,
          q: item.quantity_milli,
          p: item.unit_price_cents,
          u: item.unit,
          e: item.estimated_cents,
        }),
      ]);
    }
  }
  return items;
}

export function normalizedStore(spec: TripSpec): { name: string; address: string } {
  return {
    name: normalizeMerchantName(spec.merchant.name),
    address: normalizeAddress(spec.merchant.address),
  };
}

export type ItemUpdate =
  | { status: 'picked'; quantityMilli: number; unitPriceCents: number | undefined; customerApproved: boolean }
  | { status: 'not_found'; customerApproved: boolean }
  | {
      status: 'replaced';
      replacementItemId: string;
      quantityMilli: number;
      unitPriceCents: number;
      customerApproved: boolean;
    };

export function parseItemUpdate(body: JsonValue): Parsed<ItemUpdate> {
  if (!isObject(body)) return fail('body must be a JSON object');
  const approved = parseOptionalBool(body['customer_approved'], 'customer_approved');
  if (!approved.ok) return approved;
  const status = body['status'];
  if (status === 'not_found') return { ok: true, value: { status, customerApproved: approved.value } };
  if (status === 'picked') {
    const quantity = parseQuantityMilli(body['quantity'], 'quantity');
    if (!quantity.ok) return quantity;
    let price: number | undefined;
    if (body['unit_price'] !== undefined && body['unit_price'] !== null) {
      const p = parseUnitPriceCents(body['unit_price'], 'unit_price');
      if (!p.ok) return p;
      price = p.value;
    }
    return {
      ok: true,
      value: {
        status,
        quantityMilli: quantity.value,
        unitPriceCents: price,
        customerApproved: approved.value,
      },
    };
  }
  if (status === 'replaced') {
    const replacement = body['replacement'];
    if (!isObject(replacement))
      return fail('replacement must be an object with item_id, quantity and unit_price');
    const itemId = parseId(replacement['item_id'], 'replacement.item_id');
    if (!itemId.ok) return itemId;
    const quantity = parseQuantityMilli(replacement['quantity'], 'replacement.quantity');
    if (!quantity.ok) return quantity;
    const price = parseUnitPriceCents(replacement['unit_price'], 'replacement.unit_price');
    if (!price.ok) return price;
    return {
      ok: true,
      value: {
        status,
        replacementItemId: itemId.value,
        quantityMilli: quantity.value,
        unitPriceCents: price.value,
        customerApproved: approved.value,
      },
    };
  }
  return fail('status must be one of picked, not_found, replaced');
}
