// REGION, REGION_PEERS, REGION_SECRETS, REGION_FORWARD_TIMEOUT_MS: read and checked at boot.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const SECRET = 's'.repeat(32);
const base = { NODE_ENV: 'test' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe('region config', () => {
  it('defaults to one region with a 250 ms forward deadline', () => {
    const c = loadConfig(base).regions;
    expect(c.region).toBe('');
    expect(c.peers.size).toBe(0);
    expect(c.forwardTimeoutMs).toBe(250);
  });

  it('reads peers as name=url pairs and the secrets for rotation', () => {
    const c = loadConfig({
      ...base,
      REGION: 'eu',
      REGION_PEERS: 'us=http://us.internal:8080/, ap=https://ap.internal',
      REGION_SECRETS: `${SECRET},${'t'.repeat(40)}`,
      REGION_FORWARD_TIMEOUT_MS: '400',
    }).regions;
    expect([...c.peers]).toEqual([
      ['us', 'http://us.internal:8080'],
      ['ap', 'https://ap.internal'],
    ]);
    expect(c.secrets).toHaveLength(2);
    expect(c.forwardTimeoutMs).toBe(400);
  });

  it('refuses peers without a region or secrets, bad pairs, short secrets and bad deadlines', () => {
    expect(problems({ REGION_PEERS: 'us=http://us:1', REGION_SECRETS: SECRET }).join()).toMatch(
      /needs REGION/,
    );
    expect(problems({ REGION: 'eu', REGION_PEERS: 'us=http://us:1' }).join()).toMatch(/needs REGION_SECRETS/);
    expect(problems({ REGION: 'eu', REGION_PEERS: 'us', REGION_SECRETS: SECRET }).join()).toMatch(/name=/);
    expect(problems({ REGION: 'eu', REGION_PEERS: 'eu=http://x:1', REGION_SECRETS: SECRET }).join()).toMatch(
      /this region/,
    );
    expect(problems({ REGION_SECRETS: 'short' }).join()).toMatch(/>= 32/);
    expect(problems({ REGION_FORWARD_TIMEOUT_MS: '0' }).join()).toMatch(/REGION_FORWARD_TIMEOUT_MS/);
    expect(problems({ REGION: 'EU!' }).join()).toMatch(/REGION must match/);
  });

  it('the README configuration table names the region variables', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const name of ['REGION', 'REGION_PEERS', 'REGION_SECRETS', 'REGION_FORWARD_TIMEOUT_MS'])
      expect(readme).toContain(`\`${name}\``);
  });
});
