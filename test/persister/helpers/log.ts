// Test logger: silent unless TEST_LOG_LEVEL is set; TEST_LOG_FILE sends it to a file.
import { destination } from 'pino';
import { createLogger, type Logger } from '../../../src/observability/logger.js';

export function testLogger(): Logger {
  return createLogger(
    process.env.TEST_LOG_LEVEL ?? 'silent',
    destination({ dest: process.env.TEST_LOG_FILE ?? 2, sync: true }),
  );
}
