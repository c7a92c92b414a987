// Local journal of fail-open approvals (docs/failopen.md).
//
// Append-only file of lines `<crc32 hex> <json>\n`:
//   {"k":"a", ...FailOpenEntry}          an approval made while Redis was degraded
//   {"k":"r","id":"<auth id>","o":"..."} that approval was replayed into Redis
//   {"k":"s","shopper","at","amount"}    a replayed approval still inside the
//                                        fail-open window (kept by compaction so
//                                        the per-shopper cap survives a restart)
//
// - Group commit: records queue while one write() runs in the thread pool;
//   the next write takes every queued record at once. An approval is answered
//   only after the write holding it completed: it is in the kernel's page
//   cache then, so it survives a SIGKILL of the process. The event loop never
//   waits on the disk, so a saturated disk delays fail-open approvals, not
//   every decision of the pod. fdatasync runs batched (at most one per
//   `fsyncIntervalMs`) for power loss; close() waits for the queue and syncs.
// - Bounded: an append that would pass `bytesMax` after compaction is refused
//   (the caller then declines the swipe: nothing is approved that is not
//   journaled). Compaction (when half full and the writer is idle, or when an
//   append does not fit) rewrites only the pending approvals and the spend of
//   the window (tmp + fsync + rename + fsync dir); with neither, the file is
//   truncated. A closed journal with neither is removed.
// - A lock file (`<path>.lock`, holding the pid) keeps two live processes off
//   one journal; a lock left by a dead process is taken over.
// - On open, torn or corrupt lines (bad CRC) are skipped and counted.
import {
  closeSync,
  existsSync,
  fdatasync,
  write as fsWrite,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

/** One fail-open approval, everything the replay script needs (no Redis lookups). */
export type FailOpenEntry = FailOpenApproval;

export type { ReplayOutcome } from '../redis/results.js';
import type { ReplayOutcome } from '../redis/results.js';
import type { FailOpenApproval } from '../redis/commands.js';

export interface JournalOptions {
  readonly path: string;
  readonly bytesMax: number;
  /** FAILOPEN_WINDOW_S in ms: how long replayed approvals still count against their shopper. */
  readonly windowMs: number;
  readonly fsyncIntervalMs?: number;
  readonly now?: () => number;
  /** The write of queued records (fs.write). Tests put a slow or failing disk here. */
  readonly write?: WriteFn;
}

/** fs.write(fd, buffer, offset, length, null, callback): appends at the end of the file (opened 'a'). */
export type WriteFn = (
  fd: number,
  buffer: Buffer,
  offset: number,
  length: number,
  callback: (err: NodeJS.ErrnoException | null, written: number) => void,
) => void;

const fsAppend: WriteFn = (fd, buffer, offset, length, callback) =>
  fsWrite(fd, buffer, offset, length, null, callback);

/** Writes all of buffer from offset; short writes continue; done gets the bytes written in all. */
function writeAll(
  write: WriteFn,
  fd: number,
  buffer: Buffer,
  offset: number,
  done: (err: Error | null, written: number) => void,
): void {
  write(fd, buffer, offset, buffer.length - offset, (err, n) => {
    const total = offset + (n > 0 ? n : 0);
    if (err) done(err, total);
    else if (total >= buffer.length) done(null, total);
    else if (n > 0) writeAll(write, fd, buffer, total, done);
    else done(new Error('journal write wrote nothing'), total);
  });
}

const REFUSED: Promise<boolean> = Promise.resolve(false);

/** A record waiting for the writer: its line, its byte size, and who waits on it (undefined: nobody). */
interface QueuedRecord {
  readonly line: string;
  readonly size: number;
  readonly waiter: ((ok: boolean) => void) | undefined;
}

/** One approval's weight in its shopper's window. */
export interface Spend {
  readonly shopper: string;
  readonly at: number;
  readonly amount: number;
}

export interface JournalStats {
  readonly pending: number;
  readonly bytes: number;
  /** Lines skipped at open because they were torn or failed their CRC. */
  readonly corruptLines: number;
}

export class JournalLockedError extends Error {
  constructor(path: string, pid: number) {
    super(`fail-open journal ${path} is in use by live process ${pid}`);
    this.name = 'JournalLockedError';
  }
}

const openPaths = new Set<string>();

function encodeLine(record: object): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function decodeLine(line: string): Record<string, unknown> | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isEntry(r: Record<string, unknown>): boolean {
  return (
    typeof r['id'] === 'string' &&
    typeof r['ev'] === 'string' &&
    Number.isSafeInteger(r['at']) &&
    typeof r['shopper'] === 'string' &&
    Number.isSafeInteger(r['amount']) &&
    Number.isSafeInteger(r['remaining']) &&
    typeof r['idem'] === 'string' &&
    typeof r['fp'] === 'string'
  );
}

function isSpend(r: Record<string, unknown>): boolean {
  return (
    typeof r['shopper'] === 'string' && Number.isSafeInteger(r['at']) && Number.isSafeInteger(r['amount'])
  );
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class Journal {
  private fd: number;
  private bytes: number;
  /** Pending approvals in journal order (Map keeps insertion order). */
  private readonly pendingById = new Map<string, FailOpenEntry>();
  /** Replayed approvals, oldest first, until they leave the window. */
  private replayedSpend: Spend[] = [];
  private readonly now: () => number;
  private readonly fsyncIntervalMs: number;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing = false;
  private dirty = false;
  private closing = false;
  private closed = false;
  private readonly writeFn: WriteFn;
  /** Records waiting for the writer. */
  private queued: QueuedRecord[] = [];
  /** A write is in the thread pool. */
  private writing = false;
  /** A failed write may have left part of a line: the next write starts with a newline. */
  private tornTail = false;
  private idleWaiters: Array<() => void> = [];
  readonly corruptLines: number;

  private constructor(
    private readonly options: JournalOptions,
    private readonly lockPath: string,
  ) {
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 10;
    this.now = options.now ?? Date.now;
    this.writeFn = options.write ?? fsAppend;
    const acked: Spend[] = [];
    let corrupt = 0;
    if (existsSync(options.path)) {
      const text = readFileSync(options.path, 'utf8');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const r = decodeLine(line);
        if (r === undefined) {
          corrupt++;
          continue;
        }
        if (r['k'] === 'a' && isEntry(r)) {
          const { k: _k, ...entry } = r;
          this.pendingById.set(entry['id'] as string, entry as unknown as FailOpenEntry);
        } else if (r['k'] === 'r' && typeof r['id'] === 'string') {
          const e = this.pendingById.get(r['id']);
          if (e !== undefined) acked.push({ shopper: e.shopper, at: e.at, amount: e.amount });
          this.pendingById.delete(r['id']);
        } else if (r['k'] === 's' && isSpend(r)) {
          acked.push({
            shopper: r['shopper'] as string,
            at: r['at'] as number,
            amount: r['amount'] as number,
          });
        } else {
          corrupt++;
        }
      }
    }
    this.corruptLines = corrupt;
    this.replayedSpend = acked.sort((a, b) => a.at - b.at);
    this.pruneSpend();
    this.fd = openSync(options.path, 'a');
    this.bytes = fstatSync(this.fd).size;
    // A torn last line (crash mid-write) must not swallow the next record.
    if (this.bytes > 0 && !this.endsWithNewline()) {
      writeSync(this.fd, '\n');
      this.bytes += 1;
    }
  }

  private endsWithNewline(): boolean {
    const last = Buffer.alloc(1);
    const fd = openSync(this.options.path, 'r');
    try {
      readSync(fd, last, 0, 1, this.bytes - 1);
    } finally {
      closeSync(fd);
    }
    return last[0] === 0x0a;
  }

  /** Opens (creating directories) and locks the journal; reads every pending approval. */
  static open(options: JournalOptions): Journal {
    if (!(options.bytesMax >= 4096)) throw new Error('journal bytesMax must be >= 4096');
    mkdirSync(dirname(options.path), { recursive: true });
    const lockPath = `${options.path}.lock`;
    if (openPaths.has(lockPath)) throw new JournalLockedError(options.path, process.pid);
    if (existsSync(lockPath)) {
      const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      if (Number.isSafeInteger(pid) && pid !== process.pid && pidAlive(pid)) {
        throw new JournalLockedError(options.path, pid);
      }
    }
    writeFileSync(lockPath, String(process.pid));
    openPaths.add(lockPath);
    try {
      return new Journal(options, lockPath);
    } catch (err) {
      openPaths.delete(lockPath);
      throw err;
    }
  }

  get path(): string {
    return this.options.path;
  }

  stats(): JournalStats {
    return { pending: this.pendingById.size, bytes: this.bytes, corruptLines: this.corruptLines };
  }

  pendingCount(): number {
    return this.pendingById.size;
  }

  /** Pending approvals, oldest first, at most `max`. */
  pending(max = Number.MAX_SAFE_INTEGER): FailOpenEntry[] {
    const out: FailOpenEntry[] = [];
    for (const e of this.pendingById.values()) {
      if (out.length >= max) break;
      out.push(e);
    }
    return out;
  }

  /** Approvals already replayed that still count in their shopper's window (restored after a restart). */
  spendInWindow(): readonly Spend[] {
    this.pruneSpend();
    return this.replayedSpend;
  }

  /**
   * Appends an approval; resolves once it is written (true) or refused (false:
   * full, closing, or the write failed). The caller must not approve on false.
   * The entry is pending (replayable) only once written.
   */
  append(entry: FailOpenEntry): Promise<boolean> {
    if (this.closed || this.closing) return REFUSED;
    const line = encodeLine({ k: 'a', ...entry });
    const size = Buffer.byteLength(line);
    if (this.bytes + size > this.options.bytesMax) {
      // Compaction rewrites the file: only while nothing is queued, written or synced.
      if (!this.quiet()) return REFUSED;
      try {
        this.compact();
      } catch {
        return REFUSED;
      }
      if (this.bytes + size > this.options.bytesMax) return REFUSED;
    }
    return new Promise((resolve) => {
      this.enqueue(line, size, (ok) => {
        if (ok) this.pendingById.set(entry.id, entry);
        resolve(ok);
      });
    });
  }

  /** Records that an approval was replayed into Redis; it is no longer pending. */
  ack(id: string, outcome: ReplayOutcome): void {
    if (this.closed || !this.pendingById.has(id)) return;
    const line = encodeLine({ k: 'r', id, o: outcome });
    // Nobody waits on an ack: if it is lost, the next replay finds the key decided (idempotent).
    this.enqueue(line, Buffer.byteLength(line), undefined);
    const e = this.pendingById.get(id) as FailOpenEntry;
    this.replayedSpend.push({ shopper: e.shopper, at: e.at, amount: e.amount });
    this.pendingById.delete(id);
  }

  /** Waits for every queued record to be written, then fdatasyncs (shutdown, tests). */
  async flush(): Promise<void> {
    await this.idle();
    this.syncNow();
  }

  /** Refuses new appends, waits for the queue, syncs and closes. An empty journal is removed with its lock. */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    await this.idle();
    this.syncNow();
    this.closed = true;
    closeSync(this.fd);
    if (this.pendingById.size === 0 && this.spendInWindow().length === 0) {
      try {
        unlinkSync(this.options.path);
      } catch {
        // already gone
      }
    }
    try {
      unlinkSync(this.lockPath);
    } catch {
      // already gone
    }
    openPaths.delete(this.lockPath);
  }

  private syncNow(): void {
    if (this.closed) return;
    if (this.syncTimer !== undefined) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    if (this.dirty) fdatasyncSync(this.fd);
    this.dirty = false;
  }

  /** Nothing queued, being written or being synced: the file may be rewritten. */
  private quiet(): boolean {
    return !this.writing && this.queued.length === 0 && !this.syncing;
  }

  /** Resolves when nothing is queued, being written or being synced. */
  private idle(): Promise<void> {
    if (this.quiet()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** After a write or a sync: wake whoever waits for quiet, and compact if it is due. */
  private settle(): void {
    if (!this.quiet()) return;
    const waiting = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of waiting) f();
    this.maybeCompact();
  }

  private enqueue(line: string, size: number, waiter: ((ok: boolean) => void) | undefined): void {
    this.bytes += size;
    this.queued.push({ line, size, waiter });
    this.kick();
  }

  /** Starts one write of everything queued, unless a write is already running. */
  private kick(): void {
    if (this.writing || this.queued.length === 0) return;
    const records = this.queued;
    this.queued = [];
    const prefix = this.tornTail ? 1 : 0;
    const data = Buffer.from((prefix ? '\n' : '') + records.map((r) => r.line).join(''));
    this.writing = true;
    writeAll(this.writeFn, this.fd, data, 0, (err, written) => {
      this.writing = false;
      // Each record wholly written succeeded; one cut off by an error is a torn line (skipped at open).
      let end = prefix;
      for (const r of records) {
        end += r.size;
        r.waiter?.(written >= end);
      }
      this.tornTail = err !== null && written < data.length;
      if (written > 0) {
        this.dirty = true;
        this.scheduleSync();
      }
      if (this.queued.length > 0) this.kick();
      else this.settle();
    });
  }

  private scheduleSync(): void {
    if (this.syncTimer !== undefined || this.closed) return;
    this.syncTimer = setTimeout(() => this.syncBatch(), this.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private syncBatch(): void {
    this.syncTimer = undefined;
    if (this.closed || !this.dirty || this.syncing) return;
    this.dirty = false;
    this.syncing = true;
    fdatasync(this.fd, () => {
      // An error here (EIO) cannot be retried meaningfully; the next batch tries again.
      this.syncing = false;
      this.settle();
    });
  }

  /** Compaction fsyncs on the event loop: only when the file is half full and the writer is idle. */
  private maybeCompact(): void {
    if (this.closed || this.closing || this.bytes <= this.options.bytesMax / 2) return;
    try {
      this.compact();
    } catch {
      // the next quiet moment tries again; appends are refused while the file is full
    }
  }

  private pruneSpend(): void {
    const oldest = this.now() - this.options.windowMs;
    let drop = 0;
    while (drop < this.replayedSpend.length && (this.replayedSpend[drop] as Spend).at <= oldest) drop++;
    if (drop > 0) this.replayedSpend = this.replayedSpend.slice(drop);
  }

  /** Keeps only pending approvals and the window's spend. Truncates in place when there is neither. */
  private compact(): void {
    this.pruneSpend();
    if (this.pendingById.size === 0 && this.replayedSpend.length === 0) {
      ftruncateSync(this.fd, 0);
      this.bytes = 0;
      return;
    }
    const lines = [
      ...this.replayedSpend.map((sp) => encodeLine({ k: 's', ...sp })),
      ...[...this.pendingById.values()].map((e) => encodeLine({ k: 'a', ...e })),
    ];
    const text = lines.join('');
    const tmp = `${this.options.path}.tmp`;
    const tmpFd = openSync(tmp, 'w');
    try {
      writeSync(tmpFd, text);
      fdatasyncSync(tmpFd);
    } finally {
      closeSync(tmpFd);
    }
    renameSync(tmp, this.options.path);
    const dirFd = openSync(dirname(this.options.path), 'r');
    try {
      fdatasyncSync(dirFd);
    } catch {
      // some filesystems refuse fsync on a directory
    } finally {
      closeSync(dirFd);
    }
    closeSync(this.fd);
    this.fd = openSync(this.options.path, 'a');
    this.bytes = Buffer.byteLength(text);
    this.dirty = false;
  }
}
