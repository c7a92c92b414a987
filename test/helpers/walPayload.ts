// A WAL entry's payload as an object, in either form authorizeSwipe writes (the JSON object, or
// the compact array of WAL_COMPACT_PAYLOAD, format a1: src/persister/events.ts decodes the same).
import { WAL_DECIDED_FIELDS, WAL_FORMAT_COMPACT } from '../../src/redis/walDecided.js';

export function walPayload(fields: Record<string, string>): Record<string, unknown> {
  const parsed: unknown = JSON.parse(fields['d'] ?? '{}');
  if (fields['f'] !== WAL_FORMAT_COMPACT) return parsed as Record<string, unknown>;
  const values = parsed as unknown[];
  return Object.fromEntries(WAL_DECIDED_FIELDS.map((name, i) => [name, values[i]]));
}
