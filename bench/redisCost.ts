// The Redis cost of one decision (issue 23), before and after in one run: the bench's swipe mix
// sent straight to a private redis-server (nothing else on it, so INFO commandstats and
// used_memory are this run's alone), once with authorizeSwipe as built at an earlier commit
// ("before", its Lua read from git) and once with this tree's build ("after"), and once with a
// minimal authorize-like script (the bound: read the trip, check, increment, set the
// idempotency key). Per script: server µs per call and the commands it ran per call (INFO
// commandstats), Redis memory kept per decision (used_memory growth, WAL streams excluded) and
// WAL bytes per decision (MEMORY USAGE of the streams).
//   node .bench-build/bench/redisCost.js [--before=<commit>] [--decisions=N] [--port=P] [--after-lua=<file>] [--docs]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { VELOCITY_IN_HASH_SWIPES_MAX } from '../src/redis/commands.js';
import { Keys } from '../src/redis/keys.js';
import { SCRIPTS } from '../src/redis/scripts.generated.js';
import { replaceSection, SECTIONS } from './report.js';
import { authorizeCall, BENCH_CONFIG, benchShoppers, Rng, STORE, SwipeMix } from './workload.js';
import type { Config } from '../src/config/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The commit "before" is read from: main before issue 23's changes. */
export const REDIS_COST_BEFORE_DEFAULT = '21a8731';
const PARTITIONS = 64;
const SHOPPERS = 2_000;
const PIPELINE_CALLS = 64;
/**
 * Decision time advances this much per call: a trip sees a swipe every ~SHOPPERS/10 s, so the
 * velocity window holds what it holds in steady state, not every swipe of the run.
 */
const SWIPE_SPACING_MS = 100;

export interface RedisCost {
  readonly label: string;
  readonly calls: number;
  readonly usPerCall: number;
  /** Commands the script ran per call (every cmdstat except EVALSHA itself). */
  readonly commandsPerCall: number;
  /** MEMORY USAGE of the script's keys (WAL streams excluded): growth per call. */
  readonly bytesKeptPerCall: number;
  /** used_memory growth per call, WAL excluded: adds the keyspace's own tables, moves in steps when they resize. */
  readonly usedMemoryPerCall: number;
  readonly walBytesPerCall: number;
  /** The commands that cost the most server time, µs per call. */
  readonly top: ReadonlyArray<readonly [string, number]>;
}

export interface RedisCostResults {
  readonly before: RedisCost | { readonly label: string; readonly error: string };
  /** This tree with every rollout flag off (JSON WAL payload, velocity in the :swipes set: a rollout's first step). */
  readonly afterJson: RedisCost;
  readonly after: RedisCost;
  readonly minimal: RedisCost;
  /** FLOOR_LUA: the commands an approval needs in this layout, no logic. */
  readonly floor: RedisCost;
  readonly beforeCommit: string;
}

/** A lua/ script as built at `commit` (includes inlined as scripts/build-lua.mjs does). */
function luaAtCommit(commit: string, file: string, seen = new Set<string>()): string {
  const text = execFileSync('git', ['show', `${commit}:lua/${file}`], { cwd: ROOT, encoding: 'utf8' });
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^---\s*@include\s+"([A-Za-z0-9_/-]+)"\s*$/.exec(line);
    if (m === null) out.push(line);
    else if (!seen.has(m[1]!)) {
      seen.add(m[1]!);
      out.push(luaAtCommit(commit, `${m[1]}.lua`, seen));
    }
  }
  return out.join('\n');
}

/** The bound: what any authorize script must do (read the trip, check, count, remember the key). */
const MINIMAL_LUA = `
local t = redis.call('HMGET', KEYS[1], 'status', 'picked_cents', 'authorized_cents')
if t[1] ~= 'shopping' or tonumber(ARGV[1]) > tonumber(t[2]) - tonumber(t[3]) then return 10 end
redis.call('HINCRBY', KEYS[1], 'authorized_cents', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', 259200)
return 0`;

/**
 * The floor of this shape: the commands one approval needs under DESIGN.md's layout, none of the
 * logic (no decline reason checked, nothing parsed or computed): read both earlier answers, the
 * partition's state, the shopper's trip and its fields; write the trip, its list of
 * authorizations, the record and its expiry, the idempotency and signature keys and the WAL event
 * (the api's pieces). Called with the service's own arguments, like "after".
 */
export const FLOOR_LUA = `
local base = string.sub(KEYS[1], 1, #KEYS[1] - #('shopper:' .. ARGV[4]))
local earlier = redis.call('MGET', KEYS[3], KEYS[2])
if earlier[2] then return 1 end
redis.call('EXISTS', base .. 'meta')
local trip_id = redis.call('HGET', KEYS[1], 'trip')
local trip_key = base .. 'trip:' .. ARGV[4] .. ':' .. trip_id
redis.call('HMGET', trip_key, 'shopper', 'status', 'activity_ms', 'currency', 'm_name', 'm_addr', 'lat', 'lng',
  'picked_cents', 'picked_lines', 'authorized_cents', 'tax_bps', 'tol_bps', 'tol_cents', 'hold_cents', 'created_ms',
  'm_nids', 'm_postal', 'm_mccs', 'approved_cents', 'vel')
redis.call('HSET', trip_key, 'authorized_cents', ARGV[5], 'approved_cents', ARGV[5], 'activity_ms', ARGV[1], 'vel', ARGV[1])
redis.call('LPUSH', trip_key .. ':auths', ARGV[3])
local auth_key = base .. 'auth:' .. ARGV[3]
redis.call('HSET', auth_key, 'code', 0, 'status', 200, 'decision', 'approved', 'mode', 'normal', 'trip', trip_id,
  'shopper', ARGV[4], 'amount', ARGV[5], 'remaining', ARGV[5], 'currency', ARGV[6], 'txn', ARGV[13], 'idem', ARGV[12],
  'fp', ARGV[11], 'reversed', 0, 'at_ms', ARGV[1])
redis.call('EXPIRE', auth_key, ARGV[19])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[18])
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[20])
redis.call('XADD', KEYS[4], '*', 'e', ARGV[2], 't', 'authorization.decided', 'd', ARGV[26] .. '200' .. ARGV[27] .. '"' ..
  trip_id .. '",1,"approved",null,"normal",' .. ARGV[5] .. ',1,1' .. ARGV[28], 'f', 'a1')
return 0`;

export async function startRedis(port: number): Promise<{ stop: () => Promise<void> }> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  for (let i = 0; ; i++) {
    try {
      await probe.connect();
      break;
    } catch (e) {
      if (i > 50) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  probe.disconnect();
  return {
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Trips as upsertTrip and updateItem leave them after the bench's picks (docs/redis-layout.md). */
async function seedTrips(redis: Redis, keys: Keys, tag: string, nowMs: number): Promise<void> {
  const pipe = redis.pipeline();
  for (let p = 0; p < PARTITIONS; p++) pipe.hset(keys.meta(p), 'initialized_ms', nowMs);
  for (const s of benchShoppers(SHOPPERS, tag)) {
    const p = keys.partition(s.shopperId);
    const trip = keys.trip(p, s.shopperId, s.tripId);
    pipe.hset(keys.shopper(p, s.shopperId), 'trip', s.tripId, 'created_ms', nowMs);
    pipe.hset(trip, {
      shopper: s.shopperId,
      status: 'shopping',
      currency: 'USD',
      m_name: STORE.name,
      m_addr: STORE.address,
      lat: String(STORE.lat),
      lng: String(STORE.lng),
      tax_bps: 925,
      tol_bps: 500,
      tol_cents: 200,
      hold_cents: -1,
      est_cents: 2_003_490,
      picked_cents: 2_003_490,
      picked_lines: 2,
      approved_cents: 0,
      reversed_cents: 0,
      authorized_cents: 0,
      created_ms: nowMs,
      activity_ms: nowMs,
    });
    pipe.hset(`${trip}:items`, 'bulk', '{"o":"o-1","q":400000,"p":5000,"u":"each","e":2000000}');
    pipe.hset(`${trip}:picks`, 'bulk', '{"s":"picked","q":400000,"p":5000,"l":2000000,"r":"","a":0}');
    pipe.expire(trip, 8 * 86_400);
    pipe.expire(`${trip}:items`, 8 * 86_400);
    pipe.expire(`${trip}:picks`, 8 * 86_400);
  }
  await pipe.exec();
}

function commandStats(text: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of text.matchAll(/cmdstat_([a-z|_]+):calls=(\d+),usec=(\d+)/g)) {
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

async function walBytes(redis: Redis, keys: Keys): Promise<number> {
  const pipe = redis.pipeline();
  for (const k of keys.allWals()) pipe.memory('USAGE', k, 'SAMPLES', 0);
  const replies = (await pipe.exec()) ?? [];
  return replies.reduce((sum, [, v]) => sum + Number(v ?? 0), 0);
}

/** MEMORY USAGE of every key of a prefix but its WAL streams. */
export async function keyBytes(redis: Redis, keys: Keys): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const k of found) if (!k.endsWith(':wal')) pipe.memory('USAGE', k, 'SAMPLES', 0);
    for (const [, v] of (await pipe.exec()) ?? []) total += Number(v ?? 0);
  } while (cursor !== '0');
  return total;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

export type CallBuilder = (keys: Keys, i: number, mix: SwipeMix, nowMs: number) => { keys: string[]; args: Array<string | number> };

/**
 * The bench mix through authorizeSwipe, arguments built by the service's own function; the
 * velocity limit the highest the trip hash's window takes, for every row alike (a trip sees a
 * swipe every ~200 s of decision time here, so it never decides).
 */
export const swipeCall: CallBuilder = swipeCallWith(BENCH_CONFIG);

function swipeCallWith(config: Config): CallBuilder {
  const limited = { ...config, maxSwipesPerMinute: VELOCITY_IN_HASH_SWIPES_MAX };
  return (keys, i, mix, nowMs) => {
    const s = mix.next();
    const signature = randomBytes(32).toString('hex');
    return authorizeCall(keys, s, signature, nowMs, `ev-${i}`, `auth_${s.txn}_${i.toString(36)}`, limited);
  };
}

/** swipeCall with the rollout settings given (the WAL payload's pieces are built in its format). */
export function withFlags(walCompactPayload: boolean, velocityInTripHash: boolean): CallBuilder {
  return swipeCallWith({ ...BENCH_CONFIG, walCompactPayload, velocityInTripHash });
}

/**
 * The call in the argument order of authorizeSwipe before its event was built from pieces (the
 * "before" commit): merchant name and address as sent after the signature (the
 * bench's are already normalized), the nine processor
 * arguments (empty: the bench's swipes are the native webhook's) before the rollout flags, and
 * cut to the count that script asserts (an older script takes fewer, appended later).
 */
function forBeforeScript(build: CallBuilder, lua: string): CallBuilder {
  const count = Number(/assert\(#ARGV == (\d+)/.exec(lua)?.[1] ?? Number.NaN);
  // 28: a script of the pieces' layout (this one's), called as the service calls it.
  if (count === 28) return build;
  return (keys, i, mix, nowMs) => {
    const c = build(keys, i, mix, nowMs);
    const a = c.args;
    // The bench sends names already normalized: as sent = normalized (ARGV 7, 8).
    const legacy = [...a.slice(0, 14), a[6]!, a[7]!, ...a.slice(14, 22), ...Array<string>(9).fill(''), ...a.slice(22, 25)];
    return { keys: c.keys, args: Number.isNaN(count) ? legacy : legacy.slice(0, count) };
  };
}

const minimalCall: CallBuilder = (keys, i, mix) => {
  const s = mix.next();
  const p = keys.partition(s.shopperId);
  const trip = keys.trip(p, s.shopperId, s.shopperId.replace(/s(\d+)$/, 't$1'));
  return { keys: [trip, keys.idem(p, `t:${s.txn}`)], args: [s.amountCents, `auth_${i.toString(36)}`] };
};

/** One script under measurement: its own key prefix and trips, and what its chunks added up to. */
export interface Contender {
  readonly label: string;
  readonly sha: string;
  readonly build: CallBuilder;
  readonly keys: Keys;
  readonly mix: SwipeMix;
  readonly nowMs: number;
  sent: number;
  /** keyBytes after seeding; at the end, keyBytes minus it is what the calls kept. */
  seedKeyBytes: number;
  keptKeyBytes: number;
  memBytes: number;
  walBytes: number;
  readonly stats: Map<string, { calls: number; usec: number }>;
}

export async function prepare(redis: Redis, label: string, lua: string, build: CallBuilder): Promise<Contender> {
  const tag = randomBytes(3).toString('hex');
  const keys = new Keys(`rc${tag}`, PARTITIONS);
  const nowMs = Date.now();
  await seedTrips(redis, keys, tag, nowMs);
  const sha = (await redis.script('LOAD', lua)) as string;
  const mix = new SwipeMix(benchShoppers(SHOPPERS, tag), new Rng(0x23), `${tag}x`);
  const seedKeyBytes = await keyBytes(redis, keys);
  return { label, sha, build, keys, mix, nowMs, sent: 0, seedKeyBytes, keptKeyBytes: 0, memBytes: 0, walBytes: 0, stats: new Map() };
}

/** `count` more calls of one contender, its server time and memory growth added to its totals. */
export async function runChunk(redis: Redis, c: Contender, count: number): Promise<void> {
  const memBefore = await usedMemory(redis);
  const walBefore = await walBytes(redis, c.keys);
  await redis.config('RESETSTAT');
  const end = c.sent + count;
  for (; c.sent < end; ) {
    const pipe = redis.pipeline();
    for (const stop = Math.min(end, c.sent + PIPELINE_CALLS); c.sent < stop; c.sent++) {
      const call = c.build(c.keys, c.sent, c.mix, c.nowMs + c.sent * SWIPE_SPACING_MS);
      pipe.evalsha(c.sha, call.keys.length, ...call.keys, ...call.args);
    }
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw new Error(`${c.label}: ${err.message}`);
  }
  for (const [name, st] of commandStats(await redis.info('commandstats'))) {
    if (name === 'info' || name === 'config|resetstat') continue;
    const sum = c.stats.get(name) ?? { calls: 0, usec: 0 };
    c.stats.set(name, { calls: sum.calls + st.calls, usec: sum.usec + st.usec });
  }
  const walDelta = (await walBytes(redis, c.keys)) - walBefore;
  c.walBytes += walDelta;
  c.memBytes += (await usedMemory(redis)) - memBefore - walDelta;
}

export function costOf(c: Contender): RedisCost {
  const evalsha = c.stats.get('evalsha') ?? { calls: 0, usec: 0 };
  let inner = 0;
  const top: Array<[string, number]> = [];
  for (const [name, s] of c.stats) {
    if (name === 'evalsha') continue;
    inner += s.calls;
    top.push([name, s.usec / evalsha.calls]);
  }
  top.sort((a, b) => b[1] - a[1]);
  return {
    label: c.label,
    calls: evalsha.calls,
    usPerCall: evalsha.usec / evalsha.calls,
    commandsPerCall: inner / evalsha.calls,
    bytesKeptPerCall: c.keptKeyBytes / evalsha.calls,
    usedMemoryPerCall: c.memBytes / evalsha.calls,
    walBytesPerCall: c.walBytes / evalsha.calls,
    top: top.slice(0, 6),
  };
}

/**
 * Rounds of one chunk per script in turn: the shared machine's load moves every script's figure
 * alike, instead of whichever happened to run in a busy minute.
 */
export const ROUNDS = 10;

/** Runs the four measurements on a private redis-server at `port` (stopped at the end), interleaved. */
export async function redisCost(opts: {
  port: number;
  decisions: number;
  before: string;
  /** Measure this Lua text as "after" instead of the build's (to try a variant). */
  afterLua?: string;
}): Promise<RedisCostResults> {
  const server = await startRedis(opts.port);
  const redis = new Redis(opts.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    await redis.flushall();
    let before: Contender | { label: string; error: string };
    const beforeLabel = `before (${opts.before})`;
    try {
      const lua = luaAtCommit(opts.before, 'authorizeSwipe-4.lua');
      before = await prepare(redis, beforeLabel, lua, forBeforeScript(swipeCall, lua));
    } catch (e) {
      before = { label: beforeLabel, error: (e as Error).message };
    }
    const afterLua = opts.afterLua ?? SCRIPTS.authorizeSwipe.lua;
    const afterJson = await prepare(redis, 'after, flags off', afterLua, withFlags(false, false));
    const after = await prepare(
      redis,
      'after, flags on',
      afterLua,
      withFlags(true, true),
    );
    const minimal = await prepare(redis, 'minimal script (bound)', MINIMAL_LUA, minimalCall);
    const floor = await prepare(redis, 'required commands, no logic (floor)', FLOOR_LUA, withFlags(true, true));
    const chunk = Math.ceil(opts.decisions / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      if ('sha' in before) {
        try {
          await runChunk(redis, before, chunk);
        } catch (e) {
          before = { label: beforeLabel, error: (e as Error).message };
        }
      }
      for (const c of [afterJson, after, minimal, floor]) await runChunk(redis, c, chunk);
    }
    for (const c of [before, afterJson, after, minimal, floor]) {
      if ('sha' in c) c.keptKeyBytes = (await keyBytes(redis, c.keys)) - c.seedKeyBytes;
    }
    return {
      before: 'sha' in before ? costOf(before) : before,
      afterJson: costOf(afterJson),
      after: costOf(after),
      minimal: costOf(minimal),
      floor: costOf(floor),
      beforeCommit: opts.before,
    };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

const f1 = (n: number) => n.toFixed(1);

/** The markdown table of a run (BENCHMARKS.md, "Redis cost of a decision"). */
export function redisCostTable(r: RedisCostResults): string[] {
  // A JSON of a run before the floor row was measured has none.
  const rows = [r.before, r.afterJson, r.after, r.floor, r.minimal].filter((c) => c !== undefined).map((c) =>
    'error' in c
      ? `| ${c.label} | not comparable: ${c.error.slice(0, 120)} | | | | | | |`
      : `| ${c.label} | ${c.calls} | ${f1(c.usPerCall)} | ${f1(c.commandsPerCall)} | ${Math.round(c.bytesKeptPerCall)} | ${Math.round(c.usedMemoryPerCall)} | ${Math.round(c.walBytesPerCall)} | ${c.top.map(([n, us]) => `${n} ${f1(us)}`).join(', ')} |`,
  );
  return [
    '| script | calls | Redis µs/decision | commands/decision | bytes kept/decision | used_memory/decision | WAL bytes/decision | most server time (µs/decision) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
  ];
}

/** The generated block of BENCHMARKS.md's "Redis cost of a decision". */
export function redisCostDoc(c: RedisCostResults, command: string, startedAt: string, jsonPath: string): string {
  return [
    `Produced by \`${command}\` (${startedAt}) → [\`${path.basename(jsonPath)}\`](bench-results/${path.basename(jsonPath)}),`,
    `on a private \`redis-server\` (\`--redis-cost-port\`, default 19210; nothing else on it).`,
    `The swipe mix of the service rows sent straight to Redis, ${c.after.calls.toLocaleString('en-US')} calls per script, arguments built by`,
    `the service's own \`authorizeSwipeCall\`, 64 per pipeline, the scripts in turn in 10 rounds (machine noise hits all alike),`,
    `2,000 seeded trips per script, decision time 100 ms apart (a`,
    `trip sees a swipe every ~200 s, so the velocity window holds what it holds in steady state): "before" is`,
    `\`lua/authorizeSwipe-4.lua\` as built at commit \`${c.beforeCommit}\` (from git), "after" this tree's build,`,
    `"floor" the commands an approval needs in this layout with none of the logic (MGET, EXISTS, HGET, HMGET, HSET, LPUSH,`,
    `HSET, EXPIRE, SET, SET, XADD: \`FLOOR_LUA\` in bench/redisCost.ts), "minimal" the bound of the issue (HMGET the trip,`,
    `check, HINCRBY, SET the idempotency key). Redis µs = \`INFO commandstats\``,
    `EVALSHA usec / calls; commands = the other cmdstats' calls / EVALSHA calls; bytes kept = growth of the sum of`,
    `\`MEMORY USAGE <key> SAMPLES 0\` over the script's keys, WAL streams excluded, per call; used_memory = \`used_memory\``,
    `growth minus the streams' growth per call (also counts the keyspace's own tables, which grow in steps when they`,
    `resize: whichever script crosses a step pays it); WAL bytes = the streams' growth per call.`,
    '',
    ...redisCostTable(c),
  ].join('\n');
}

async function main(): Promise<void> {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const r = await redisCost({
    port: Number(arg('port') ?? 19210),
    decisions: Number(arg('decisions') ?? 50_000),
    before: arg('before') ?? REDIS_COST_BEFORE_DEFAULT,
    ...(arg('after-lua') === undefined ? {} : { afterLua: readFileSync(arg('after-lua')!, 'utf8') }),
  });
  console.log(`velocity limit ${VELOCITY_IN_HASH_SWIPES_MAX}/min, ${SHOPPERS} trips, ${PARTITIONS} partitions`);
  for (const line of redisCostTable(r)) console.log(line);
  if (!process.argv.includes('--docs')) return;
  // --docs: bench-results/redis-cost-<time>.json and BENCHMARKS.md's "Redis cost of a decision" block.
  const startedAt = new Date().toISOString();
  const jsonPath = path.join('bench-results', `redis-cost-${startedAt.replace(/[:.]/g, '-').slice(0, 19)}.json`);
  mkdirSync(path.join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(path.join(ROOT, jsonPath), `${JSON.stringify(r, null, 2)}\n`);
  const command = `node .bench-build/bench/redisCost.js ${process.argv.slice(2).join(' ')}`.trim();
  const docFile = path.join(ROOT, 'BENCHMARKS.md');
  const doc = readFileSync(docFile, 'utf8');
  writeFileSync(docFile, replaceSection(doc, SECTIONS.redisCost, redisCostDoc(r, command, startedAt, jsonPath)));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
