// Redis commands sent in one event-loop turn leave in at most two writes. uWS hands the api a
// whole batch of requests in one poll phase; without this each request's EVALSHA is its own
// write(2). The first command of a turn is written at once (a lone request waits for
// nothing); from the second on, the socket is corked and uncorked in setImmediate, right after
// the poll phase, so the rest of the turn's commands leave as one writev (a pending immediate
// keeps the poll from blocking).
// Trade-off (measured with `npm run bench`): 8-12 % less api CPU and ~10 % less Redis CPU below
// saturation, but 12-14 % less maximum throughput: Redis no longer starts on the first
// requests of a batch while the api still parses the rest. So the api has it off by default
// (REDIS_COALESCE_WRITES); limit (3c) of the bench measures it.
import type { RedisClient } from './client.js';

interface Corkable {
  cork(): void;
  uncork(): void;
}

export class WriteCoalescer {
  private turnOpen = false;
  private corked: Corkable | undefined;

  constructor(private readonly client: RedisClient) {}

  /** Before sending a command. */
  hold(): void {
    if (!this.turnOpen) {
      this.turnOpen = true;
      setImmediate(this.release);
      return;
    }
    if (this.corked !== undefined) return;
    // The connected socket; ioredis replaces it on reconnect, so it is read on every turn.
    const stream = (this.client as unknown as { stream?: Corkable }).stream;
    if (stream === undefined) return;
    stream.cork();
    this.corked = stream;
  }

  private readonly release = (): void => {
    this.turnOpen = false;
    const stream = this.corked;
    this.corked = undefined;
    stream?.uncork();
  };
}
