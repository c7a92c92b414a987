// WAL event payloads shared by the persister bench and the persister tests' WAL writer
// (test/persister/helpers/wal.ts), in the format of docs/redis-layout.md "WAL events".

/** One item of a trip spec as the WAL carries it. */
export interface WalSpecItem {
  readonly item_id: string;
  readonly quantity_milli: number;
  readonly unit: string;
  readonly unit_price_cents: number;
  readonly estimated_cents: number;
}

/** A `trip.upserted` payload: one order at the standard Safeway store, USD, the standard tolerances. */
export function tripUpsertedPayload(trip: {
  readonly tripId: string;
  readonly shopperId: string;
  readonly partition: number;
  readonly items: readonly WalSpecItem[];
  readonly estimatedCents: number;
  readonly atMs: number;
}): Record<string, unknown> {
  return {
    trip_id: trip.tripId,
    shopper_id: trip.shopperId,
    partition: trip.partition,
    merchant: { name: 'Safeway', address: '123 Main St', lat: '37.77', lng: '-122.41' },
    currency: 'USD',
    tax_rate_bps: 925,
    tolerance_bps: 500,
    tolerance_cents: 200,
    hold_cents: null,
    estimated_cents: trip.estimatedCents,
    orders: [{ order_id: 'o-1', items: trip.items }],
    at_ms: trip.atMs,
  };
}
