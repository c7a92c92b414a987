// values.yaml and every region file (merged over values.yaml the way helm
// merges) must validate against values.schema.json; typos and bad values fail.
import { basename, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART, helmMerge, isObject, type JsonObject, listFiles, loadYaml, read } from './helpers.js';

const regionFiles = listFiles(join(CHART, 'values'), /\.ya?ml$/);
let validate: ValidateFunction;
let defaults: JsonObject;

function errorsOf(values: unknown): string[] {
  if (validate(values)) return [];
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
  );
}

function withOverride(override: JsonObject): JsonObject {
  return helmMerge(defaults, override);
}

beforeAll(() => {
  const schema = JSON.parse(read(join(CHART, 'values.schema.json')));
  // strict: an unknown keyword or a type-less `properties` in the schema is itself an error.
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  validate = ajv.compile(schema);
  const v = loadYaml(join(CHART, 'values.yaml'));
  if (!isObject(v)) throw new Error('values.yaml is not a mapping');
  defaults = v;
});

describe('chart values', () => {
  it('Chart.yaml is a v2 application chart with a kubeVersion', () => {
    const chart = loadYaml(join(CHART, 'Chart.yaml'));
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'swipe-authorizer', type: 'application' });
    expect(isObject(chart) && typeof chart.kubeVersion === 'string').toBe(true);
  });

  it('values.yaml validates against values.schema.json', () => {
    expect(errorsOf(defaults)).toEqual([]);
  });

  it('there are region values files', () => {
    expect(regionFiles.map((f) => basename(f)).sort()).toEqual([
      'eu-west-1.yaml',
      'us-east-1.yaml',
      'us-west-2.yaml',
    ]);
  });

  for (const file of regionFiles) {
    describe(basename(file), () => {
      it('parses and, merged over values.yaml, validates against the schema', () => {
        const region = loadYaml(file);
        expect(isObject(region)).toBe(true);
        expect(errorsOf(withOverride(region as JsonObject))).toEqual([]);
      });

      it('names its region after its file, and pins Redis Cluster seeds and Postgres from k8s/', () => {
        const v = withOverride(loadYaml(file) as JsonObject);
        expect(v.region).toBe(basename(file).replace(/\.ya?ml$/, ''));
        const redis = v.redis as JsonObject;
        expect((redis.clusterNodes as string[]).length).toBeGreaterThanOrEqual(3);
        expect((v.database as JsonObject).existingSecret).toBe('swipe-pg-app');
        expect((v.secrets as JsonObject).existingSecret).not.toBe('');
      });
    });
  }

  describe('rejects bad values', () => {
    it('a typo in a key (additionalProperties: false)', () => {
      const errors = errorsOf(withOverride({ api: { replicaz: 3 } }));
      expect(errors.join('\n')).toMatch(/\/api must NOT have additional properties.*replicaz/);
    });

    it('a typo at the top level', () => {
      expect(errorsOf(withOverride({ ingres: {} })).join('\n')).toMatch(/additional properties.*ingres/);
    });

    it('a wrong type and an out-of-range number', () => {
      const errors = errorsOf(withOverride({ config: { decisionTimeoutMs: '25', partitions: 0 } }));
      expect(errors.join('\n')).toMatch(/decisionTimeoutMs must be integer/);
      expect(errors.join('\n')).toMatch(/partitions must be >= 1/);
    });

    it('a short signature secret, and a comma inside one', () => {
      const short = errorsOf(
        withOverride({
          secrets: { existingSecret: '', signatureSecrets: ['short'], apiTokens: ['x'.repeat(16)] },
        }),
      );
      expect(short.join('\n')).toMatch(/signatureSecrets\/0 must NOT have fewer than 16 characters/);
      const comma = errorsOf(
        withOverride({
          secrets: {
            existingSecret: '',
            signatureSecrets: ['a'.repeat(16) + ',b'],
            apiTokens: ['x'.repeat(16)],
          },
        }),
      );
      expect(comma.join('\n')).toMatch(/signatureSecrets\/0 must match pattern/);
    });

    it('production without any secret source', () => {
      expect(errorsOf(withOverride({ secrets: { existingSecret: '' } }))).not.toEqual([]);
      expect(
        errorsOf(
          withOverride({
            secrets: { existingSecret: '', signatureSecrets: ['s'.repeat(16)], apiTokens: ['t'.repeat(16)] },
          }),
        ),
      ).toEqual([]);
    });

    it('a Redis Cluster seed that is not host:port, and a non-redis URL', () => {
      const errors = errorsOf(withOverride({ redis: { clusterNodes: ['redis-0'], url: 'http://x' } }));
      expect(errors.join('\n')).toMatch(/clusterNodes\/0 must match pattern/);
      expect(errors.join('\n')).toMatch(/redis\/url must match pattern/);
    });

    it('an unknown enum value and a malformed image digest', () => {
      const errors = errorsOf(
        withOverride({ config: { logLevel: 'verbose' }, image: { digest: 'sha256:xyz' } }),
      );
      expect(errors.join('\n')).toMatch(/logLevel must be equal to one of the allowed values/);
      expect(errors.join('\n')).toMatch(/digest must match pattern/);
    });

    it('an HPA floor of one replica', () => {
      expect(errorsOf(withOverride({ api: { autoscaling: { minReplicas: 1 } } })).join('\n')).toMatch(
        /minReplicas/,
      );
    });
  });
});
