// The seam between `region-takeover` and the directory of shoppers' home regions
// (docs/regions.md stage 2). Until the directory exists this is a no-op: the
// taken-over shoppers are local here (their trips, cards and authorizations are
// in this region's Postgres and Redis), so a swipe arriving here is decided here;
// a swipe arriving in a third region is not forwarded here until announced.

/** Tells the peers that these shoppers' home is now this region. Returns how many were announced. */
export async function announceTakenOver(shopperIds: readonly string[]): Promise<number> {
  // No directory yet (stage 2): nothing to tell; 0 announced, and the report says so.
  void shopperIds;
  return 0;
}
