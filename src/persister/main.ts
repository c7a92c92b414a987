#!/usr/bin/env node
// Stand-alone entry for the persister commands (the same functions src/cli.ts
// wires): node dist/persister/main.js persist | hydrate | migrate
import type { Logger } from 'pino';
import { type Config, loadConfig } from '../config/config.js';
import { createLogger } from '../observability/logger.js';
import { hydrateCommand, migrateCommand, persistCommand } from './commands.js';

const commands = {
  persist: persistCommand,
  hydrate: hydrateCommand,
  migrate: (config: Config, logger: Logger) =>
    migrateCommand(config, logger, process.argv.includes('--contract')),
} as const;

async function main(): Promise<void> {
  const name = process.argv[2] as keyof typeof commands | undefined;
  const command = name === undefined ? undefined : commands[name];
  if (command === undefined) {
    console.error('usage: main.js persist | hydrate | migrate');
    process.exit(2);
  }
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  await command(config, logger);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
