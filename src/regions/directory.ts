// Where a shopper or a card lives (docs/regions.md, "Directory"): a bounded map in
// this pod, filled by the home regions' announcements and, on a miss, by asking
// every peer at once. Only "not here" answers consult it, so the local hot path
// never does. Unknown stays unknown: a swipe nobody claims is declined, never approved.

/** `s:<shopper_id>` or `c:<processor>:<card_id>` (ids have no ':'). */
export type HomeKey = string;

export function shopperKey(shopperId: string): HomeKey {
  return `s:${shopperId}`;
}

export function cardKey(processor: string, cardId: string): HomeKey {
  return `c:${processor}:${cardId}`;
}

export interface Home {
  readonly region: string;
  /** The card's shopper (card keys), so the fail-open policy can cap and replay it. */
  readonly shopperId?: string;
}

/** Entries kept; the oldest go first when full. */
export const DIRECTORY_ENTRIES_MAX = 200_000;
/** A key no peer claimed is not asked again for this long (a burst of unknown swipes asks once). */
export const DIRECTORY_MISS_TTL_MS = 2000;
const MISSES_MAX = 50_000;

/** Asks every peer at once whether it is the key's home; undefined when none says yes. */
export type AskPeers = (key: HomeKey) => Promise<Home | undefined>;

export class Directory {
  private readonly homes = new Map<HomeKey, Home>();
  private readonly misses = new Map<HomeKey, number>();
  private readonly asking = new Map<HomeKey, Promise<Home | undefined>>();

  constructor(
    private readonly ask: AskPeers,
    private readonly onSize: (entries: number) => void = () => undefined,
  ) {}

  /** The key's home: known, else asked of the peers (one question per key at a time). */
  async lookup(key: HomeKey): Promise<Home | undefined> {
    const known = this.homes.get(key);
    if (known !== undefined) return known;
    const missedAt = this.misses.get(key);
    if (missedAt !== undefined && Date.now() - missedAt < DIRECTORY_MISS_TTL_MS) return undefined;
    let pending = this.asking.get(key);
    if (pending === undefined) {
      pending = this.ask(key)
        .catch(() => undefined)
        .then((home) => {
          if (home === undefined) this.miss(key);
          else this.learn(key, home);
          return home;
        })
        .finally(() => this.asking.delete(key));
      this.asking.set(key, pending);
    }
    return pending;
  }

  /** A home region said so (an answer or an announcement): the latest word wins. */
  learn(key: HomeKey, home: Home): void {
    this.misses.delete(key);
    this.homes.delete(key); // re-insert: the map's order is the eviction order
    if (this.homes.size >= DIRECTORY_ENTRIES_MAX) {
      const oldest = this.homes.keys().next();
      if (oldest.done !== true) this.homes.delete(oldest.value);
    }
    this.homes.set(key, home);
    this.onSize(this.homes.size);
  }

  /** The named home answered "not here": the entry is stale. */
  forget(key: HomeKey): void {
    if (this.homes.delete(key)) this.onSize(this.homes.size);
  }

  size(): number {
    return this.homes.size;
  }

  private miss(key: HomeKey): void {
    if (this.misses.size >= MISSES_MAX) this.misses.clear();
    this.misses.set(key, Date.now());
  }
}
