#!/usr/bin/env node
// One binary: swipe-authorizer serve | persist | hydrate | reconcile | migrate | dev
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { destination } from 'pino';
import { startApi } from './app/api.js';
import {
  type Config,
  ConfigError,
  DEV_API_TOKEN,
  DEV_SIGNATURE_SECRET,
  loadConfig,
} from './config/config.js';
import { createLogger, type Logger } from './observability/logger.js';

const USAGE = `usage: swipe-authorizer <command>
  serve      run the api (webhook, trip API, health) and its metrics port
  persist    drain the Redis WAL streams into Postgres
  hydrate    rebuild Redis state for open trips from Postgres
  migrate    apply Postgres migrations (--contract: also those the previous release cannot run with)
  reconcile  compare a processor settlement file with Postgres
             (--file <settlement.csv> --out <report dir>; see README)
  region-takeover  take over a lost region's shoppers from its promoted Postgres replica
             (--from-region <name> --replica-url <postgres url>; docs/regions.md)
  dev        migrate, then run serve + persist together (local quick start)`;

function onSignals(handler: (signal: string) => void): void {
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => handler(s));
}

/**
 * Boot check: partitions whose Redis state was lost are rebuilt from Postgres
 * before serving. It runs as a child process (`hydrate`), so the api process
 * never loads the ORM or a Postgres driver: less memory, and no Postgres in
 * the process that answers swipes.
 */
async function hydrateAtBoot(logger: Logger): Promise<void> {
  const timeoutMs = 120_000;
  try {
    await runChild(fileURLToPath(import.meta.url), ['hydrate'], {}, timeoutMs);
  } catch (err) {
    // Serving beats not serving: Redis is the authorizing store. The persister
    // retries the rebuild every few seconds once Postgres is back.
    logger.error({ err: (err as Error).message }, 'hydrate check at boot failed; serving without it');
  }
}

/**
 * The api's old generation may grow 50 % over what survived the last full GC
 * (V8 picks up to 4x when GC looks cheap). Requests promote short-lived objects
 * at ~1 KB per decision; with V8's default the heap reached ~100 MiB of mostly
 * garbage and RSS 189 MiB in `npm run bench`, with this 37-49 MiB and 142 MiB
 * at the same throughput (BENCHMARKS.md). Read at every full GC, so setting it
 * at start is enough; NODE_OPTIONS does not accept this flag.
 */
const API_HEAP_GROWING_PERCENT = 50;

async function serve(config: Config, logger: Logger): Promise<void> {
  v8.setFlagsFromString(`--heap-growing-percent=${API_HEAP_GROWING_PERCENT}`);
  await hydrateAtBoot(logger);
  const api = await startApi(config, logger);
  onSignals(async (signal) => {
    logger.info({ signal }, 'draining');
    await api.stop();
    logger.info('stopped');
    process.exit(0);
  });
}

/** api + persister as two child processes of this one, so `npm start` is one command. */
async function dev(config: Config): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  // One version runs in dev: nothing older needs what a contract migration removes.
  await runChild(self, ['migrate', '--contract'], {});
  const persisterEnv = { METRICS_PORT: String(config.metricsPort + 1) };
  const children = [
    spawn(process.execPath, [self, 'serve'], { stdio: 'inherit' }),
    spawn(process.execPath, [self, 'persist'], {
      stdio: 'inherit',
      env: { ...process.env, ...persisterEnv },
    }),
  ];
  let exiting = false;
  const stopAll = (code: number) => {
    if (exiting) return;
    exiting = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    setTimeout(() => process.exit(code), config.shutdownGraceMs + 1000).unref();
    Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))),
    ).then(() => process.exit(code));
  };
  for (const c of children) c.once('exit', (code) => stopAll(code ?? 1));
  onSignals(() => stopAll(0));
}

function runChild(script: string, args: string[], env: Record<string, string>, timeoutMs = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`${args.join(' ')} did not finish within ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0];
  if (command === undefined || command === '--help' || command === '-h') {
    console.log(USAGE);
    process.exit(command === undefined ? 2 : 0);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.generatedDevSecrets && (command === 'serve' || command === 'dev')) {
    // Dev only (loadConfig refuses this in production): say which fixed values are in use.
    console.error(`dev mode: SIGNATURE_SECRETS=${DEV_SIGNATURE_SECRET} API_TOKENS=${DEV_API_TOKEN}`);
  }
  switch (command) {
    case 'serve':
      return serve(config, logger);
    case 'dev':
      return dev(config);
    case 'persist':
    case 'hydrate':
    case 'migrate':
    case 'reconcile':
    case 'region-takeover':
      return runBackgroundCommand(command, config, logger, argv.slice(1));
    default:
      console.error(`unknown command "${command}"\n${USAGE}`);
      process.exit(2);
  }
}

async function runBackgroundCommand(
  command: string,
  config: Config,
  logger: Logger,
  args: string[],
): Promise<void> {
  if (command === 'reconcile') {
    const { reconcileCommand, UsageError } = await import('./reconcile/command.js');
    try {
      return await reconcileCommand(config, logger, args);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(
        `reconcile: ${err.message}\nusage: swipe-authorizer reconcile --file <settlement.csv> --out <report dir> [--from <time>] [--to <time>] [--auto-adjust-max-cents <n>]`,
      );
      process.exit(2);
    }
  }
  // The report is the command's stdout: its log lines go to stderr.
  if (command === 'region-takeover')
    return takeover(config, createLogger(config.logLevel, destination(2)), args);
  const commands = await import('./persister/commands.js');
  switch (command) {
    case 'persist':
      return commands.persistCommand(config, logger);
    case 'hydrate':
      await commands.hydrateCommand(config, logger);
      return;
    case 'migrate': {
      const unknown = args.filter((a) => a !== '--contract');
      if (unknown.length > 0) {
        console.error(
          `migrate: unknown argument ${unknown[0]}\nusage: swipe-authorizer migrate [--contract]`,
        );
        process.exit(2);
      }
      await commands.migrateCommand(config, logger, args.includes('--contract'));
      return;
    }
    default:
      console.error(`${command}: not available in this build`);
      process.exit(2);
  }
}

async function takeover(config: Config, logger: Logger, args: string[]): Promise<void> {
  const { takeoverCommand, TakeoverUsageError } = await import('./regions/takeover.js');
  try {
    await takeoverCommand(config, logger, args);
  } catch (err) {
    if (!(err instanceof TakeoverUsageError)) throw err;
    console.error(
      `region-takeover: ${err.message}\nusage: swipe-authorizer region-takeover --from-region <name> --replica-url <postgres url> [--lost-redis-url <redis url>] [--lost-redis-prefix <prefix>] [--out <report.json>]`,
    );
    process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
