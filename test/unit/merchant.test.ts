// Every row runs through the TypeScript matcher AND through the Lua twin in the real
// Redis (EVAL of lua/includes/merchantMatch.lua fed the TS-normalized strings): the
// authorize script must decide exactly what the TypeScript side decides.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedRedisForFile } from '../helpers/sharedRedis.js';
import {
  merchantMatches,
  namesMatch,
  normalizeAddress,
  normalizeMerchantName,
} from '../../src/domain/merchant.js';

const include = readFileSync(new URL('../../lua/includes/merchantMatch.lua', import.meta.url), 'utf8');
const MATCHES_LUA = `${include}\nreturn merchant_matches(ARGV[1], ARGV[2], ARGV[3], ARGV[4]) and 1 or 0\n`;
const NAMES_LUA = `${include}\nreturn merchant_names_match(ARGV[1], ARGV[2]) and 1 or 0\n`;

const redis = sharedRedisForFile();

async function luaMatches(args: string[]): Promise<boolean> {
  const r = await redis().eval(MATCHES_LUA, 0, ...args);
  return r === 1;
}

// [swipe name, swipe address, store name, store address, expected]
type Row = [string, string, string, string, boolean];

const SAFEWAY = ['Safeway', '123 Main St'] as const;
const DEPOT = ['The Home Depot', '500 North Avenue'] as const;
const NATURAL = ['Natural Grocers by Vitamin Cottage', '77 Elm Drive'] as const;
const COSTCO = 'Costco';

const rows: Row[] = [
  // CONTRACT §4 examples
  ['SAFEWAY #1234', '123 MAIN STREET', ...SAFEWAY, true],
  ['Safeway Store 0042', '123 Main St.', ...SAFEWAY, true],
  ['Safeway', '125 Main St', ...SAFEWAY, false],
  ['Whole Foods', '123 Main St', ...SAFEWAY, false],
  // store-number tokens
  ['safeway', '123 main st', ...SAFEWAY, true],
  ['SAFEWAY STORE #12', '123 Main St', ...SAFEWAY, true],
  ['Safeway No. 12', '123 Main St', ...SAFEWAY, true],
  ['Safeway 0042', '123 Main Street', ...SAFEWAY, true],
  ['Safeway # 77', '123 Main St', ...SAFEWAY, true],
  ['Store #12 Safeway', '123 Main St', ...SAFEWAY, true],
  ['#1234', '123 Main St', ...SAFEWAY, false], // empty name never matches
  ['', '123 Main St', ...SAFEWAY, false],
  // whole-word prefix, never a partial word
  ['Safeway Store', '123 Main St', ...SAFEWAY, true],
  ['SAFEWAY FUEL CENTER 1', '123 Main St', ...SAFEWAY, true],
  ['Safe', '123 Main St', ...SAFEWAY, false],
  ['SAFEWA', '123 Main St', ...SAFEWAY, false],
  ['Safeways', '123 Main St', ...SAFEWAY, false],
  ['Safe Way', '123 Main St', ...SAFEWAY, false],
  // punctuation
  ['S.A.F.E.W.A.Y.', '123 Main St.,', ...SAFEWAY, true],
  ['Safeway!', '123, Main St', ...SAFEWAY, true],
  // addresses: digits kept, suffixes differ, empty
  ['Safeway', '1234 Main St', ...SAFEWAY, false],
  ['Safeway', '123 Main Rd', ...SAFEWAY, false],
  ['Safeway', '123 Main St Ste 5', ...SAFEWAY, false],
  ['Safeway', '', ...SAFEWAY, false],
  ['Safeway', '', 'Safeway', '', false], // empty address never matches
  // unicode
  ['ＳＡＦＥＷＡＹ', '１２３ Ｍａｉｎ Ｓｔ', ...SAFEWAY, true], // fullwidth
  ['Safe\u200Bway', '123 Ma\u200Din St', ...SAFEWAY, true], // zero-width space / joiner
  ['Safe\u00ADway', '123 Main St', ...SAFEWAY, true], // soft hyphen
  ['\uFEFFSafeway', '123 Main St', ...SAFEWAY, true], // BOM
  ['Safeway\u00A0#\u00A01234', '123\u00A0Main\u00A0Street', ...SAFEWAY, true], // NBSP
  ['CAFE RENE', '10 rue de la paix', 'Café René', '10 Rue de la Paix', true], // accents fold
  ['CAFÉ RENÉ', '10 RUE DE LA PAIX', 'Café René', '10 Rue de la Paix', true],
  ['Cafe\u0301 Rene\u0301', '10 Rue de la Paix', 'Café René', '10 Rue de la Paix', true], // combining
  ['Cafe Renee', '10 Rue de la Paix', 'Café René', '10 Rue de la Paix', false],
  ['ﬁesta mart', '9 Oak Ln', 'Fiesta Mart', '9 Oak Lane', true], // ligature
  ['東急ストア', '1 Shibuya', '東急ストア 渋谷', '1 Shibuya', true], // whole-word, non-ASCII
  ['東急', '1 Shibuya', '東急ストア', '1 Shibuya', false], // partial word, non-ASCII
  ['İSTANBUL MARKET', '4 Pine Ct', 'Istanbul Market', '4 Pine Court', true],
  // leading "the"
  ['HOME DEPOT #4410', '500 N Ave', ...DEPOT, true],
  ['The Home Depot', '500 North Ave.', ...DEPOT, true],
  ['THE HOME DEPOT PRO', '500 N Avenue', ...DEPOT, true],
  ['HOME DEPOT', '500 S Ave', ...DEPOT, false],
  ['THE FRESH MARKET', '2 Bay Rd', 'Fresh Market', '2 Bay Road', true],
  ['Theater Snacks', '2 Bay Rd', 'Snacks', '2 Bay Road', false], // "the" only as a whole word
  // &
  ['BARNES AND NOBLE', '1 SW Pkwy', 'Barnes & Noble', '1 Southwest Parkway', true],
  ['Barnes&Noble', '1 Southwest Pkwy', 'Barnes & Noble', '1 Southwest Parkway', true],
  ['BARNES NOBLE', '1 SW PKWY', 'Barnes & Noble', '1 Southwest Parkway', false],
  ['A&P', '9 Oak Lane', 'A and P', '9 Oak Ln', true],
  ['AP', '9 Oak Lane', 'A and P', '9 Oak Ln', false],
  // apostrophes
  ["TRADER JOE'S #552", '3 NE BLVD', "Trader Joe's", '3 Northeast Boulevard', true],
  ['Trader Joe\u2019s', '3 Northeast Blvd', "Trader Joe's", '3 Northeast Boulevard', true],
  ['TRADER JOES', '3 NW BLVD', "Trader Joe's", '3 Northeast Boulevard', false],
  // 22-character processor truncation
  ['NATURAL GROCERS BY VIT', '77 Elm Dr', ...NATURAL, true], // 22, cut mid-word
  ['NATURAL GROCERS BY VI', '77 Elm Dr', ...NATURAL, false], // 21, cut mid-word
  ['NATURAL GROCERS BY VIX', '77 Elm Dr', ...NATURAL, false], // 22, not a prefix
  ['NATURAL GROCERS BY VIT', '78 Elm Dr', ...NATURAL, false], // address differs
  ['NATURAL GROCERS BY VITAMIN COTTAGE #12', '77 ELM DRIVE', ...NATURAL, true],
  ['Natural Grocers', '77 Elm Drive', ...NATURAL, true],
  ['NATURAL GROCERS BY VIT', '77 Elm Dr', 'Natural Grocers by Vit', '77 Elm Dr', true],
  // directionals, suffixes, units
  [COSTCO, '1 N Main St', COSTCO, '1 North Main Street', true],
  [COSTCO, '1 Main St', COSTCO, '1 North Main Street', false],
  [COSTCO, '1 S Main St', COSTCO, '1 North Main Street', false],
  [COSTCO, '45 Southeast Highway 9', COSTCO, '45 SE Hwy 9', true],
  [COSTCO, '12 Sunset Boulevard Suite 100', COSTCO, '12 Sunset Blvd Ste 100', true],
  [COSTCO, '12 Sunset Blvd Apartment 3', COSTCO, '12 Sunset Blvd, Apt. #3', true],
  [COSTCO, '12 Sunset Court', COSTCO, '12 Sunset Ct', true],
  [COSTCO, '12 Sunset Circle', COSTCO, '12 Sunset Ct', false],
  [COSTCO, '8 Lake Terrace', COSTCO, '8 Lake Ter', true],
  [COSTCO, '8 Lake Place', COSTCO, '8 Lake Pl', true],
  [COSTCO, '8 Lake Square', COSTCO, '8 Lake Sq', true],
  [COSTCO, '8 Bay Parkway West', COSTCO, '8 Bay Pkwy W', true],
  // different merchants at one address
  ['Walgreens #12345', '700 Market Place', 'Walgreens', '700 Market Pl', true],
  ['CVS PHARMACY', '700 Market Place', 'Walgreens', '700 Market Pl', false],
];

describe('merchantMatches (TypeScript) and merchant_matches (Lua in Redis) agree', () => {
  it('has at least 50 rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(50);
  });

  it.each(rows)('%j / %j vs %j / %j -> %j', async (swipeName, swipeAddr, storeName, storeAddr, expected) => {
    expect(
      merchantMatches({ name: swipeName, address: swipeAddr }, { name: storeName, address: storeAddr }),
    ).toBe(expected);
    const args = [
      normalizeMerchantName(swipeName),
      normalizeAddress(swipeAddr),
      normalizeMerchantName(storeName),
      normalizeAddress(storeAddr),
    ];
    expect(await luaMatches(args)).toBe(expected);
  });
});

describe('namesMatch on normalized names: TS and Lua agree byte for byte', () => {
  const e11 = 'é'.repeat(11); // 11 characters, 22 UTF-8 bytes
  const names: [string, string, boolean][] = [
    ['safeway', 'safeway', true],
    ['safeway', 'safeway store', true],
    ['safeway store', 'safeway', true],
    ['safe', 'safeway', false],
    ['safeway', 'safe way', false],
    ['', '', false],
    ['', 'safeway', false],
    ['abcdefghijklmnopqrstuv', 'abcdefghijklmnopqrstuvwx', true], // 22 bytes
    ['abcdefghijklmnopqrstu', 'abcdefghijklmnopqrstuvwx', false], // 21 bytes
    [e11, `${e11}é`, true], // 22 bytes, 11 UTF-16 units: bytes count
    ['é'.repeat(10), e11, false], // 20 bytes
    ['caf', 'café', false],
    ['café', 'café bar', true],
  ];
  it.each(names)('%j ~ %j -> %j', async (a, b, expected) => {
    expect(namesMatch(a, b)).toBe(expected);
    expect(await redis().eval(NAMES_LUA, 0, a, b)).toBe(expected ? 1 : 0);
  });
});

describe('normalization', () => {
  const names: [string, string][] = [
    ['SAFEWAY #1234', 'safeway'],
    ['Safeway Store 0042', 'safeway'],
    ['The Home Depot #123', 'home depot'],
    ['the', 'the'],
    ['Whole Foods Mkt No. 10', 'whole foods mkt'],
    ['Trader Joe\u2019s #552', 'trader joes'],
    ['A&P', 'a and p'],
    ['7-ELEVEN 12345', '7 eleven'],
    ['  Safeway   \t Store  ', 'safeway store'],
    ['ＳＡＦＥＷＡＹ', 'safeway'],
    ['Müller', 'muller'],
    ['İstanbul', 'istanbul'],
    ['x'.repeat(10_000), 'x'.repeat(256)], // bounded work
  ];
  it.each(names)('name %j -> %j', (input, expected) => {
    expect(normalizeMerchantName(input)).toBe(expected);
  });

  const addresses: [string, string][] = [
    ['123 MAIN STREET', '123 main st'],
    ['123 N. Main St., Suite #4', '123 n main st ste 4'],
    ['1 Northeast Blvd', '1 ne blvd'],
    ['１２３ Main St', '123 main st'],
    ['9 Elm & Oak', '9 elm and oak'],
    ['500 Market Street 12', '500 market st 12'], // numbers stay in addresses
  ];
  it.each(addresses)('address %j -> %j', (input, expected) => {
    expect(normalizeAddress(input)).toBe(expected);
  });
});
