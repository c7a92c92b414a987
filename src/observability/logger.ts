// Structured JSON logs (pino). Secrets and signature headers are redacted.
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-signature"]',
  'headers.authorization',
  'headers["x-signature"]',
  'config.signatureSecrets',
  'config.apiTokens',
  'config.databaseUrl',
  'signatureSecrets',
  'apiTokens',
  'secret',
  'token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'swipe-authorizer' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
