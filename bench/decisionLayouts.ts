// MEMORY USAGE of one decision's keys under candidate layouts (issue 23), on a running
// redis-server given by --port (a private one: it is FLUSHALLed). Prints a markdown table.
//   node .bench-build/bench/decisionLayouts.js --port=19212
import { Redis } from 'ioredis';

const port = Number(/--port=(\d+)/.exec(process.argv.join(' '))?.[1] ?? 0);
if (!port) throw new Error('--port=<private redis-server port> is required (the server is flushed)');
const r = new Redis(port, '127.0.0.1');
const base = '{s:sh_0000012345}:';
const id = 'auth_01JFZ3K9Q7XG2M4N8P6R5T3V1W';
const idem = 'swipe:9f1c2e7a-4b3d-4e8f-a1b2-c3d4e5f60718';
const sig = 'b'.repeat(64);
const full: Record<string, string | number> = {
  code: 0, status: 200, decision: 'approved', mode: 'normal', trip: 'trip_01JFZ3K9Q7XG2M4N8P6R5T3V1W',
  shopper: 'sh_0000012345', amount: 12345, remaining: 87655, currency: 'USD', txn: 'txn_0123456789abcdef',
  idem, fp: 'a'.repeat(64), reversed: 0, at_ms: 1796400000000,
};
// Only what replay and the later events need: status/decision follow from code, idem from the key.
const { status: _s, decision: _d, idem: _i, ...lean } = full;
const packedLean = [...Object.values(lean), idem].join('\x1f');
const AUTH = `${base}auth:${id}`;
const IDEM = `${base}idem:${idem}`;
const SIG = `${base}sig:${sig}`;

async function usage(k: string): Promise<number> {
  return Number((await r.call('MEMORY', 'USAGE', k, 'SAMPLES', '0')) ?? 0);
}

async function measure(label: string, write: () => Promise<unknown>): Promise<string> {
  await r.flushall();
  await write();
  const [a, i, s] = [await usage(AUTH), await usage(IDEM), await usage(SIG)];
  return `| ${label} | ${a} | ${i} | ${s} | ${a + i + s} | ${a + i} |`;
}

const pointers = () => r.multi().set(IDEM, id, 'EX', 259200).set(SIG, id, 'EX', 600).exec();
const rows = [
  await measure('today: auth hash (14 fields) + idem→id + sig→id', async () => {
    await r.multi().hset(AUTH, full).expire(AUTH, 691200).exec();
    await pointers();
  }),
  await measure('trimmed hash (no status/decision/idem) + idem→id + sig→id', async () => {
    await r.multi().hset(AUTH, lean).expire(AUTH, 691200).exec();
    await pointers();
  }),
  await measure('packed string at auth:<id> (all fields) + idem→id + sig→id', async () => {
    await r.set(AUTH, Object.values(full).join('\x1f'), 'EX', 691200);
    await pointers();
  }),
  await measure('packed string at auth:<id> (lean) + idem→id + sig→id', async () => {
    await r.set(AUTH, packedLean, 'EX', 691200);
    await pointers();
  }),
  await measure('packed record at idem (lean) + auth:<id>→idem + sig→idem', async () => {
    await r.set(IDEM, `${id}\x1f${packedLean}`, 'EX', 259200);
    await r.multi().set(AUTH, idem, 'EX', 691200).set(SIG, idem, 'EX', 600).exec();
  }),
  await measure('packed string at auth:<id> only (lower bound of one key)', () => r.set(AUTH, packedLean, 'EX', 691200)),
];
console.log('| layout | auth:<id> B | idem B | sig B (600 s) | total B | kept past 600 s B |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of rows) console.log(row);
r.disconnect();
