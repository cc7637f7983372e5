import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClusterNode,
  cleanUpCluster,
  faultCounters,
  memberNamed,
  startCluster,
  waitForConvergence,
  waitForMembership,
  waitWithDetail,
} from '../support/cluster.js';

/**
 * A partition and its healing (DESIGN §5, simulator invariants, here with real processes): five nodes
 * behind fault proxies are cut into {A, B} and {C, D, E}. Both sides keep taking writes, some to the
 * same keys. After the proxies heal, every node must have the same digest, every acknowledged write
 * must be readable everywhere, and the keys written on both sides must show the same winner and the
 * same conflicts on every node.
 */

const left = ['A', 'B'] as const;
const right = ['C', 'D', 'E'] as const;
const bucket = 'partition';
/** Written on A and on C during the partition; k1–k3 also existed before it, k4–k5 did not. */
const contested = ['k1', 'k2', 'k3', 'k4', 'k5'];
const existingBefore = ['k1', 'k2', 'k3'];
/** Keys only one node writes during the partition. */
const distinct: Record<string, string[]> = {
  A: ['a-1', 'a-2'],
  B: ['b-1'],
  C: ['c-1'],
  D: ['d-1', 'd-2'],
  E: ['e-1'],
};
/**
 * Bounds, generous for two loaded cores. Detecting the cut takes 3 s (suspect) to 4 s (link dropped);
 * after the heal, a side that only suspects the other waits until it declares it dead (10 s) before it
 * probes it (every 2 s), then anti-entropy pulls the rest in one batch.
 */
const detectTimeoutMs = 30_000;
const sideConvergeTimeoutMs = 20_000;
const healConvergeTimeoutMs = 45_000;

interface Acknowledged {
  writer: string;
  key: string;
  version: string;
  body: string;
}

afterEach(cleanUpCluster);

describe('a partitioned cluster of five', () => {
  it('takes writes on both sides and converges after the heal, conflicts identical everywhere', async () => {
    const startedAt = performance.now();
    const cluster = await startCluster({ nodes: [...left, ...right], proxied: true });
    console.log(`five nodes started and linked in ${Math.round(performance.now() - startedAt)} ms`);
    const named = (name: string): ClusterNode => {
      const node = cluster.find((candidate) => candidate.name === name);
      if (!node) throw new Error(`no node ${name}`);
      return node;
    };
    const leftNodes = left.map(named);
    const rightNodes = right.map(named);
    const acknowledged: Acknowledged[] = [];
    const write = async (writer: string, key: string, body: string) => {
      const { version } = await named(writer).put(bucket, key, body);
      acknowledged.push({ writer, key, version, body });
      return version;
    };

    for (const key of existingBefore) await write('A', key, `${key} before the partition`);
    await waitForConvergence(cluster, sideConvergeTimeoutMs);

    // The cut: every proxy drops the callers of the other side, both ways, like a firewall DROP.
    for (const node of leftNodes) node.proxy?.block([...right]);
    for (const node of rightNodes) node.proxy?.block([...left]);
    const cutAt = performance.now();
    let view = '';
    await waitWithDetail(
      async () => {
        const pairs = await Promise.all(
          cluster.map(async (node) => {
            const status = await node.status();
            const others = (left as readonly string[]).includes(node.name) ? right : left;
            return others.map((other) => {
              const row = memberNamed(status, other);
              return { node: node.name, other, state: row?.state, linked: row?.linked };
            });
          }),
        );
        const rows = pairs.flat();
        view = rows
          .map((row) => `${row.node} sees ${row.other} ${row.state}${row.linked ? ' linked' : ''}`)
          .join(', ');
        return rows.every((row) => row.state !== 'alive' && row.linked === false);
      },
      { timeoutMs: detectTimeoutMs, what: 'each side sees the other as not alive and unlinked' },
      () => view,
    );
    console.log(`partition detected ${Math.round(performance.now() - cutAt)} ms after the cut: ${view}`);

    // Both sides take writes: the contested keys on A and on C, and keys of their own everywhere.
    const contestedVersions = new Map<string, { A: string; C: string }>();
    for (const [index, key] of contested.entries()) {
      // Alternate which side writes first, so that neither side's write is always the later one.
      const order = index % 2 === 0 ? (['A', 'C'] as const) : (['C', 'A'] as const);
      const versions: Record<string, string> = {};
      for (const writer of order) versions[writer] = await write(writer, key, `${key} written on ${writer}`);
      contestedVersions.set(key, { A: versions.A as string, C: versions.C as string });
    }
    for (const [writer, keys] of Object.entries(distinct))
      for (const key of keys) await write(writer, key, `${key} written on ${writer} during the partition`);

    // Each side converges on its own, and the two sides differ: the cut is real.
    const leftSide = await waitForConvergence(leftNodes, sideConvergeTimeoutMs);
    const rightSide = await waitForConvergence(rightNodes, sideConvergeTimeoutMs);
    expect(leftSide.digest).not.toBe(rightSide.digest);
    const stillCut = await Promise.all(cluster.map((node) => node.status()));
    for (const [index, status] of stillCut.entries()) {
      const node = cluster[index] as ClusterNode;
      const others = (left as readonly string[]).includes(node.name) ? right : left;
      for (const other of others)
        expect(memberNamed(status, other)?.linked, `${node.name}–${other}`).toBe(false);
    }

    for (const node of cluster) node.proxy?.heal();
    const healedAt = performance.now();
    const healed = await waitForConvergence(cluster, healConvergeTimeoutMs);
    const convergeMs = Math.round(performance.now() - healedAt);
    console.log(
      `converged ${convergeMs} ms after the heal (${Math.round(healedAt - cutAt)} ms after the cut), ` +
        `digest ${healed.digest.slice(0, 16)}…, ${acknowledged.length} acknowledged writes`,
    );
    await waitForMembership(cluster, healConvergeTimeoutMs);
    console.log(`membership whole again ${Math.round(performance.now() - healedAt)} ms after the heal`);

    // Identical digests (waitForConvergence) and every acknowledged write readable, byte for byte.
    const digests = await Promise.all(cluster.map((node) => node.digest()));
    expect(new Set(digests).size).toBe(1);
    for (const node of cluster) {
      for (const write of acknowledged) {
        const read = await node.get(bucket, write.key, { version: write.version });
        expect(read.statusCode, `${write.version} of ${write.key} on ${node.name}`).toBe(200);
        expect(read.body.toString()).toBe(write.body);
      }
    }

    // The contested keys: the same winner and the same conflicts everywhere, and they are exactly
    // the two versions written apart (the version from before the partition is an ancestor of both).
    const bodyOf = new Map(acknowledged.map((write) => [write.version, write.body]));
    const resolutions: string[] = [];
    for (const key of contested) {
      const reads = await Promise.all(cluster.map((node) => node.get(bucket, key)));
      const first = reads[0];
      if (!first) throw new Error('no reads');
      for (const [index, read] of reads.entries()) {
        const name = cluster[index]?.name;
        expect(read.statusCode, `${key} on ${name}`).toBe(200);
        expect({ winner: read.version, conflicts: read.conflicts }, `${key} on ${name}`).toEqual({
          winner: first.version,
          conflicts: first.conflicts,
        });
        expect(read.body.toString()).toBe(bodyOf.get(first.version ?? ''));
      }
      expect(first.conflicts.length, `${key} reports its conflict`).toBeGreaterThan(0);
      const versions = contestedVersions.get(key);
      expect(new Set([first.version, ...first.conflicts])).toEqual(new Set([versions?.A, versions?.C]));
      resolutions.push(`${key}: ${first.version === versions?.A ? 'A' : 'C'} wins`);
    }
    console.log(`contested keys, identical on all five nodes: ${resolutions.join(', ')}`);

    for (const [index, status] of (await Promise.all(cluster.map((node) => node.status()))).entries()) {
      const name = cluster[index]?.name;
      expect(faultCounters(status), `${name}`).toEqual({
        invalid: 0,
        applyFailed: 0,
        pendingDropped: 0,
        blobPullsFailed: 0,
      });
      console.log(
        `${name}: syncRequests ${status.counters.syncRequests}, commitsPulled ${status.counters.commitsPulled}, ` +
          `gossipReceived ${status.counters.gossipReceived}, refused ${JSON.stringify(status.counters.refused)}`,
      );
    }

    // Keys written on one side only have no conflict anywhere.
    for (const [writer, keys] of Object.entries(distinct)) {
      for (const key of keys) {
        for (const node of cluster) {
          const read = await node.get(bucket, key);
          expect(read.statusCode).toBe(200);
          expect(read.conflicts, `${key} on ${node.name}`).toEqual([]);
          expect(read.body.toString()).toBe(`${key} written on ${writer} during the partition`);
        }
      }
    }
  }, 60_000);
});
