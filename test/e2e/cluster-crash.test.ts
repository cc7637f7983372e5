import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/sim/prng.js';
import {
  clusterAuth as auth,
  type ClusterNode,
  cleanUpCluster,
  startCluster,
  waitForConvergence,
} from '../support/cluster.js';
import { waitFor } from '../support/process.js';

/**
 * kill -9 in a cluster (DESIGN §5): three nodes take writes on all of them; one is killed with
 * SIGKILL mid-stream while the other two keep taking writes, then restarted on its data directory
 * and port. Once the cluster settles, every write any node acknowledged must be readable, byte for
 * byte, at its version on every node, and the three digests must be equal: nothing acknowledged is
 * lost, not even what the killed node acknowledged just before it died and had not gossiped yet.
 */

const bucket = 'crash';
/** Writers, spread round-robin over the three nodes (two each). */
const writerCount = 6;
/** Each write phase ends after this many acknowledgements… */
const acknowledgedPerPhase = 300;
/** …or after this long, whichever comes first, so a slow machine still finishes in time. */
const phaseMsMax = 3_000;
/** Values above this go to blob files, which peers pull by hash over HTTP instead of inline. */
const inlineBytesMax = 64 * 1024;
const fileBlobEvery = 12;
/** Keys written by every writer on every node: their versions are concurrent siblings. */
const sharedKeys = 16;
const requestTimeoutMs = 15_000;
/** Generous for a loaded 2-core machine: anti-entropy runs every second, suspicion after 3 s. */
const convergeTimeoutMs = 60_000;
const contentTypes = ['application/octet-stream', 'text/plain; charset=utf-8', 'image/png'];

interface Write {
  key: string;
  version: string;
  body: Buffer;
  contentType: string;
  /** The node that acknowledged it. */
  node: string;
}

/** A node as the writers see it: its own pool (made again when the node restarts), and whether it is up. */
interface Target {
  node: ClusterNode;
  name: string;
  pool: Pool;
  up: boolean;
}

function poolOf(url: string): Pool {
  return new Pool(url, {
    connections: writerCount,
    headersTimeout: requestTimeoutMs,
    bodyTimeout: requestTimeoutMs,
  });
}

/**
 * Writers against the cluster. Each has a home node and falls back to the next node that is up
 * while its home is down. Every 2xx is recorded with the version the node returned.
 */
class Workload {
  readonly acknowledged: Write[] = [];
  /** Failures of writes to a node that was up when they were sent (there must be none). */
  readonly problems: string[] = [];
  /** Writes that failed because their node was killed while they were in flight. */
  cutOff = 0;
  inFlight = new Map<string, number>();
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly nodes: Target[],
    private readonly seed: number,
  ) {}

  start(): void {
    this.running = Promise.all(Array.from({ length: writerCount }, (_, writer) => this.writer(writer))).then(
      () => undefined,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Resolves once `count` more writes are acknowledged, or `phaseMsMax` passed. */
  async phase(count: number): Promise<number> {
    const before = this.acknowledged.length;
    const deadline = performance.now() + phaseMsMax;
    while (this.acknowledged.length - before < count && performance.now() < deadline) await delay(10);
    return this.acknowledged.length - before;
  }

  private async writer(writer: number): Promise<void> {
    const random = seededRandom(this.seed + writer);
    for (let n = 0; !this.stopped; n++) {
      const home = writer % this.nodes.length;
      const node = [0, 1, 2]
        .map((offset) => this.nodes[(home + offset) % this.nodes.length] as Target)
        .find((candidate) => candidate.up);
      if (!node) throw new Error('no node is up');
      const size =
        n % fileBlobEvery === writer % fileBlobEvery
          ? inlineBytesMax + 1 + Math.floor(random() * 96 * 1024)
          : 256 + Math.floor(random() * 8 * 1024);
      const key =
        random() < 0.5 ? `shared/${Math.floor(random() * sharedKeys)}` : `writer-${writer}/${n}.bin`;
      const body = randomBytes(size);
      const contentType = contentTypes[Math.floor(random() * contentTypes.length)] as string;
      this.inFlight.set(node.name, (this.inFlight.get(node.name) ?? 0) + 1);
      const pool = node.pool;
      try {
        const response = await pool.request({
          method: 'PUT',
          path: `/v1/buckets/${bucket}/keys/${key}`,
          headers: { ...auth, 'content-type': contentType },
          body,
        });
        const text = await response.body.text();
        if (response.statusCode === 201) {
          const { version } = JSON.parse(text) as { version: string };
          this.acknowledged.push({ key, version, body, contentType, node: node.name });
        } else {
          this.problems.push(`PUT ${key} on ${node.name}: HTTP ${response.statusCode} ${text}`);
        }
      } catch (error) {
        if (node.up || node.pool !== pool) this.problems.push(`PUT ${key} on ${node.name}: ${error}`);
        else this.cutOff += 1;
      } finally {
        this.inFlight.set(node.name, (this.inFlight.get(node.name) ?? 1) - 1);
      }
    }
  }
}

/** Reads every write at its version from `node`; returns one line per write that is missing or differs. */
async function readBack(node: Target, writes: Write[]): Promise<string[]> {
  const wrong: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: writerCount }, async () => {
      while (next < writes.length) {
        const write = writes[next++] as Write;
        const path = `/v1/buckets/${bucket}/keys/${write.key}?version=${write.version}`;
        const response = await node.pool.request({ method: 'GET', path, headers: auth });
        const body = Buffer.from(await response.body.arrayBuffer());
        const what = `${node.name}: ${write.key} at ${write.version.slice(0, 12)}… (acknowledged by ${write.node})`;
        if (response.statusCode !== 200)
          wrong.push(`${what}: HTTP ${response.statusCode} ${body.toString()}`);
        else if (!body.equals(write.body))
          wrong.push(`${what}: ${body.length} bytes, want ${write.body.length}`);
        else if (response.headers['content-type'] !== write.contentType)
          wrong.push(`${what}: content type ${response.headers['content-type']}, want ${write.contentType}`);
      }
    }),
  );
  return wrong;
}

describe('a three-node cluster under kill -9', () => {
  const pools: Pool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
    await cleanUpCluster();
  });

  it('loses no acknowledged write when a node is killed mid-stream and restarted', {
    timeout: 150_000,
  }, async () => {
    const seed = Number(process.env.STRATA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`cluster crash seed ${seed} (rerun with STRATA_TEST_SEED=${seed})`);
    // Every node sees both others before the writes start.
    const cluster = await startCluster({ nodes: ['a', 'b', 'c'], proxied: false });
    const nodes: Target[] = cluster.map((node) => ({
      node,
      name: node.name,
      pool: poolOf(node.url),
      up: true,
    }));
    pools.push(...nodes.map((node) => node.pool));
    const [a, victim] = nodes as [Target, Target, Target];

    const workload = new Workload(nodes, seed);
    const started = performance.now();
    workload.start();
    const beforeKill = await workload.phase(acknowledgedPerPhase);
    // Kill while the victim's writers have a request out (they write continuously).
    await waitFor(() => (workload.inFlight.get(victim.name) ?? 0) > 0, {
      timeoutMs: 5_000,
      intervalMs: 1,
      what: `a write in flight to ${victim.name}`,
    });
    const inFlightAtKill = workload.inFlight.get(victim.name) ?? 0;
    const acknowledgedByVictim = workload.acknowledged.filter((write) => write.node === victim.name).length;
    victim.up = false;
    await victim.node.kill9();
    const killedAt = performance.now();
    // What the victim acknowledged but its peers did not hold yet when it died: only its own
    // log has those, so they come back only if the restarted node hands them out.
    const victimWrites = workload.acknowledged.filter((write) => write.node === victim.name);
    const notYetReplicated = (await readBack(a, victimWrites)).length;
    const whileDown = await workload.phase(acknowledgedPerPhase);

    const restartFrom = workload.acknowledged.length;
    // Same data directory, port and arguments; a fresh pool, so that a write cut off by the kill is told apart.
    await victim.node.restart();
    victim.pool = poolOf(victim.node.url);
    pools.push(victim.pool);
    victim.up = true;
    const restartMs = performance.now() - killedAt;
    const duringRestart = workload.acknowledged.length - restartFrom;
    const afterRestart = await workload.phase(acknowledgedPerPhase);
    await workload.stop();
    const writeMs = performance.now() - started;

    expect(workload.problems).toEqual([]);
    expect(beforeKill).toBeGreaterThan(0);
    expect(whileDown).toBeGreaterThan(0);
    expect(afterRestart).toBeGreaterThan(0);
    expect(acknowledgedByVictim).toBeGreaterThan(0);
    const acknowledged = workload.acknowledged;
    const byNode = Object.fromEntries(
      nodes.map((node) => [node.name, acknowledged.filter((write) => write.node === node.name).length]),
    );
    const fileBlobs = acknowledged.filter((write) => write.body.length > inlineBytesMax).length;

    const { elapsedMs: settleMs } = await waitForConvergence(cluster, convergeTimeoutMs);
    console.log(
      `${acknowledged.length} writes acknowledged in ${(writeMs / 1000).toFixed(1)} s ` +
        `(${beforeKill} before the kill, ${whileDown + duringRestart} while ${victim.name} was down, ` +
        `${afterRestart} after its restart; by node ${JSON.stringify(byNode)}; ${fileBlobs} over 64 KiB); ` +
        `${inFlightAtKill} in flight to ${victim.name} at the kill, ${workload.cutOff} cut off; ` +
        `${notYetReplicated} of the ${victimWrites.length} writes ${victim.name} acknowledged were not on a ` +
        `yet when it died; ` +
        `${victim.name} back after ${(restartMs / 1000).toFixed(1)} s; digests equal ` +
        `${(settleMs / 1000).toFixed(1)} s after the writes stopped`,
    );

    for (const node of nodes) expect(await readBack(node, acknowledged)).toEqual([]);
    const final = await Promise.all(cluster.map((node) => node.digest()));
    expect(new Set(final).size).toBe(1);
    const statuses = await Promise.all(cluster.map((node) => node.status()));
    for (const [index, status] of statuses.entries()) {
      const { applied, applyFailed, invalid, pendingDropped, commitsPulled, blobsPulled, blobPullsFailed } =
        status.counters;
      console.log(
        `${nodes[index]?.name}: ${JSON.stringify({ applied, applyFailed, invalid, pendingDropped, commitsPulled, blobsPulled, blobPullsFailed })}`,
      );
    }
    const revisions = statuses.map((status) => status.members.find((member) => member.self)?.revision);
    expect(revisions[1]).toEqual(revisions[0]);
    expect(revisions[2]).toEqual(revisions[0]);
    // Real nodes offer batches in their hellos: what one turn sends on a link shares a frame, so
    // every node wrote fewer frames than messages (heartbeats and pings alone go out together).
    for (const status of statuses) {
      const messages = Object.values(status.counters.messagesSent).reduce((sum, count) => sum + count, 0);
      expect(status.counters.frames.sent).toBeGreaterThan(0);
      expect(status.counters.frames.sent).toBeLessThan(messages);
    }
  });
});
