// The fail-open journal on a real file: restart, torn lines, bounds, compaction, lock.
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { type FailOpenEntry, Journal, JournalLockedError } from '../../src/failopen/journal.js';

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

test('pending approvals and the window spend survive a reopen; replayed ones are not pending', () => {
  const path = join(dir, 'a.jsonl');
  const j1 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const [a, b, c] = [entry(), entry({ shopper: 's2', amount: 250 }), entry()];
  for (const e of [a, b, c]) expect(j1.append(e)).toBe(true);
  j1.ack(b.id, 'applied');
  j1.close(); // kept: approvals still pending
  expect(existsSync(path)).toBe(true);

  const j2 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(j2.pending().map((e) => e.id)).toEqual([a.id, c.id]);
  expect(j2.pending()[0]).toEqual(a);
  expect(j2.spendInWindow()).toEqual([{ shopper: 's2', at: b.at, amount: 250 }]);
  j2.ack(a.id, 'already_decided');
  j2.ack(c.id, 'conflict');
  expect(j2.pendingCount()).toBe(0);
  j2.close();
});

test('a journal with nothing pending and nothing in the window is removed on close', () => {
  const path = join(dir, 'b.jsonl');
  const old = Date.now() - WINDOW_MS - 1;
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const e = entry({ at: old });
  j.append(e);
  j.ack(e.id, 'applied');
  j.close();
  expect(existsSync(path)).toBe(false);
  expect(existsSync(`${path}.lock`)).toBe(false);
});

test('a torn or corrupted line is skipped and counted, the rest is read', () => {
  const path = join(dir, 'c.jsonl');
  const j1 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  const a = entry();
  j1.append(a);
  j1.flush();
  // Simulate a crash: the lock stays, a half-written line follows.
  appendFileSync(path, '0badf00d {"k":"a","id":"auth_x"}\n7a1b2c3d {"k":"a","id":"auth_');
  const text = readFileSync(path, 'utf8');
  writeFileSync(`${path}.lock`, '999999999'); // a pid that is not alive
  const j2 = (() => {
    j1.close(); // releases this process's lock; rewrite a stale one below
    writeFileSync(path, text);
    writeFileSync(`${path}.lock`, '999999999');
    return Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  })();
  expect(j2.pending().map((e) => e.id)).toEqual([a.id]);
  expect(j2.stats().corruptLines).toBe(2);
  // Appends after a torn tail still start on their own line and are read back.
  const b = entry();
  j2.append(b);
  j2.close();
  const j3 = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(j3.pending().map((e) => e.id)).toEqual([a.id, b.id]);
  j3.close();
});

test('bounded: a full journal refuses the append; compaction drops replayed entries', () => {
  const path = join(dir, 'd.jsonl');
  const j = Journal.open({ path, bytesMax: 4096, windowMs: 1 });
  let accepted = 0;
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const e = entry();
    if (!j.append(e)) break;
    ids.push(e.id);
    accepted++;
  }
  expect(accepted).toBeGreaterThan(5);
  expect(accepted).toBeLessThan(100);
  expect(statSync(path).size).toBeLessThanOrEqual(4096);
  // Replay frees room: compaction keeps only what is pending (window of 1 ms: no spend kept).
  for (const id of ids.slice(0, -1)) j.ack(id, 'applied');
  expect(j.append(entry())).toBe(true);
  expect(j.pendingCount()).toBe(2);
  expect(statSync(path).size).toBeLessThan(2048);
  j.close();
  const again = Journal.open({ path, bytesMax: 4096, windowMs: 1 });
  expect(again.pendingCount()).toBe(2);
  again.close();
});

test('one live process per journal: a second open is refused, a dead holder is taken over', () => {
  const path = join(dir, 'e.jsonl');
  const j = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(() => Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS })).toThrow(JournalLockedError);
  j.close();
  writeFileSync(`${path}.lock`, String(process.ppid)); // a live process that is not us
  expect(() => Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS })).toThrow(
    /in use by live process/,
  );
  writeFileSync(`${path}.lock`, '999999999');
  const taken = Journal.open({ path, bytesMax: 1 << 20, windowMs: WINDOW_MS });
  expect(readFileSync(`${path}.lock`, 'utf8')).toBe(String(process.pid));
  taken.close();
});
