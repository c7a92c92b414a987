// Rebuilds a partition's processor cards from Postgres (processor_cards) after Redis
// lost data: called by the Hydrator before it marks the partition intact.
import type { Knex } from '@mikro-orm/postgresql';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { hydrateCard } from '../redis/commands.js';

/** Cards per page: bounds one query and the calls made per page. */
const CARDS_PAGE_MAX = 500;

interface CardRow {
  processor: string;
  card_id: string;
  shopper_id: string;
  status: string;
  owners: string;
  updated_ms: string;
}

export async function hydrateCards(
  knex: Knex,
  scripts: ScriptRunner,
  keys: Keys,
  p: number,
): Promise<number> {
  const exists = (await knex.raw(`select to_regclass('processor_cards') is not null as ok`)) as {
    rows: { ok: boolean }[];
  };
  if (exists.rows[0]?.ok !== true) return 0;
  let after = { processor: '', card: '' };
  let n = 0;
  for (;;) {
    const res = (await knex.raw(
      `select processor, card_id, shopper_id, status, owners, updated_ms::text as updated_ms
         from processor_cards
        where partition = ? and (processor, card_id) > (?, ?)
        order by processor, card_id
        limit ?`,
      [p, after.processor, after.card, CARDS_PAGE_MAX],
    )) as { rows: CardRow[] };
    for (const c of res.rows) {
      await hydrateCard({ keys, scripts }, p, {
        processor: c.processor,
        cardId: c.card_id,
        shopperId: c.shopper_id,
        status: c.status,
        owners: c.owners,
        atMs: c.updated_ms,
      });
      n++;
    }
    if (res.rows.length < CARDS_PAGE_MAX) return n;
    const last = res.rows.at(-1) as CardRow;
    after = { processor: last.processor, card: last.card_id };
  }
}
