// One keep-alive HTTP link to a peer region (CONTRACT §8): one attempt per request,
// a hard deadline, a cap on requests in flight and a small circuit breaker, so a slow
// or dead peer costs this pod a bounded number of sockets and never a retry storm.
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { RegionForwardOutcome } from '../observability/metrics.js';

/** Requests in flight to one peer; more are refused at once (the fail-open policy answers). */
export const PEER_INFLIGHT_MAX = 256;
/** Consecutive timeouts or errors that open the link's breaker. */
export const PEER_FAILURES_TO_OPEN = 5;
/** How long an open breaker refuses before one request may try the peer again. */
export const PEER_OPEN_MS = 2000;
/** Largest answer body read from a peer (the biggest answer is a trip view). */
export const PEER_REPLY_BYTES_MAX = 1024 * 1024;

export interface PeerReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** A forward that got no answer: why (a region_forward_total outcome). */
export class PeerFailure extends Error {
  constructor(
    readonly outcome: Exclude<RegionForwardOutcome, 'answered' | 'not_home'>,
    message: string,
  ) {
    super(message);
    this.name = 'PeerFailure';
  }
}

export interface PeerCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly timeoutMs: number;
}

export class PeerLink {
  private readonly agent: Agent;
  private readonly url: URL;
  private inflight = 0;
  private failures = 0;
  private openUntilMs = 0;
  private probing = false;

  constructor(
    readonly name: string,
    baseUrl: string,
  ) {
    this.url = new URL(baseUrl);
    const options = { keepAlive: true, maxSockets: PEER_INFLIGHT_MAX, maxFreeSockets: 64, timeout: 60_000 };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent(options) : new Agent(options);
  }

  /** Sends one request; resolves with the peer's answer or rejects with a PeerFailure. */
  async send(call: PeerCall): Promise<PeerReply> {
    this.admit();
    this.inflight++;
    try {
      const reply = await this.once(call);
      this.failures = 0;
      this.openUntilMs = 0;
      return reply;
    } catch (err) {
      if (++this.failures >= PEER_FAILURES_TO_OPEN) this.openUntilMs = Date.now() + PEER_OPEN_MS;
      throw err;
    } finally {
      this.inflight--;
      this.probing = false;
    }
  }

  /** Refuses at once when the link is saturated or its breaker is open (one probe per open period). */
  private admit(): void {
    if (this.inflight >= PEER_INFLIGHT_MAX)
      throw new PeerFailure(
        'refused',
        `${PEER_INFLIGHT_MAX} requests already in flight to region ${this.name}`,
      );
    if (this.openUntilMs === 0) return;
    if (Date.now() < this.openUntilMs || this.probing)
      throw new PeerFailure('refused', `region ${this.name} failed ${this.failures} times in a row`);
    this.probing = true; // half-open: this request tries the peer
  }

  /** Settles exactly once: the deadline, an error, a cut-off or oversized body each reject. */
  private once(call: PeerCall): Promise<PeerReply> {
    return new Promise<PeerReply>((resolve, reject) => {
      let done = false;
      const fail = (err: PeerFailure): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send({
        agent: this.agent,
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port,
        method: call.method,
        path: `${this.url.pathname.replace(/\/$/, '')}${call.path}`,
        headers: { ...call.headers, 'content-length': String(call.body.length) },
      });
      // Rejects itself: once the head has arrived, destroying the request emits no error.
      const timer = setTimeout(() => {
        fail(new PeerFailure('timeout', `region ${this.name} did not answer within ${call.timeoutMs} ms`));
      }, call.timeoutMs);
      req.once('error', (err) => fail(new PeerFailure('error', `region ${this.name}: ${err.message}`)));
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > PEER_REPLY_BYTES_MAX) fail(new PeerFailure('error', 'answer too large'));
          else chunks.push(c);
        });
        res.once('end', () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.once('error', () => undefined); // 'close' below reports it
        // Closed before 'end': the peer cut the body off; a partial answer is never taken.
        res.once('close', () => fail(new PeerFailure('error', `region ${this.name} cut its answer off`)));
      });
      req.end(call.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
