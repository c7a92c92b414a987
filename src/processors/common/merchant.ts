// CONTRACT §4b in TypeScript: the twin of processor_merchant_matches in
// lua/includes/merchantMatch.lua (test/processors/merchant.test.ts runs both).
import { namesMatch, normalizeAddress, normalizeMerchantName } from '../../domain/merchant.js';
import { normalizeMcc, normalizeNetworkId, normalizePostal } from './swipe.js';

export interface ProcessorMerchant {
  readonly name: string;
  readonly street: string;
  readonly postal: string;
  readonly mcc: string;
  readonly networkId: string;
}

export interface StoreEvidence {
  readonly name: string;
  readonly address: string;
  readonly postalCode?: string;
  readonly mccs?: readonly string[];
  readonly networkIds?: readonly string[];
}

export function processorMerchantMatches(swipe: ProcessorMerchant, store: StoreEvidence): boolean {
  if (!namesMatch(normalizeMerchantName(swipe.name), normalizeMerchantName(store.name))) return false;
  const mccs = store.mccs ?? [];
  if (mccs.length > 0 && !mccs.includes(normalizeMcc(swipe.mcc))) return false;
  const nid = normalizeNetworkId(swipe.networkId);
  const nids = (store.networkIds ?? []).map(normalizeNetworkId);
  if (nid !== '' && nids.length > 0) return nids.includes(nid);
  const street = swipe.street === '' ? '' : normalizeAddress(swipe.street);
  const storeStreet = normalizeAddress(store.address);
  if (street !== '' && storeStreet !== '') return street === storeStreet;
  const postal = normalizePostal(swipe.postal);
  const storePostal = normalizePostal(store.postalCode ?? '');
  if (postal !== '' && storePostal !== '') return postal === storePostal;
  return false;
}

/** The trip hash's §4b fields (lua/upsertTrip-4.lua writes them, authorizeSwipe reads them). */
export function storeEvidenceFields(store: {
  postal_code?: string;
  mccs?: readonly string[];
  network_ids?: readonly string[];
}): Array<[string, string]> {
  const set = (xs: readonly string[] | undefined, norm: (s: string) => string) =>
    xs === undefined || xs.length === 0 ? '' : `,${xs.map(norm).join(',')},`;
  return [
    ['m_postal', normalizePostal(store.postal_code ?? '')],
    ['m_mccs', set(store.mccs, normalizeMcc)],
    ['m_nids', set(store.network_ids, normalizeNetworkId)],
  ];
}

/** The §4b trip-hash fields from a stored canonical spec (hydrate: Postgres keeps the spec). */
export function storeEvidenceFromSpec(spec: string | null): Array<[string, string]> {
  if (spec === null || spec === '') return storeEvidenceFields({});
  try {
    const m = (JSON.parse(spec) as { merchant?: Record<string, unknown> }).merchant ?? {};
    const list = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    return storeEvidenceFields({
      postal_code: typeof m['postal_code'] === 'string' ? m['postal_code'] : '',
      mccs: list(m['mccs']),
      network_ids: list(m['network_ids']),
    });
  } catch {
    return storeEvidenceFields({});
  }
}
