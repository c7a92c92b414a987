// authorization.decided's WAL payload is built from pieces: the api JSON-encodes the values it
// knows before the decision (ids, the request, the processor's ids) and lua/authorizeSwipe-4.lua
// fills the two holes left for what it decides (status; trip_id .. authorized_cents) by string
// concatenation. Encoding the whole 26-value event with cjson was the costliest Lua step of a
// decision (BENCHMARKS.md, "Redis cost of a decision"); the bytes written are the same JSON.

/** WAL format of authorization.decided: the JSON object every release reads, or the compact array. */
export const WAL_FORMAT_COMPACT = 'a1';
export type WalDecidedFormat = '' | typeof WAL_FORMAT_COMPACT;

/**
 * The run of fields the script fills after the request's ids (the script knows their names and
 * order for the object form: a change here is a change there, held together by
 * test/persister/wal-compact.test.ts).
 */
const DECIDED_RUN = [
  'trip_id',
  'trip_created_ms',
  'decision',
  'reason',
  'mode',
  'amount_cents',
  'remaining_cents',
  'authorized_cents',
] as const;

/**
 * authorization.decided's fields in the order of its compact payload (a JSON array of the values,
 * f=a1); src/persister/events.ts decodes it with this list.
 */
export const WAL_DECIDED_FIELDS = [
  'authorization_id',
  'idempotency_key',
  'fingerprint',
  'signature',
  'status',
  'transaction_id',
  'shopper_id',
  ...DECIDED_RUN,
  'currency',
  'merchant_name',
  'merchant_address',
  'lat',
  'lng',
  'at_ms',
  'requested_cents',
  'processor',
  'processor_card_id',
  'processor_authorization_id',
  'processor_request_id',
] as const;
export type WalDecidedField = (typeof WAL_DECIDED_FIELDS)[number];

/** What the script fills in: `status`, and the run (two holes in the api's pieces). */
const FILLED_BY_SCRIPT_LIST = ['status', ...DECIDED_RUN] as const;
const FILLED_BY_SCRIPT: ReadonlySet<WalDecidedField> = new Set(FILLED_BY_SCRIPT_LIST);

/** The values the api encodes: every field but those the script fills. */
export type DecidedRequestValues = {
  readonly [K in Exclude<WalDecidedField, (typeof FILLED_BY_SCRIPT_LIST)[number]>]: string | number | null;
};

/**
 * The three pieces around the script's two holes, in `format`: for the array
 * `["<id>",…,null,` · `,"<txn>","<shopper>",` · `,"USD",…]`; for the object the same with
 * each value's name, the first two ending in `"status":` and `"trip_id":`.
 */
export function decidedPayloadPieces(
  format: WalDecidedFormat,
  v: DecidedRequestValues,
): [string, string, string] {
  const named = format === '';
  const pieces: string[] = [];
  let current = named ? '{' : '[';
  let previousFilled = false;
  for (const [i, name] of WAL_DECIDED_FIELDS.entries()) {
    const separator = i === 0 ? '' : ',';
    const label = named ? `${JSON.stringify(name)}:` : '';
    if (FILLED_BY_SCRIPT.has(name)) {
      // A run's first field ends the piece; the script writes the run's separators itself.
      if (!previousFilled) {
        pieces.push(`${current}${separator}${label}`);
        current = '';
      }
      previousFilled = true;
      continue;
    }
    previousFilled = false;
    current += `${separator}${label}${JSON.stringify(v[name as keyof DecidedRequestValues])}`;
  }
  pieces.push(`${current}${named ? '}' : ']'}`);
  if (pieces.length !== 3)
    throw new Error(`authorization.decided has ${pieces.length - 1} holes, the script fills 2`);
  return pieces as [string, string, string];
}
