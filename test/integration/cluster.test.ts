// The same authorization suite on a private 3-master Redis Cluster: every
// script must stay inside one slot ({p<N>} hash tags) or Redis refuses it.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startRedisCluster, type PrivateCluster } from '../helpers/redisCluster.js';
import { authorizationSuite } from './authorization-suite.js';

let cluster: PrivateCluster;
beforeAll(async () => {
  cluster = await startRedisCluster([17001, 17002, 17003]);
});
afterAll(async () => {
  await cluster?.stop();
});

test('the cluster has three masters', () => {
  expect(cluster.nodes).toHaveLength(3);
});

authorizationSuite('a 3-master Redis Cluster', () => ({
  REDIS_CLUSTER_NODES: cluster.nodes.join(','),
  PARTITIONS: '64',
}));
