import { join } from 'node:path';
import { startStrata } from './strata.mjs';
import { waitUntil } from './wait.mjs';

/** Membership converges within a few heartbeats (500 ms each); start-up of a node takes about a second. */
const aliveTimeoutMs = 30_000;

/**
 * `size` Strata nodes as real processes, each in its own directory under `baseDir`: node 1 alone,
 * nodes 2..n started one after the other with `--join` node 1. Each node's stop is pushed on
 * `cleanups` as soon as it is up. Resolves once every node sees every other one alive.
 */
export async function startCluster({ repoDir, baseDir, size, clusterKey, label, cleanups, log }) {
  const nodes = [];
  for (let index = 0; index < size; index += 1) {
    const node = await startClusterNode({
      repoDir,
      dataDir: join(baseDir, `node${index + 1}`),
      name: `${label}-${index + 1}`,
      clusterKey,
      join: index === 0 ? undefined : nodes[0].url,
    });
    cleanups.push(node.stop);
    nodes.push(node);
  }
  log(`  ${size} nodes started; waiting until each sees the others alive…`);
  await waitForMembers(nodes, size);
  return nodes;
}

/** One clustered node: `join` is the URL of a node already in the cluster, or undefined for the first. */
export async function startClusterNode({ repoDir, dataDir, name, clusterKey, join: joinUrl }) {
  const args = ['--node-name', name, '--cluster-key', clusterKey];
  if (joinUrl !== undefined) args.push('--join', joinUrl);
  const server = await startStrata({ repoDir, dataDir, args });
  return { ...server, name };
}

/** Every node lists `size` members (itself included), all alive. */
export async function waitForMembers(nodes, size) {
  await waitUntil(
    `all ${size} members alive on every node`,
    async () => {
      const statuses = await Promise.all(nodes.map((node) => node.json('/v1/cluster/status')));
      return statuses.every(
        (status) =>
          status.members.length === size &&
          status.members.every((member) => member.state === 'alive' && !member.left),
      );
    },
    aliveTimeoutMs,
  );
}

/** The node's own version vector (origin → highest contiguous seq applied). */
export async function revisionOf(node) {
  const status = await node.json('/v1/cluster/status');
  return status.members.find((member) => member.self).revision;
}

export function sameRevision(a, b) {
  const origins = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const origin of origins) if ((a[origin] ?? 0) !== (b[origin] ?? 0)) return false;
  return true;
}

export function revisionTotal(revision) {
  return Object.values(revision).reduce((total, seq) => total + seq, 0);
}

/**
 * Polls every node's digest until they are all equal or `timeoutMs` passes. Returns
 * `{ equal, ms, digests }`; never throws on a timeout (a benchmark reports, it does not fail).
 */
export async function waitForEqualDigests(nodes, timeoutMs, pollMs = 200) {
  const started = performance.now();
  let digests = [];
  for (;;) {
    digests = (await Promise.all(nodes.map((node) => node.json('/v1/admin/digest')))).map(
      (answer) => answer.digest,
    );
    const ms = performance.now() - started;
    if (digests.every((digest) => digest === digests[0])) return { equal: true, ms, digests };
    if (ms > timeoutMs) return { equal: false, ms, digests };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The cluster counters of `/v1/cluster/status`, summed over the nodes. */
export async function clusterCounters(nodes) {
  const statuses = await Promise.all(nodes.map((node) => node.json('/v1/cluster/status')));
  const total = { messagesSent: {}, bytesSent: 0, bytesReceived: 0, framesSent: 0 };
  for (const { counters } of statuses) {
    for (const [name, value] of Object.entries(counters)) {
      if (typeof value === 'number') total[name] = (total[name] ?? 0) + value;
    }
    for (const [type, count] of Object.entries(counters.messagesSent ?? {}))
      total.messagesSent[type] = (total.messagesSent[type] ?? 0) + count;
    total.bytesSent += counters.bytes?.sent ?? 0;
    total.bytesReceived += counters.bytes?.received ?? 0;
    total.framesSent += counters.frames?.sent ?? 0;
  }
  return total;
}

/** `after − before` of two `clusterCounters` results. */
export function counterDelta(before, after) {
  const delta = { messagesSent: {} };
  for (const [name, value] of Object.entries(after)) {
    if (typeof value === 'number') delta[name] = value - (before[name] ?? 0);
  }
  for (const [type, count] of Object.entries(after.messagesSent))
    delta.messagesSent[type] = count - (before.messagesSent[type] ?? 0);
  return delta;
}
