// CONTRACT §4b: every row through the TypeScript matcher (src/processors/common/merchant.ts)
// AND its Lua twin in the real Redis (processor_merchant_matches, fed the same normalized
// strings the api sends): the authorize script decides exactly what TypeScript decides.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedRedisForFile } from '../helpers/sharedRedis.js';
import { normalizeAddress, normalizeMerchantName } from '../../src/domain/merchant.js';
import {
  type ProcessorMerchant,
  processorMerchantMatches,
  type StoreEvidence,
  storeEvidenceFields,
} from '../../src/processors/common/merchant.js';
import { normalizeMcc, normalizeNetworkId, normalizePostal } from '../../src/processors/common/swipe.js';

const include = readFileSync(new URL('../../lua/includes/merchantMatch.lua', import.meta.url), 'utf8');
const LUA = `${include}\nreturn processor_merchant_matches(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]) and 1 or 0\n`;

const redis = sharedRedisForFile();

const STORE: StoreEvidence = {
  name: 'Safeway',
  address: '123 Main St',
  postalCode: '94103',
  mccs: ['5411', '5499'],
  networkIds: ['445566778899', 'ab-12'],
};
const NO_IDS: StoreEvidence = { name: 'Safeway', address: '123 Main St', postalCode: '94103 ' };
const BARE: StoreEvidence = { name: 'Safeway', address: '123 Main St' };
const m = (o: Partial<ProcessorMerchant>): ProcessorMerchant => ({
  name: 'SAFEWAY #1234',
  street: '',
  postal: '',
  mcc: '5411',
  networkId: '',
  ...o,
});

const rows: Array<[string, ProcessorMerchant, StoreEvidence, boolean]> = [
  ['network id in the list', m({ networkId: '445566778899' }), STORE, true],
  ['network id, case and spaces', m({ networkId: ' AB-12 ' }), STORE, true],
  [
    'network id not in the list, even with the right postal code',
    m({ networkId: '1', postal: '94103' }),
    STORE,
    false,
  ],
  ['network id wins over a wrong street', m({ networkId: '445566778899', street: '9 Elm St' }), STORE, true],
  ['names differ', m({ name: 'WHOLE FOODS', networkId: '445566778899' }), STORE, false],
  [
    'descriptor cut at 22 characters',
    m({ name: 'SAFEWAY STORE NUMBER 1', networkId: '445566778899' }),
    { ...STORE, name: 'Safeway Store Number 1234' },
    true,
  ],
  ['MCC outside the allow-list', m({ mcc: '5812', networkId: '445566778899' }), STORE, false],
  ['no MCC against an allow-list', m({ mcc: '', networkId: '445566778899' }), STORE, false],
  ['no allow-list: any MCC', m({ mcc: '5812', postal: '94103' }), NO_IDS, true],
  ['no network id: street decides', m({ street: '123 MAIN STREET', postal: '10001' }), STORE, true],
  ['no network id: a different street', m({ street: '125 Main St', postal: '94103' }), STORE, false],
  [
    'store has no ids: network id ignored, postal decides',
    m({ networkId: '777', postal: '94103-1234' }),
    NO_IDS,
    true,
  ],
  ['postal code: first 5, spaces and case ignored', m({ postal: ' 94103 ' }), NO_IDS, true],
  ['postal code differs', m({ postal: '94104' }), NO_IDS, false],
  ['Canadian postal code', m({ postal: 'k1a 0b1' }), { ...NO_IDS, postalCode: 'K1A0B1' }, true],
  ['no common evidence', m({}), STORE, false],
  ['store with name and street only, swipe without street', m({ postal: '94103' }), BARE, false],
  ['store with name and street only, swipe with street', m({ street: '123 Main St.' }), BARE, true],
];

describe('processorMerchantMatches (TS) and processor_merchant_matches (Lua) agree', () => {
  it.each(rows)('%s', async (_label, swipe, store, expected) => {
    expect(processorMerchantMatches(swipe, store)).toBe(expected);
    const fields = Object.fromEntries(
      storeEvidenceFields({
        ...(store.postalCode === undefined ? {} : { postal_code: store.postalCode }),
        ...(store.mccs === undefined ? {} : { mccs: store.mccs }),
        ...(store.networkIds === undefined ? {} : { network_ids: store.networkIds }),
      }),
    );
    const args = [
      normalizeMerchantName(swipe.name),
      swipe.street === '' ? '' : normalizeAddress(swipe.street),
      normalizeNetworkId(swipe.networkId),
      normalizePostal(swipe.postal),
      normalizeMcc(swipe.mcc),
      normalizeMerchantName(store.name),
      normalizeAddress(store.address),
      fields['m_nids'] ?? '',
      fields['m_postal'] ?? '',
      fields['m_mccs'] ?? '',
    ];
    expect((await redis().eval(LUA, 0, ...args)) === 1).toBe(expected);
  });
});
