// Where a shopper or a card lives (docs/regions.md, "Directory"): the region's copy in
// its Redis (shared by its pods, with a TTL), a bounded short-lived copy in each pod,
// filled by the home regions' announcements and, on a miss, by asking every peer at
// once. Only "not here" answers consult it, so the local hot path never does. Unknown
// stays unknown: a swipe nobody claims is declined, never approved.

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

/** Entries kept in one pod; the oldest go first when full. */
export const DIRECTORY_ENTRIES_MAX = 200_000;
/** A pod trusts its own copy of an entry this long, then reads the region's (Redis) again. */
export const DIRECTORY_LOCAL_TTL_MS = 30_000;
/** A key no peer claimed is not asked again for this long (a burst of unknown swipes asks once). */
export const DIRECTORY_MISS_TTL_MS = 2000;
const MISSES_MAX = 50_000;

/** Asks every peer at once whether it is the key's home; undefined when none says yes. */
export type AskPeers = (key: HomeKey) => Promise<Home | undefined>;

/** The region's copy of the directory, shared by its pods (Redis); failures read as "not known". */
export interface DirectoryStore {
  get(key: HomeKey): Promise<Home | undefined>;
  set(key: HomeKey, home: Home): Promise<void>;
  del(key: HomeKey): Promise<void>;
}

interface Entry {
  readonly home: Home;
  readonly atMs: number;
}

export class Directory {
  private readonly homes = new Map<HomeKey, Entry>();
  private readonly misses = new Map<HomeKey, number>();
  private readonly asking = new Map<HomeKey, Promise<Home | undefined>>();

  constructor(
    private readonly ask: AskPeers,
    private readonly store: DirectoryStore,
    private readonly onSize: (entries: number) => void = () => undefined,
  ) {}

  /** The key's home: this pod's fresh copy, else the region's, else asked of the peers (one question per key at a time). */
  async lookup(key: HomeKey): Promise<Home | undefined> {
    const known = this.homes.get(key);
    if (known !== undefined && Date.now() - known.atMs < DIRECTORY_LOCAL_TTL_MS) return known.home;
    const missedAt = this.misses.get(key);
    if (missedAt !== undefined && Date.now() - missedAt < DIRECTORY_MISS_TTL_MS) return undefined;
    let pending = this.asking.get(key);
    if (pending === undefined) {
      pending = this.resolve(key, known?.home).finally(() => this.asking.delete(key));
      this.asking.set(key, pending);
    }
    return pending;
  }

  /** What this region already knows of the key's home, without asking the peers. */
  async peek(key: HomeKey): Promise<Home | undefined> {
    const known = this.homes.get(key);
    if (known !== undefined && Date.now() - known.atMs < DIRECTORY_LOCAL_TTL_MS) return known.home;
    return (await this.store.get(key).catch(() => undefined)) ?? known?.home;
  }

  /** This pod's copy of the entry, however old (no I/O): what a lookup out of time falls back on. */
  known(key: HomeKey): Home | undefined {
    return this.homes.get(key)?.home;
  }

  /** A home region said so (an answer or an announcement): the latest word wins, region-wide. */
  async learn(key: HomeKey, home: Home): Promise<void> {
    this.keep(key, home);
    await this.store.set(key, home);
  }

  /** The named home answered "not here": the entry is stale, here and region-wide. */
  async forget(key: HomeKey): Promise<void> {
    if (this.homes.delete(key)) this.onSize(this.homes.size);
    await this.store.del(key);
  }

  size(): number {
    return this.homes.size;
  }

  private async resolve(key: HomeKey, stale: Home | undefined): Promise<Home | undefined> {
    const stored = await this.store.get(key).catch(() => undefined);
    if (stored !== undefined) {
      this.keep(key, stored);
      return stored;
    }
    const asked = await this.ask(key).catch(() => undefined);
    if (asked !== undefined) {
      await this.learn(key, asked);
      return asked;
    }
    // No peer claims it (or none answered): a copy this pod still has keeps serving until
    // a home says otherwise, so a silent home is still known to be the home.
    if (stale !== undefined) return stale;
    if (this.misses.size >= MISSES_MAX) this.misses.clear();
    this.misses.set(key, Date.now());
    return undefined;
  }

  private keep(key: HomeKey, home: Home): void {
    this.misses.delete(key);
    this.homes.delete(key); // re-insert: the map's order is the eviction order
    if (this.homes.size >= DIRECTORY_ENTRIES_MAX) {
      const oldest = this.homes.keys().next();
      if (oldest.done !== true) this.homes.delete(oldest.value);
    }
    this.homes.set(key, { home, atMs: Date.now() });
    this.onSize(this.homes.size);
  }
}
