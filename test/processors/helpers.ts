// Processor tests: a real api + Postgres + persister (test/ledger/helpers.ts) with the
// processors' secrets, requests signed with the processors' own libraries, and payloads
// shaped like each processor's published examples (Stripe's OpenAPI Issuing Authorization,
// Marqeta's Gateway JIT Funding messages, Lithic's ASA request schema).
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { checkLedger, type LedgerEnv, startLedgerEnv } from '../ledger/helpers.js';
import { safewayTrip, type TestApi, TOKEN } from '../helpers/api.js';

export const STRIPE_SECRET = 'whsec_test_stripe_0123456789abcdef';
export const LITHIC_SECRET = `whsec_${Buffer.from('lithic-test-secret-0123456789ab').toString('base64')}`;
export const MARQETA_USER = 'marqeta_gateway';
export const MARQETA_PASSWORD = 'marqeta-password-0123456789';

/** Loopback ports reserved for this project's private servers: 17600-17699. */
export function processorEnv(port: number, env: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: String(port),
    METRICS_PORT: String(port + 1),
    STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET,
    MARQETA_BASIC_AUTH: `${MARQETA_USER}:${MARQETA_PASSWORD}`,
    LITHIC_WEBHOOK_SECRETS: LITHIC_SECRET,
    ...env,
  };
}

export async function startProcessorEnv(port: number, env: Record<string, string> = {}): Promise<LedgerEnv> {
  return startLedgerEnv(processorEnv(port, env));
}

export const uid = (prefix: string) => `${prefix}${randomBytes(8).toString('hex')}`;

/** The §4b store: Safeway with its postal code, grocery MCCs and one acquirer merchant id. */
export function processorTrip(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return safewayTrip({
    merchant: {
      name: 'Safeway',
      address: '123 Main St',
      postal_code: '94103',
      city: 'San Francisco',
      mccs: ['5411', '5499'],
      network_ids: ['445566778899'],
    },
    ...overrides,
  });
}

/** A shopper with an open trip (milk picked: allowance 4013 cents) and a card of `processor`. */
export async function shopperWithCard(
  env: { readonly t: TestApi },
  processor: 'stripe' | 'marqeta' | 'lithic',
  opts: { pick?: boolean; trip?: Record<string, unknown> } = {},
): Promise<{ shopperId: string; tripId: string; cardId: string }> {
  const shopperId = uid('s');
  const tripId = uid('t');
  const cardId = processor === 'stripe' ? uid('ic_') : processor === 'lithic' ? randomUUID() : uid('mq');
  const put = await env.t.putTrip(shopperId, tripId, opts.trip ?? processorTrip());
  if (put.status !== 201) throw new Error(`trip: ${put.status} ${put.text}`);
  if (opts.pick !== false) {
    const pick = await env.t.pick(shopperId, tripId, 'milk', {
      status: 'picked',
      quantity: 10,
      unit_price: '3.49',
    });
    if (pick.status !== 200) throw new Error(`pick: ${pick.status} ${pick.text}`);
  }
  const card = await registerCard(env, shopperId, processor, cardId);
  if (card.status !== 201) throw new Error(`card: ${card.status} ${card.text}`);
  return { shopperId, tripId, cardId };
}

export function registerCard(
  env: { readonly t: TestApi },
  shopperId: string,
  processor: string,
  cardId: string,
  token = TOKEN,
) {
  return env.t.request('PUT', `/v1/shoppers/${shopperId}/cards/${processor}/${cardId}`, '{}', {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
  });
}

export function retireCard(
  env: { readonly t: TestApi },
  shopperId: string,
  processor: string,
  cardId: string,
) {
  return env.t.request('DELETE', `/v1/shoppers/${shopperId}/cards/${processor}/${cardId}`, undefined, {
    Authorization: `Bearer ${TOKEN}`,
  });
}

// --- Stripe ---------------------------------------------------------------------------

const stripe = new Stripe('sk_test_not_used_for_requests');

export function stripeHeaders(
  raw: string,
  secret = STRIPE_SECRET,
  timestamp?: number,
): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'Stripe-Signature': stripe.webhooks.generateTestHeaderString({
      payload: raw,
      secret,
      ...(timestamp === undefined ? {} : { timestamp }),
    }),
  };
}

export const STRIPE_AUTHORIZATIONS = '/v1/processors/stripe/authorizations';
export const STRIPE_EVENTS = '/v1/processors/stripe/events';

/** POSTs `body` to `path` as Stripe sends it: signed with the secret, unless `headers` are given. */
export function postStripe(
  api: Pick<TestApi, 'request'>,
  path: string,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
) {
  const raw = JSON.stringify(body);
  return api.request('POST', path, raw, headers ?? stripeHeaders(raw));
}

/** A shopper with a Stripe card and one approved authorization of `amount` cents on it. */
export async function approvedStripeAuthorization(
  env: { readonly t: TestApi },
  amount: number,
): Promise<{ shopperId: string; tripId: string; cardId: string; auth: string }> {
  const card = await shopperWithCard(env, 'stripe');
  const auth = uid('iauth_');
  const approved = await postStripe(
    env.t,
    STRIPE_AUTHORIZATIONS,
    stripeRequestEvent({ authorizationId: auth, cardId: card.cardId, amount }),
  );
  if (approved.json['approved'] !== true)
    throw new Error(`authorization: ${approved.status} ${approved.text}`);
  return { ...card, auth };
}

/** `issuing_authorization.updated` for `auth`: the authorization's new fields and the previous ones. */
export function stripeAuthorizationUpdated(
  auth: string,
  cardId: string,
  now: { amount: number; status: string },
  previous: Record<string, unknown>,
) {
  return stripeEvent(
    'issuing_authorization.updated',
    { id: auth, object: 'issuing.authorization', card: { id: cardId }, ...now },
    previous,
  );
}

/** `issuing_transaction.created` of type capture: `amount` cents captured on `auth`. */
export function stripeCapture(auth: string, cardId: string, amount: number) {
  return stripeEvent('issuing_transaction.created', {
    id: uid('ipi_'),
    object: 'issuing.transaction',
    amount: -amount,
    authorization: auth,
    card: cardId,
    currency: 'usd',
    type: 'capture',
    created: Math.floor(Date.now() / 1000),
  });
}

export interface StripeMerchant {
  name?: string;
  network_id?: string;
  postal_code?: string | null;
  category_code?: string;
}

/** An `issuing_authorization.request` event as Stripe sends it (fields per Stripe's OpenAPI). */
export function stripeRequestEvent(o: {
  authorizationId: string;
  cardId: string;
  amount: number;
  currency?: string;
  history?: number[];
  controllable?: boolean;
  merchant?: StripeMerchant;
}): Record<string, unknown> {
  const currency = o.currency ?? 'usd';
  const created = Math.floor(Date.now() / 1000);
  return {
    id: uid('evt_'),
    object: 'event',
    api_version: '2024-06-20',
    created,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'issuing_authorization.request',
    data: {
      object: {
        id: o.authorizationId,
        object: 'issuing.authorization',
        amount: 0,
        amount_details: { atm_fee: null, cashback_amount: null },
        approved: false,
        authorization_method: 'chip',
        balance_transactions: [],
        card: {
          id: o.cardId,
          object: 'issuing.card',
          brand: 'Visa',
          cardholder: {
            id: 'ich_1MsKAB2eZvKYlo2C3eZ2tJvw',
            object: 'issuing.cardholder',
            type: 'individual',
          },
          currency,
          exp_month: 8,
          exp_year: 2030,
          last4: '4242',
          livemode: false,
          status: 'active',
          type: 'physical',
        },
        cardholder: 'ich_1MsKAB2eZvKYlo2C3eZ2tJvw',
        created,
        currency,
        livemode: false,
        merchant_amount: 0,
        merchant_currency: currency,
        merchant_data: {
          category: 'grocery_stores_supermarkets',
          category_code: o.merchant?.category_code ?? '5411',
          city: 'SAN FRANCISCO',
          country: 'US',
          name: o.merchant?.name ?? 'SAFEWAY #1234',
          network_id: o.merchant?.network_id ?? '445566778899',
          postal_code: o.merchant?.postal_code === undefined ? '94103' : o.merchant.postal_code,
          state: 'CA',
          terminal_id: '00000001',
          url: null,
        },
        metadata: {},
        network_data: null,
        pending_request: {
          amount: o.amount,
          amount_details: { atm_fee: null, cashback_amount: null },
          currency,
          is_amount_controllable: o.controllable ?? false,
          merchant_amount: o.amount,
          merchant_currency: currency,
          network_risk_score: null,
        },
        request_history: (o.history ?? []).map((amount) => ({
          amount,
          amount_details: { atm_fee: null, cashback_amount: null },
          approved: true,
          authorization_code: 'S498162',
          created,
          currency,
          merchant_amount: amount,
          merchant_currency: currency,
          network_risk_score: null,
          reason: 'webhook_approved',
          reason_message: null,
          requested_at: created,
        })),
        status: 'pending',
        transactions: [],
        verification_data: {
          address_line1_check: 'not_provided',
          address_postal_code_check: 'match',
          cvc_check: 'match',
          expiry_check: 'match',
        },
        wallet: null,
      },
    },
  };
}

export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  previous?: Record<string, unknown>,
) {
  return {
    id: uid('evt_'),
    object: 'event',
    api_version: '2024-06-20',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    type,
    data: { object, ...(previous === undefined ? {} : { previous_attributes: previous }) },
  };
}

// --- Lithic ---------------------------------------------------------------------------

export function lithicHeaders(
  raw: string,
  msgId = `msg_${uid('')}`,
  secret = LITHIC_SECRET,
): Record<string, string> {
  const now = new Date();
  return {
    'Content-Type': 'application/json',
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(msgId, now, raw),
  };
}

// --- Marqeta --------------------------------------------------------------------------

export function marqetaHeaders(user = MARQETA_USER, password = MARQETA_PASSWORD): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  };
}

export async function ledgerBalanced(env: LedgerEnv): Promise<boolean> {
  await env.persisted();
  const check = await checkLedger(env.db);
  return check.unbalancedPostings.length === 0 && Object.values(check.totals).every((v) => v === 0);
}

/** A `card_authorization.approval_request` as Lithic's ASA sends it (fields per lithic-openapi). */
export function lithicAsaRequest(o: {
  token: string;
  cardId: string;
  amount: number;
  eventToken?: string;
  currency?: string;
  partialCapable?: boolean;
  legacyAmount?: boolean;
  merchant?: { descriptor?: string; acceptor_id?: string; postal_code?: string | null; mcc?: string };
}): Record<string, unknown> {
  const currency = o.currency ?? 'USD';
  const body: Record<string, unknown> = {
    event_type: 'card_authorization.approval_request',
    token: o.token,
    ...(o.eventToken === undefined ? {} : { event_token: o.eventToken }),
    status: 'AUTHORIZATION',
    created: new Date().toISOString(),
    acquirer_fee: 0,
    amount: o.amount,
    authorization_amount: o.amount,
    cardholder_currency: currency,
    merchant_amount: o.amount,
    merchant_currency: currency,
    cash_amount: 0,
    conversion_rate: 1,
    network: 'VISA',
    network_risk_score: null,
    transaction_initiator: 'CARDHOLDER',
    account_type: 'CHECKING',
    card: {
      token: o.cardId,
      last_four: '4242',
      memo: 'shopper card',
      spend_limit: 0,
      spend_limit_duration: 'TRANSACTION',
      state: 'OPEN',
      type: 'VIRTUAL',
    },
    merchant: {
      acceptor_id: o.merchant?.acceptor_id ?? '445566778899',
      acquiring_institution_id: '191231',
      city: 'SAN FRANCISCO',
      country: 'USA',
      descriptor: o.merchant?.descriptor ?? 'SAFEWAY #1234',
      mcc: o.merchant?.mcc ?? '5411',
      state: 'CA',
      postal_code: o.merchant?.postal_code === undefined ? '94103' : o.merchant.postal_code,
      street_address: null,
      phone_number: null,
    },
    pos: {
      entry_mode: { card: 'PRESENT', cardholder: 'PRESENT', pan: 'EMV_CONTACT', pin_entered: false },
      terminal: {
        acceptor_terminal_id: 'T0001',
        attended: true,
        card_retention_capable: false,
        on_premise: true,
        operator: 'CARDHOLDER',
        partial_approval_capable: o.partialCapable ?? false,
        pin_capability: 'CAPABLE',
        type: 'POS',
      },
    },
    service_location: null,
  };
  if (o.legacyAmount !== true) {
    body['amounts'] = {
      cardholder: { amount: o.amount, conversion_rate: '1.000000', currency },
      merchant: { amount: o.amount, currency },
      settlement: null,
      hold: null,
    };
  }
  return body;
}

/** A `card_transaction.updated` event with the given events (Lithic's card_transaction schema). */
export function lithicTransactionUpdated(o: {
  token: string;
  cardId: string;
  events: Array<{ token: string; type: string; amount: number }>;
}): Record<string, unknown> {
  return {
    event_type: 'card_transaction.updated',
    token: o.token,
    card_token: o.cardId,
    account_token: randomUUID(),
    status: 'PENDING',
    result: 'APPROVED',
    created: new Date().toISOString(),
    events: o.events.map((e) => ({
      token: e.token,
      type: e.type,
      amount: e.amount,
      amounts: {
        cardholder: { amount: e.amount, conversion_rate: '1.000000', currency: 'USD' },
        merchant: { amount: e.amount, currency: 'USD' },
        settlement: null,
      },
      created: new Date().toISOString(),
      detailed_results: ['APPROVED'],
      effective_polarity: 'DEBIT',
      result: 'APPROVED',
      rule_results: [],
      network_info: null,
    })),
  };
}

/** A Gateway JIT Funding request as Marqeta sends it (Marqeta's "Gateway JIT Funding messages"). */
export function marqetaJitRequest(o: {
  token: string;
  jitToken: string;
  cardId: string;
  amount: string;
  method?: string;
  originalJitToken?: string;
  currency?: string;
  cardAcceptor?: Record<string, unknown>;
}): Record<string, unknown> {
  const userToken = 'user_0146434d3c224906';
  return {
    type: 'authorization',
    state: 'PENDING',
    token: o.token,
    user_token: userToken,
    acting_user_token: userToken,
    card_token: o.cardId,
    currency_code: o.currency ?? 'USD',
    amount: JSON.parse(o.amount),
    created_time: new Date().toISOString(),
    user_transaction_time: new Date().toISOString(),
    gpa: {
      currency_code: 'USD',
      ledger_balance: 0,
      available_balance: 0,
      credit_balance: 0,
      pending_credits: 0,
      impacted_amount: 0,
    },
    gpa_order: {
      token: `gpa_${o.jitToken}`,
      amount: JSON.parse(o.amount),
      created_time: new Date().toISOString(),
      transaction_token: o.token,
      state: 'PENDING',
      response: { code: '0000', memo: 'Approved or completed successfully' },
      funding: {
        amount: JSON.parse(o.amount),
        source: {
          type: 'programgateway',
          token: 'funding_source_01',
          active: true,
          is_default_account: false,
        },
      },
      funding_source_token: 'funding_source_01',
      jit_funding: {
        token: o.jitToken,
        method: o.method ?? 'pgfs.authorization',
        user_token: userToken,
        acting_user_token: userToken,
        amount: JSON.parse(o.amount),
        ...(o.originalJitToken === undefined ? {} : { original_jit_funding_token: o.originalJitToken }),
      },
      user_token: userToken,
      currency_code: o.currency ?? 'USD',
    },
    card_acceptor: o.cardAcceptor ?? {
      mid: '445566778899',
      mcc: '5411',
      name: 'SAFEWAY #1234',
      city: 'San Francisco',
      state: 'CA',
      postal_code: '94103',
      country_code: 'USA',
    },
    network: 'VISA',
    subnetwork: 'VISANET',
    acquirer_fee_amount: 0,
  };
}

/** A Marqeta webhook notification carrying transaction events. */
export function marqetaWebhook(
  transactions: Array<{ type: string; token: string; preceding: string; cardId: string; amount: string }>,
): Record<string, unknown> {
  return {
    transactions: transactions.map((t) => ({
      type: t.type,
      state: 'COMPLETION',
      token: t.token,
      preceding_related_transaction_token: t.preceding,
      card_token: t.cardId,
      user_token: 'user_0146434d3c224906',
      amount: JSON.parse(t.amount),
      currency_code: 'USD',
      created_time: new Date().toISOString(),
    })),
  };
}
