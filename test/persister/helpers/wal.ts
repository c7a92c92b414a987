// Writes realistic WAL event sequences in exactly the documented format
// (docs/redis-layout.md, "WAL events": XADD <base>wal * e <event_id> t <type> d <json>)
// and keeps a model of what each trip's totals must be once persisted.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { tripUpsertedPayload, type WalSpecItem } from '../../../bench/walEvents.js';
import { Keys } from '../../../src/redis/keys.js';

export interface TripModel {
  tripId: string;
  shopperId: string;
  partition: number;
  items: Map<string, { q: number; p: number; e: number }>;
  picks: Map<string, number>;
  picked: number;
  approved: number;
  reversed: number;
  authorized: number;
  status: 'open' | 'shopping' | 'closed';
  auths: { id: string; amount: number; reversed: number; txn: string }[];
}

export class WalWriter {
  readonly keys: Keys;
  readonly trips = new Map<string, TripModel>();
  events = 0;

  constructor(
    readonly redis: Redis,
    prefix: string,
    partitions: number,
  ) {
    this.keys = new Keys(prefix, partitions);
  }

  async xadd(partition: number, type: string, d: unknown, eventId = randomUUID()): Promise<string> {
    this.events++;
    return (await this.redis.xadd(
      this.keys.wal(partition),
      '*',
      'e',
      eventId,
      't',
      type,
      'd',
      typeof d === 'string' ? d : JSON.stringify(d),
    )) as string;
  }

  async trip(shopperId: string, tripId: string, itemCount = 3): Promise<TripModel> {
    const partition = this.keys.partition(shopperId);
    const items = new Map<string, { q: number; p: number; e: number }>();
    const specItems: WalSpecItem[] = [];
    for (let i = 0; i < itemCount; i++) {
      const q = (i + 1) * 1000;
      const p = 199 + i * 100;
      const e = Math.floor((q * p + 500) / 1000);
      items.set(`item-${i}`, { q, p, e });
      specItems.push({
        item_id: `item-${i}`,
        quantity_milli: q,
        unit: 'each',
        unit_price_cents: p,
        estimated_cents: e,
      });
    }
    const estimated = [...items.values()].reduce((s, i) => s + i.e, 0);
    await this.xadd(
      partition,
      'trip.upserted',
      tripUpsertedPayload({
        tripId,
        shopperId,
        partition,
        items: specItems,
        estimatedCents: estimated,
        atMs: Date.now(),
      }),
    );
    const model: TripModel = {
      tripId,
      shopperId,
      partition,
      items,
      picks: new Map(),
      picked: 0,
      approved: 0,
      reversed: 0,
      authorized: 0,
      status: 'open',
      auths: [],
    };
    this.trips.set(tripId, model);
    return model;
  }

  async pick(
    t: TripModel,
    itemId: string,
    quantityMilli: number,
    status: 'picked' | 'not_found' = 'picked',
  ): Promise<void> {
    const item = t.items.get(itemId);
    if (item === undefined) throw new Error(`no item ${itemId}`);
    const price = status === 'picked' ? item.p : 0;
    const q = status === 'picked' ? quantityMilli : 0;
    const line = Math.floor((q * price + 500) / 1000);
    t.picked += line - (t.picks.get(itemId) ?? 0);
    t.picks.set(itemId, line);
    if (t.status === 'open') t.status = 'shopping';
    await this.xadd(t.partition, 'item.updated', {
      trip_id: t.tripId,
      shopper_id: t.shopperId,
      item_id: itemId,
      status,
      quantity_milli: q,
      unit_price_cents: price,
      line_cents: line,
      replacement_item_id: null,
      customer_approved: false,
      picked_cents: t.picked,
      at_ms: Date.now(),
    });
  }

  async swipe(
    t: TripModel,
    amount: number,
    approve: boolean,
    reason = 'AMOUNT_EXCEEDS_ALLOWANCE',
  ): Promise<string> {
    const id = randomUUID();
    const txn = `txn_${id}`;
    if (approve) {
      t.approved += amount;
      t.authorized += amount;
      t.auths.push({ id, amount, reversed: 0, txn });
    }
    await this.xadd(t.partition, 'authorization.decided', {
      authorization_id: id,
      idempotency_key: `t:${txn}`,
      fingerprint: 'f'.repeat(64),
      signature: null,
      status: approve ? 200 : 402,
      transaction_id: txn,
      shopper_id: t.shopperId,
      trip_id: t.tripId,
      decision: approve ? 'approved' : 'declined',
      reason: approve ? null : reason,
      mode: 'normal',
      amount_cents: amount,
      remaining_cents: 1000,
      authorized_cents: t.authorized,
      currency: 'USD',
      merchant_name: 'SAFEWAY #1234',
      merchant_address: '123 MAIN STREET',
      lat: null,
      lng: null,
      at_ms: Date.now(),
    });
    return id;
  }

  async reverse(t: TripModel, authIndex: number, amount: number): Promise<void> {
    const a = t.auths[authIndex];
    if (a === undefined) throw new Error('no such auth');
    a.reversed += amount;
    t.reversed += amount;
    t.authorized -= amount;
    await this.xadd(t.partition, 'reversal.applied', {
      reversal_key: `${a.txn}:${randomUUID()}`,
      authorization_id: a.id,
      transaction_id: a.txn,
      shopper_id: t.shopperId,
      trip_id: t.tripId,
      amount_cents: amount,
      reversed_cents: a.reversed,
      held_cents: a.amount - a.reversed,
      authorized_cents: t.authorized,
      at_ms: Date.now(),
    });
  }

  async close(t: TripModel): Promise<void> {
    t.status = 'closed';
    await this.xadd(t.partition, 'trip.closed', {
      trip_id: t.tripId,
      shopper_id: t.shopperId,
      picked_cents: t.picked,
      authorized_cents: t.authorized,
      at_ms: Date.now(),
    });
  }

  /** A realistic little life: trip, picks, swipes (some declined), a re-pick, a reversal, maybe a close. */
  async life(shopperId: string, tripId: string, close: boolean): Promise<TripModel> {
    const t = await this.trip(shopperId, tripId);
    await this.pick(t, 'item-0', 1000);
    await this.pick(t, 'item-1', 2000);
    await this.swipe(t, 150, true);
    await this.swipe(t, 999_999, false);
    await this.pick(t, 'item-0', 500); // replaces the earlier pick
    await this.pick(t, 'item-2', 0, 'not_found');
    await this.swipe(t, 120, true);
    await this.reverse(t, 0, 50);
    if (close) await this.close(t);
    return t;
  }
}
