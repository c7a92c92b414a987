// Where a script's Redis time goes (issue 23; docs/decision-record.md): probes called with the
// service's own authorizeSwipe arguments (flags on) on a private redis-server, in turn in 10 rounds
// like bench/redisCost.ts, each printed as Redis µs per call (INFO commandstats EVALSHA usec /
// calls): calling a script at all, one more command, one more Lua string or table, the commands an
// approval needs with no logic (the floor), and authorizeSwipe itself.
//   node .bench-build/bench/luaCosts.js [--decisions=20000] [--port=19213] [--docs]
// (--docs writes the table into docs/redis-cost.md).
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { SCRIPTS } from '../src/redis/scripts.generated.js';
import { costOf, FLOOR_LUA, prepare, ROUNDS, runChunk, startRedis, withFlags } from './redisCost.js';

const RETURN = "return { 0, ARGV[3], '', 1, 0, 'normal', 0 }";
const repeat = (n: number, line: string) => Array.from({ length: n }, () => line).join('\n');

/** Probe scripts: each differs from "call" by one kind of work done 30 times (or the whole script). */
const PROBES: ReadonlyArray<readonly [string, string]> = [
  ['call: arguments in, a reply out', RETURN],
  ['+ 30 commands (EXISTS)', `${repeat(30, "redis.call('EXISTS', KEYS[1])")}\n${RETURN}`],
  ['+ 30 new strings (concat)', `local x = ARGV[3]\nfor i = 1, 30 do x = x .. 'a' end\n${RETURN}`],
  ['+ 30 number to string (tostring)', `local x\nfor i = 1, 30 do x = tostring(i + ARGV[1]) end\n${RETURN}`],
  ['+ 30 tables', `local x\nfor i = 1, 30 do x = { i, 'a', 'b' } end\n${RETURN}`],
  ['floor: the commands, no logic', FLOOR_LUA],
  ['authorizeSwipe', SCRIPTS.authorizeSwipe.lua],
];

const DOC = 'docs/redis-cost.md';
const BEGIN = '<!-- luacosts:begin -->';
const END = '<!-- luacosts:end -->';

function writeDocs(table: readonly string[], decisions: number): void {
  const doc = readFileSync(DOC, 'utf8');
  const from = doc.indexOf(BEGIN);
  const to = doc.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${DOC}: no ${BEGIN} … ${END} block`);
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const load = loadavg()[0]!.toFixed(1);
  const block = [
    `\`node .bench-build/bench/luaCosts.js --decisions=${decisions} --docs\`, ${when} UTC, load average ${load} on 2 cores`,
    '(every row inflated alike by other work on the machine; compare rows, not runs):',
    '',
    ...table,
  ].join('\n');
  writeFileSync(DOC, `${doc.slice(0, from + BEGIN.length)}\n${block}\n${doc.slice(to)}`);
}

async function main(): Promise<void> {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const decisions = Number(arg('decisions') ?? 20_000);
  const port = Number(arg('port') ?? 19213);
  const server = await startRedis(port);
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const contenders = [];
    for (const [label, lua] of PROBES) contenders.push(await prepare(redis, label, lua, withFlags(true, true)));
    const chunk = Math.ceil(decisions / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) for (const c of contenders) await runChunk(redis, c, chunk);
    const table = ['| probe | Redis µs/call | commands/call |', '| --- | ---: | ---: |'];
    for (const c of contenders) {
      const r = costOf(c);
      table.push(`| ${r.label} | ${r.usPerCall.toFixed(1)} | ${r.commandsPerCall.toFixed(1)} |`);
    }
    for (const line of table) console.log(line);
    if (process.argv.includes('--docs')) writeDocs(table, decisions);
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
