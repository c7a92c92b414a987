// Lua scripts from lua/ (includes inlined at build time by scripts/build-lua.mjs),
// registered once per client with defineCommand under "name:version": EVALSHA
// with automatic EVAL fallback, and no clash between versions during a rolling
// deploy.
import type { Metrics } from '../observability/metrics.js';
import { NOOP_SPAN, type SpanLike, type Tracing } from '../observability/tracing.js';
import type { RedisClient } from './client.js';
import { WriteCoalescer } from './coalesce.js';
import { SCRIPTS } from './scripts.generated.js';

export type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number;
type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  const s = SCRIPTS[name];
  return `${s.name}:${s.version}`;
}

export function registerScripts(client: RedisClient): void {
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const s = SCRIPTS[name];
    client.defineCommand(commandName(name), { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}

/** Calls scripts with a metric and a span per call. Errors propagate: callers decide (fail-open etc.). */
export class ScriptRunner {
  private readonly coalescer: WriteCoalescer | undefined;

  constructor(
    readonly client: RedisClient,
    private readonly metrics: Metrics | undefined,
    private readonly tracing: Tracing | undefined,
    options: { coalesceWrites?: boolean } = {},
  ) {
    registerScripts(client);
    this.coalescer = options.coalesceWrites === true ? new WriteCoalescer(client) : undefined;
  }

  async run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly ScriptArg[],
    parent?: SpanLike,
  ): Promise<unknown> {
    const expected = SCRIPTS[name].numberOfKeys;
    if (keys.length !== expected)
      throw new Error(`script ${name} takes ${expected} keys, got ${keys.length}`);
    const fn = (this.client as unknown as Record<string, ScriptFn>)[commandName(name)];
    if (fn === undefined) throw new Error(`script ${name} is not registered`);
    const span =
      parent !== undefined && this.tracing !== undefined ? this.tracing.scriptSpan(parent, name) : NOOP_SPAN;
    const started = process.hrtime.bigint();
    this.coalescer?.hold();
    try {
      return await fn.call(this.client, ...keys, ...args);
    } catch (err) {
      span.setError(err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      this.metrics?.redisCommandDuration.observe(
        { script: name },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      span.end();
    }
  }
}
