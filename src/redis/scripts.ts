// Lua scripts from lua/ (includes inlined at build time by scripts/build-lua.mjs).
// Redis caches a script by the SHA1 of its text, so two versions never clash during a
// rolling deploy: each pod calls the SHA of the text it was built with. Single calls go
// through ScriptRunner.run (one pre-encoded EVALSHA); pipelines (hydrate) use the
// commands registered once per client with defineCommand under "name:version", for
// which ioredis loads missing scripts before the pipeline runs.
import type { Metrics } from '../observability/metrics.js';
import { NOOP_SPAN, type SpanLike, type Tracing } from '../observability/tracing.js';
import type { RedisClient } from './client.js';
import { WriteCoalescer } from './coalesce.js';
import { EvalshaFrames, type FrameArg, FrameCommand, isNoScript } from './frame.js';
import { SCRIPTS } from './scripts.generated.js';

export type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = FrameArg;

/** The pipeline command name of a script ("name:version"), as registerScripts defines it. */
export function pipelineCommandName(name: ScriptName): string {
  const s = SCRIPTS[name];
  return `${s.name}:${s.version}`;
}

export function registerScripts(client: RedisClient): void {
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const s = SCRIPTS[name];
    client.defineCommand(pipelineCommandName(name), { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}

const FRAMES = Object.fromEntries(
  (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [
    name,
    new EvalshaFrames(SCRIPTS[name].lua, SCRIPTS[name].numberOfKeys),
  ]),
) as Record<ScriptName, EvalshaFrames>;

/**
 * Calls scripts with a metric and a span per call. Errors propagate: callers decide (fail-open etc.).
 * Each call is one pre-encoded EVALSHA (frame.ts); when Redis' script cache lacks the script
 * (restart, SCRIPT FLUSH) that one call is sent again as EVAL, which also caches it.
 */
export class ScriptRunner {
  private readonly coalescer: WriteCoalescer | undefined;
  /** Called for every reply read (Redis is answering: src/http/loadMonitor.ts). */
  private readonly onReply: (() => void) | undefined;

  constructor(
    readonly client: RedisClient,
    private readonly metrics: Metrics | undefined,
    private readonly tracing: Tracing | undefined,
    options: { coalesceWrites?: boolean; onReply?: () => void } = {},
  ) {
    registerScripts(client);
    this.onReply = options.onReply;
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
    const frames = FRAMES[name];
    const span =
      parent !== undefined && this.tracing !== undefined ? this.tracing.scriptSpan(parent, name) : NOOP_SPAN;
    const started = process.hrtime.bigint();
    this.coalescer?.hold();
    try {
      let reply: unknown;
      try {
        reply = await this.client.sendCommand(new FrameCommand(frames.encode(keys, args), frames.sha, keys));
      } catch (err) {
        if (!isNoScript(err)) throw err;
        // ioredis sends null/undefined as '' here too.
        reply = await this.client.eval(
          SCRIPTS[name].lua,
          keys.length,
          ...keys,
          ...(args as Array<string | number>),
        );
      }
      this.onReply?.();
      return reply;
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
