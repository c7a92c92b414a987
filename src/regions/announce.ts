// The seam between `region-takeover` and the directory of home regions (docs/regions.md
// "Directory"): the taken-over shoppers and their processor cards are announced to every peer
// as living in this region, replacing entries that still point at the lost region.
import type { Knex } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { cardKey, shopperKey } from './directory.js';
import { type AnnouncedKey, announceHome } from './regions.js';

/**
 * Tells the peers that these shoppers (and their cards, read from `replica`) now live in this
 * region. Returns how many shoppers every peer took: with peers missing it, 0 for this page (the
 * peers then ask on a miss; a later run announces again). No peers (one region): 0.
 */
export async function announceTakenOver(
  config: Config,
  logger: Logger,
  replica: Knex,
  shopperIds: readonly string[],
): Promise<number> {
  if (config.regions.peers.size === 0 || shopperIds.length === 0) return 0;
  const cards = (await replica.raw(
    'select processor, card_id, shopper_id from processor_cards where shopper_id = any(?)',
    [[...shopperIds]],
  )) as { rows: { processor: string; card_id: string; shopper_id: string }[] };
  const keys: AnnouncedKey[] = [
    ...shopperIds.map((id) => ({ key: shopperKey(id), shopperId: id })),
    ...cards.rows.map((c) => ({ key: cardKey(c.processor, c.card_id), shopperId: c.shopper_id })),
  ];
  const missed = await announceHome(config, logger, config.regions.region, keys);
  if (missed.length > 0)
    logger.warn({ missed, shoppers: shopperIds.length }, 'takeover announcement missed peers');
  return missed.length === 0 ? shopperIds.length : 0;
}
