import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/sim/prng.js';
import { clusterAdminToken as adminToken, clusterAuth as auth, clusterKey } from '../support/cluster.js';
import {
  cleanUpProcesses,
  type StrataServer,
  startServer,
  temporaryDirectory,
  waitFor,
} from '../support/process.js';

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

interface Node {
  name: string;
  url: string;
  port: number;
  dataDir: string;
  pid: number;
  join: string[];
  pool: Pool;
  up: boolean;
  kill9(): Promise<void>;
}

function clusterArguments(name: string, join: string[]): string[] {
  return ['--cluster-key', clusterKey, '--node-name', name, ...join.flatMap((url) => ['--join', url])];
}

function poolOf(url: string): Pool {
  return new Pool(url, {
    connections: writerCount,
    headersTimeout: requestTimeoutMs,
    bodyTimeout: requestTimeoutMs,
  });
}

function fromServer(server: StrataServer, name: string, join: string[]): Node {
  return {
    name,
    url: server.url,
    port: server.port,
    dataDir: server.dataDir,
    pid: server.pid,
    join,
    pool: poolOf(server.url),
    up: true,
    kill9: async () => {
      await server.kill9();
    },
  };
}

/** `strata serve` as cluster node `name`, joining `join`; on `port` when given, else on a free one. */
async function serveNode(name: string, join: string[], dataDir: string, port?: number): Promise<Node> {
  const server = await startServer({
    dataDir,
    adminToken,
    port,
    extraArguments: clusterArguments(name, join),
  });
  return fromServer(server, name, join);
}

/** `strata serve` again on the node's data directory and port (a restart must keep the node's URL). */
async function restartOnPort(node: Node): Promise<Node> {
  return serveNode(node.name, node.join, node.dataDir, node.port);
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
    private readonly nodes: Node[],
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
        .map((offset) => this.nodes[(home + offset) % this.nodes.length] as Node)
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

async function getJson<T>(node: Node, path: string): Promise<T> {
  const response = await node.pool.request({ method: 'GET', path, headers: auth });
  const text = await response.body.text();
  if (response.statusCode !== 200)
    throw new Error(`GET ${path} on ${node.name}: HTTP ${response.statusCode}`);
  return JSON.parse(text) as T;
}

async function digests(nodes: Node[]): Promise<string[]> {
  return Promise.all(
    nodes.map(async (node) => (await getJson<{ digest: string }>(node, '/v1/admin/digest')).digest),
  );
}

/** Each node's revision (by origin name), links and backlog, in one line per node. */
async function standings(nodes: Node[]): Promise<string[]> {
  const statuses = await Promise.all(
    nodes.map((node) =>
      getJson<{
        node: string;
        members: Array<{
          id: string;
          name: string;
          self: boolean;
          linked: boolean;
          state: string;
          revision: Record<string, number>;
        }>;
        counters: { pending: number; applying: number };
      }>(node, '/v1/cluster/status'),
    ),
  );
  const names = new Map<string, string>();
  for (const status of statuses) for (const member of status.members) names.set(member.id, member.name);
  return statuses.map((status) => {
    const self = status.members.find((member) => member.self);
    const revision = Object.entries(self?.revision ?? {})
      .map(([origin, seq]) => `${names.get(origin) ?? origin}:${seq}`)
      .sort()
      .join(',');
    const peers = status.members
      .filter((member) => !member.self)
      .map((member) => `${member.name}${member.linked ? '=' : '/'}${member.state}`)
      .join(',');
    return `${self?.name} [${revision}] links ${peers} pending ${status.counters.pending}+${status.counters.applying}`;
  });
}

/** Reads every write at its version from `node`; returns one line per write that is missing or differs. */
async function readBack(node: Node, writes: Write[]): Promise<string[]> {
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
    await cleanUpProcesses();
  });

  it('loses no acknowledged write when a node is killed mid-stream and restarted', {
    timeout: 150_000,
  }, async () => {
    const seed = Number(process.env.STRATA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`cluster crash seed ${seed} (rerun with STRATA_TEST_SEED=${seed})`);
    const start = (name: string, join: string[]) =>
      serveNode(name, join, temporaryDirectory(`strata-crash-${name}-`));
    const a = await start('a', []);
    const [b, c] = await Promise.all([start('b', [a.url]), start('c', [a.url])]);
    const nodes = [a, b, c];
    pools.push(...nodes.map((node) => node.pool));
    // Every node sees both others before the writes start.
    await waitFor(
      async () => {
        for (const node of nodes) {
          const status = await getJson<{ members: Array<{ self: boolean; state: string }> }>(
            node,
            '/v1/cluster/status',
          );
          if (status.members.filter((member) => !member.self && member.state === 'alive').length < 2)
            return false;
        }
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'three nodes to see each other alive' },
    );

    const workload = new Workload(nodes, seed);
    const started = performance.now();
    workload.start();
    const beforeKill = await workload.phase(acknowledgedPerPhase);
    const victim = nodes[1] as Node;
    // Kill while the victim's writers have a request out (they write continuously).
    await waitFor(() => (workload.inFlight.get(victim.name) ?? 0) > 0, {
      timeoutMs: 5_000,
      intervalMs: 1,
      what: `a write in flight to ${victim.name}`,
    });
    const inFlightAtKill = workload.inFlight.get(victim.name) ?? 0;
    const acknowledgedByVictim = workload.acknowledged.filter((write) => write.node === victim.name).length;
    victim.up = false;
    await victim.kill9();
    const killedAt = performance.now();
    // What the victim acknowledged but its peers did not hold yet when it died: only its own
    // log has those, so they come back only if the restarted node hands them out.
    const victimWrites = workload.acknowledged.filter((write) => write.node === victim.name);
    const notYetReplicated = (await readBack(a, victimWrites)).length;
    const whileDown = await workload.phase(acknowledgedPerPhase);

    const restartFrom = workload.acknowledged.length;
    const back = await restartOnPort(victim);
    pools.push(back.pool);
    nodes[1] = back;
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

    const settleStarted = performance.now();
    // Where each node stands while the cluster settles, to explain a slow or failed convergence.
    const trace: string[] = [];
    let traced = 0;
    try {
      await waitFor(
        async () => {
          const last = await digests(nodes);
          const seconds = (performance.now() - settleStarted) / 1000;
          if (seconds >= traced) {
            traced += 1;
            trace.push(`  ${seconds.toFixed(1)} s: ${(await standings(nodes)).join('; ')}`);
          }
          return last.every((digest) => digest === last[0]);
        },
        { timeoutMs: convergeTimeoutMs, intervalMs: 250, what: 'equal digests on the three nodes' },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${trace.join('\n')}`);
    }
    const settleMs = performance.now() - settleStarted;
    if (settleMs > 5_000) console.log(`slow convergence (${Math.round(settleMs)} ms):\n${trace.join('\n')}`);
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
    const final = await digests(nodes);
    expect(new Set(final).size).toBe(1);
    const statuses = await Promise.all(
      nodes.map((node) =>
        getJson<{
          members: Array<{ self: boolean; revision: Record<string, number> }>;
          counters: Record<string, unknown>;
        }>(node, '/v1/cluster/status'),
      ),
    );
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
  });
});
