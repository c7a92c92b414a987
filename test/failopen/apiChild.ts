// Child-process entry for the fault tests: a real api process (config from
// the environment, like `swipe-authorizer serve`) that reports its ports over
// IPC and drains on SIGTERM. Bundled on the fly by faults.test.ts.
import { startApi } from '../../src/app/api.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';

const config = loadConfig(process.env);
const logger = createLogger(config.logLevel);
const api = await startApi(config, logger);
process.send?.({ port: api.port, metricsPort: api.metricsPort, pid: process.pid });
process.once('SIGTERM', () => {
  void api.stop().then(() => process.exit(0));
});
process.on('disconnect', () => {
  // the test process is gone: do not outlive it
  void api.stop().then(() => process.exit(0));
});
