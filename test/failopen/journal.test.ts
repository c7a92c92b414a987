// The fail-open journal on a real file: restart, torn lines, bounds, compaction,
// lock, and group commit (a slow or failing disk is put in place of fs.write).
import {
  appendFileSync,
  existsSync,
  write as fsWrite,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { type FailOpenEntry, Journal, JournalLockedError, type WriteFn } from '../../src/failopen/journal.js';
import { heldDisk } from './heldDisk.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const WINDOW_MS = 600_000;
let n = 0;

function entry(over: Partial<FailOpenEntry> = {}): FailOpenEntry {
  n++;
  return {
    id: `auth_${n}`,
    ev: `ev_${n}`,
    at: Date.now(),
    shopper: 's1',
    amount: 1000,
    remaining: 0,
    currency: 'USD',
    idem: `t:txn_${n}`,
    fp: 'fp',
    txn: `txn_${n}`,
    mname: 'Safeway',
    maddr: '123 Main St',
    lat: '',
    lng: '',
    ...over,
  };
}

test('pending approvals and the window spend survive a reopen; replayed ones are not pending', async () => {
  const path = join(dir, 'a.jsonl');
  const j1 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const [a, b, c] = [entry(), entry({ shopper: 's2', amount: 250 }), entry()];
  expect(await Promise.all([a, b, c].map((e) => j1.append(e)))).toEqual([true, true, true]);
  j1.ack(b.id, 'applied');
  await j1.close(); // kept: approvals still pending
  expect(existsSync(path)).toBe(true);

  const j2 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(j2.pending().map((e) => e.id)).toEqual([a.id, c.id]);
  expect(j2.pending()[0]).toEqual(a);
  expect(j2.spendInWindow()).toEqual([{ shopper: 's2', at: b.at, amount: 250 }]);
  j2.ack(a.id, 'already_decided');
  j2.ack(c.id, 'conflict');
  expect(j2.pendingCount()).toBe(0);
  await j2.close();
});

test('a journal with nothing pending and nothing in the window is removed on close', async () => {
  const path = join(dir, 'b.jsonl');
  const old = Date.now() - WINDOW_MS - 1;
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const e = entry({ at: old });
  expect(await j.append(e)).toBe(true);
  j.ack(e.id, 'applied');
  await j.close();
  expect(existsSync(path)).toBe(false);
  expect(existsSync(`${path}.lock`)).toBe(false);
});

test('a torn or corrupted line is skipped and counted, the rest is read', async () => {
  const path = join(dir, 'c.jsonl');
  const j1 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const a = entry();
  await j1.append(a);
  await j1.flush();
  // Simulate a crash: the lock stays, a half-written line follows.
  appendFileSync(path, '0badf00d {"k":"a","id":"auth_x"}\n7a1b2c3d {"k":"a","id":"auth_');
  const text = readFileSync(path, 'utf8');
  writeFileSync(`${path}.lock`, '999999999'); // a pid that is not alive
  await j1.close(); // releases this process's lock; rewrite a stale one below
  writeFileSync(path, text);
  writeFileSync(`${path}.lock`, '999999999');
  const j2 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(j2.pending().map((e) => e.id)).toEqual([a.id]);
  expect(j2.stats().corruptLines).toBe(2);
  // Appends after a torn tail still start on their own line and are read back.
  const b = entry();
  await j2.append(b);
  await j2.close();
  const j3 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(j3.pending().map((e) => e.id)).toEqual([a.id, b.id]);
  await j3.close();
});

test('bounded: a full journal refuses the append; compaction drops replayed entries', async () => {
  const path = join(dir, 'd.jsonl');
  const j = Journal.open({ path, bytesMax: 4096, windowMs: 1 });
  let accepted = 0;
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const e = entry();
    if (!(await j.append(e))) break;
    ids.push(e.id);
    accepted++;
  }
  expect(accepted).toBeGreaterThan(5);
  expect(accepted).toBeLessThan(100);
  expect(statSync(path).size).toBeLessThanOrEqual(4096);
  // Replay frees room: compaction keeps only what is pending (window of 1 ms: no spend kept).
  // The acks are written, then (the file over half full, the writer idle) compacted.
  for (const id of ids.slice(0, -1)) j.ack(id, 'applied');
  await j.flush();
  expect(await j.append(entry())).toBe(true);
  expect(j.pendingCount()).toBe(2);
  expect(statSync(path).size).toBeLessThan(2048);
  await j.close();
  const again = Journal.open({ path, bytesMax: 4096, windowMs: 1 });
  expect(again.pendingCount()).toBe(2);
  await again.close();
});

test('one live process per journal: a second open is refused, a dead holder is taken over', async () => {
  const path = join(dir, 'e.jsonl');
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(() => Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS })).toThrow(JournalLockedError);
  await j.close();
  writeFileSync(`${path}.lock`, String(process.ppid)); // a live process that is not us
  expect(() => Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS })).toThrow(
    /in use by live process/,
  );
  writeFileSync(`${path}.lock`, '999999999');
  const taken = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(readFileSync(`${path}.lock`, 'utf8')).toBe(String(process.pid));
  await taken.close();
});

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
};

test('a slow disk does not hold the event loop; records queued meanwhile go out in one write', async () => {
  const path = join(dir, 'f.jsonl');
  const disk = heldDisk();
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS, write: disk.write });
  const [a, b, c] = [entry(), entry(), entry()];
  const first = j.append(a);
  // The write of a is held, yet the loop turns: b and c queue behind it.
  expect(await settled(first)).toBe(false);
  const rest = [j.append(b), j.append(c)];
  expect(disk.calls).toHaveLength(1);
  expect(j.pendingCount()).toBe(0); // not pending (replayable) before it is written
  disk.release();
  expect(await first).toBe(true);
  await new Promise((r) => setImmediate(r));
  expect(disk.calls).toHaveLength(2); // b and c together
  expect(disk.calls[1]?.toString()).toContain(b.id);
  expect(disk.calls[1]?.toString()).toContain(c.id);
  disk.release();
  expect(await Promise.all(rest)).toEqual([true, true]);
  expect(j.pending().map((e) => e.id)).toEqual([a.id, b.id, c.id]);
  const closing = j.close();
  await closing;
  const again = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(again.pending().map((e) => e.id)).toEqual([a.id, b.id, c.id]);
  await again.close();
});

test('a failed write refuses its records; a line it cut off does not swallow the next record', async () => {
  const path = join(dir, 'g.jsonl');
  let fail = true;
  // The first write puts half of its bytes on disk, then fails (a disk that filled up).
  const write: WriteFn = (fd, buffer, offset, length, callback) => {
    if (!fail) return fsWrite(fd, buffer, offset, length, null, callback);
    fail = false;
    const half = Math.floor(length / 2);
    fsWrite(fd, buffer, offset, half, null, (err, n) => {
      const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      callback(err ?? enospc, n);
    });
  };
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS, write });
  const lost = entry();
  expect(await j.append(lost)).toBe(false);
  expect(j.pendingCount()).toBe(0);
  const kept = entry();
  expect(await j.append(kept)).toBe(true);
  await j.close();
  const again = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(again.pending().map((e) => e.id)).toEqual([kept.id]);
  expect(again.stats().corruptLines).toBe(1);
  await again.close();
});
