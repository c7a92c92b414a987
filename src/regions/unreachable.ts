// Why the fail-open policy answers a swipe that belongs to another region: its home
// region did not answer within REGION_FORWARD_TIMEOUT_MS. The policy journals the
// approval with the home's name; the replayer sends it there (src/regions/replaySender.ts).
export class HomeUnreachableError extends Error {
  constructor(readonly home: string) {
    super(`home region ${home} did not answer in time`);
    this.name = 'HomeUnreachableError';
  }
}
