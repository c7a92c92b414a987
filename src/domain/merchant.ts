// Merchant matching (CONTRACT §4): does a swipe's merchant descriptor name the trip's store?
//
// Normalization runs here, in TypeScript, once per request; the trip stores the
// normalized store name/address and the authorize script compares normalized strings
// with the byte-wise twin of namesMatch in lua/includes/merchantMatch.lua.
// test/unit/merchant.test.ts runs every table row through both.
//
// Steps (names and addresses):
//   1. Unicode NFKC (fullwidth letters, ligatures, NBSP -> space), lower case.
//      Latin diacritics are folded too ("Café" ~ "CAFE"): descriptors from card
//      processors are ASCII, so an accented store name could otherwise never match.
//   2. Drop invisible format characters (zero-width space/joiners, BOM, soft hyphen).
//   3. "&" -> " and "; apostrophes and periods vanish ("Joe's" = "Joes", "St." = "St");
//      every other non letter/digit becomes a space; spaces collapse.
//   Names: drop store-number tokens ("#1234", "store 12", "store #12", "no. 12",
//          a trailing number) and a leading "the".
//   Addresses: USPS suffix, unit and directional abbreviations; digits are kept.
//
// Name rule: equal; or one is a whole-word prefix of the other ("safeway" ~ "safeway
// store", not "safe" ~ "safeway"); or the shorter is >= 22 BYTES of UTF-8 and a
// prefix of the other (processors cut descriptors at 22 characters; for ASCII, which
// descriptors are, bytes and characters agree, and Lua can only count bytes).
// Addresses must be equal. An empty normalized name or address never matches.

/** Inputs longer than this are cut before normalizing: bounds the work per request. */
export const MERCHANT_TEXT_LENGTH_MAX = 256;
/** A shorter name this long (UTF-8 bytes) may be a processor-truncated descriptor. */
export const MERCHANT_NAME_TRUNCATED_BYTES_MIN = 22;

const DIACRITICS = /[\u0300-\u036f]/g;
const FORMAT_CHARS = /[\p{Cf}]/gu;
const VANISHING = /['\u2018\u2019\u02bc`.]/g;
const SEPARATORS = /[^\p{L}\p{M}\p{N}#]+/gu;
const HASH_SPACE_DIGIT = /#\s+(?=\d)/g;
const NUMBER_TOKEN = /^#?\d+$/;
const DIGITS_TOKEN = /^\d+$/;

/** Words that introduce a store number: "store 12", "no. 12", "number 12". */
const STORE_NUMBER_WORDS: ReadonlySet<string> = new Set(['store', 'no', 'num', 'nbr', 'number']);

/** USPS Publication 28: common street suffixes, secondary units and directionals. */
const ADDRESS_ABBREVIATIONS: ReadonlyMap<string, string> = new Map([
  ['alley', 'aly'],
  ['avenue', 'ave'],
  ['av', 'ave'],
  ['boulevard', 'blvd'],
  ['bypass', 'byp'],
  ['center', 'ctr'],
  ['centre', 'ctr'],
  ['circle', 'cir'],
  ['court', 'ct'],
  ['cove', 'cv'],
  ['crescent', 'cres'],
  ['crossing', 'xing'],
  ['drive', 'dr'],
  ['expressway', 'expy'],
  ['freeway', 'fwy'],
  ['heights', 'hts'],
  ['highway', 'hwy'],
  ['junction', 'jct'],
  ['lane', 'ln'],
  ['mount', 'mt'],
  ['mountain', 'mtn'],
  ['parkway', 'pkwy'],
  ['place', 'pl'],
  ['plaza', 'plz'],
  ['point', 'pt'],
  ['ridge', 'rdg'],
  ['road', 'rd'],
  ['route', 'rte'],
  ['square', 'sq'],
  ['street', 'st'],
  ['str', 'st'],
  ['terrace', 'ter'],
  ['trail', 'trl'],
  ['turnpike', 'tpke'],
  ['apartment', 'apt'],
  ['building', 'bldg'],
  ['department', 'dept'],
  ['floor', 'fl'],
  ['room', 'rm'],
  ['suite', 'ste'],
  ['north', 'n'],
  ['south', 's'],
  ['east', 'e'],
  ['west', 'w'],
  ['northeast', 'ne'],
  ['northwest', 'nw'],
  ['southeast', 'se'],
  ['southwest', 'sw'],
]);

/** Steps 1-3 shared by names and addresses; `#` survives for the name rules. */
function tokens(text: string): string[] {
  const folded = text
    .slice(0, MERCHANT_TEXT_LENGTH_MAX)
    .normalize('NFKC')
    .toLowerCase() // before folding: "İ".toLowerCase() is "i" + U+0307, which the fold drops
    .normalize('NFKD')
    .replace(DIACRITICS, '')
    .normalize('NFKC')
    .replace(FORMAT_CHARS, '')
    .replaceAll('&', ' and ')
    .replace(VANISHING, '')
    .replace(SEPARATORS, ' ')
    .replace(HASH_SPACE_DIGIT, '#');
  return folded.split(' ').filter((t) => t.length > 0);
}

export function normalizeMerchantName(name: string): string {
  const input = tokens(name);
  const out: string[] = [];
  for (let i = 0; i < input.length; i++) {
    const token = input[i]!;
    if (NUMBER_TOKEN.test(token) && token.charCodeAt(0) === 0x23) continue; // "#1234"
    const next = input[i + 1];
    if (STORE_NUMBER_WORDS.has(token) && next !== undefined && NUMBER_TOKEN.test(next)) {
      i++; // "store 1234", "store #12", "no 12"
      continue;
    }
    const bare = token.replaceAll('#', '');
    if (bare.length > 0) out.push(bare);
  }
  if (out.length > 1 && DIGITS_TOKEN.test(out[out.length - 1]!)) out.pop(); // "safeway 0042"
  if (out.length > 1 && out[0] === 'the') out.shift();
  return out.join(' ');
}

export function normalizeAddress(address: string): string {
  const out: string[] = [];
  for (const token of tokens(address)) {
    const bare = token.replaceAll('#', '');
    if (bare.length > 0) out.push(ADDRESS_ABBREVIATIONS.get(bare) ?? bare);
  }
  return out.join(' ');
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** For already-normalized names. Mirrors merchant_names_match in merchantMatch.lua. */
export function namesMatch(a: string, b: string): boolean {
  if (a.length === 0 || b.length === 0) return false;
  if (a === b) return true;
  const aBytes = utf8Length(a);
  const bBytes = utf8Length(b);
  const shorter = aBytes <= bBytes ? a : b;
  const longer = aBytes <= bBytes ? b : a;
  if (!longer.startsWith(shorter)) return false;
  // A UTF-8 prefix is a UTF-16 prefix, so the next unit equals Lua's next byte test.
  if (longer.charCodeAt(shorter.length) === 0x20) return true;
  return Math.min(aBytes, bBytes) >= MERCHANT_NAME_TRUNCATED_BYTES_MIN;
}

/** For already-normalized addresses. */
function addressesMatch(a: string, b: string): boolean {
  return a.length > 0 && a === b;
}

/** Normalizes both sides; both name and address must match. */
export function merchantMatches(
  swipe: { name: string; address: string },
  store: { name: string; address: string },
): boolean {
  return (
    addressesMatch(normalizeAddress(swipe.address), normalizeAddress(store.address)) &&
    namesMatch(normalizeMerchantName(swipe.name), normalizeMerchantName(store.name))
  );
}
