// `swipe-authorizer reconcile --file <settlement.csv> --out <report dir>
//   [--from <RFC 3339>] [--to <RFC 3339>] [--auto-adjust-max-cents <n>]`
// Compares the file with Postgres, records the run, writes report.json and
// report.txt, prints the summary. Late answers never settled are released
// through Redis when it is reachable (otherwise they stay for a person).
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { runMigrations } from '../db/migrate.js';
import { createOrm, knexOf } from '../db/orm.js';
import { releaseHold } from '../ledger/holdExpiry.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/client.js';
import { Keys } from '../redis/keys.js';
import { ScriptRunner } from '../redis/scripts.js';
import { reconcile, summarize } from './reconcile.js';
import { writeReport } from './report.js';

export interface ReconcileArgs {
  readonly file: string;
  readonly out: string;
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly autoAdjustMaxCents?: number;
}

export class UsageError extends Error {}

export function parseReconcileArgs(argv: readonly string[]): ReconcileArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i] as string;
    const v = argv[i + 1];
    if (!['--file', '--out', '--from', '--to', '--auto-adjust-max-cents'].includes(k) || v === undefined)
      throw new UsageError(`unknown or incomplete option ${k}`);
    values.set(k, v);
  }
  const file = values.get('--file');
  const out = values.get('--out');
  if (file === undefined || out === undefined) throw new UsageError('--file and --out are required');
  const time = (k: string) => {
    const v = values.get(k);
    if (v === undefined) return undefined;
    const ms = Date.parse(v);
    if (!Number.isFinite(ms)) throw new UsageError(`${k} must be an RFC 3339 time`);
    return ms;
  };
  const max = values.get('--auto-adjust-max-cents');
  if (max !== undefined && !/^\d{1,9}$/.test(max))
    throw new UsageError('--auto-adjust-max-cents must be an integer');
  return {
    file,
    out,
    fromMs: time('--from'),
    toMs: time('--to'),
    autoAdjustMaxCents: max === undefined ? undefined : Number(max),
  };
}

export async function reconcileCommand(
  config: Config,
  logger: Logger,
  argv: readonly string[],
): Promise<void> {
  const args = parseReconcileArgs(argv);
  const orm = await createOrm({ databaseUrl: config.databaseUrl, poolMax: 2, statementTimeoutMs: 600_000 });
  let redis: RedisClient | undefined = createRedisClient(config, {
    name: 'reconcile',
    commandTimeoutMs: 5000,
  });
  try {
    await runMigrations(orm, { contract: false, logger });
    try {
      await connectRedis(redis);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'Redis unreachable: late answers are left for a person');
      redis.disconnect();
      redis = undefined;
    }
    const deps =
      redis === undefined
        ? undefined
        : {
            config,
            keys: new Keys(config.redisPrefix, config.partitions),
            scripts: new ScriptRunner(redis, undefined, undefined),
          };
    const result = await reconcile(knexOf(orm), args.file, basename(args.file), {
      fromMs: args.fromMs,
      toMs: args.toMs,
      autoAdjustMaxCents: args.autoAdjustMaxCents,
      releaseHold:
        deps === undefined
          ? undefined
          : async (a) => {
              const r = await releaseHold(deps, a, 'reconciliation', Date.now());
              return { released: r.outcome === 'released', eventId: r.eventId };
            },
    });
    const paths = await writeReport(args.out, result, basename(args.file));
    const s = summarize(result.items);
    logger.info(
      {
        rows: result.rows,
        items: result.items.length,
        ...s.byClass,
        durationMs: result.durationMs,
        replayed: result.replayed,
        ...paths,
      },
      'reconciliation finished',
    );
    console.log(
      `reconciled ${result.rows} rows in ${result.durationMs} ms: ${s.byClass.auto_adjusted} auto-adjusted, ${s.byClass.needs_review} need review, ${s.byClass.unclassified} queued${result.replayed ? ' (file already reconciled: nothing changed)' : ''}\n${paths.text}\n${paths.json}`,
    );
  } finally {
    redis?.disconnect();
    await orm.close(true);
  }
}
