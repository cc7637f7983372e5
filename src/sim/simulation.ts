import type { CommitId } from '../core/ids.js';
import { type DelaySamples, digestOf, percentiles, type RunFigures, trafficFigures } from './figures.js';
import { Network } from './network.js';
import { type Acknowledged, epochMs, SimNode, type StorageFactory } from './node.js';
import { Prng } from './prng.js';
import type { Fault, Plan } from './scenario.js';
import { Scheduler } from './scheduler.js';
import { SimStorage } from './storage.js';
import { keySpace } from './workload.js';

export type { StorageFactory };

/** How often the end of a run checks whether the nodes agree. */
const convergeCheckMs = 100;
/** After the digests agree, run this much longer: a late duplicate, a second apply or a sync loop would show. */
const settleMs = 2_000;
/** Last few notable events, printed with a failure. */
const traceLines = 40;

export class SimulationFailure extends Error {
  constructor(
    readonly seed: number,
    readonly reason: string,
    replay: string,
    trace: string[],
  ) {
    super(`seed ${seed}: ${reason}\n  replay: ${replay}\n  last events:\n    ${trace.join('\n    ')}`);
  }
}

export interface RunResult {
  figures: RunFigures;
  /** Every replication delay sample (healthy periods only). */
  delays: DelaySamples;
}

/**
 * Runs the real cluster protocol (`Replica`) of `plan.nodes` nodes under virtual time, a virtual
 * network and in-memory disks, all driven by one seed, then checks what DESIGN §5 promises: after
 * the heal every node has the same digest, no acknowledged commit is lost, every commit was
 * applied exactly once per node, and the cluster falls quiet. Any failure throws a
 * SimulationFailure naming the seed.
 */
export class Simulation {
  private readonly scheduler = new Scheduler();
  private readonly prng: Prng;
  private readonly workloadPrng: Prng;
  private readonly network: Network;
  private readonly nodes: SimNode[];
  private readonly acknowledged = new Map<CommitId, Acknowledged>();
  private readonly delays: DelaySamples = { all: [], inline: [], pulled: [] };
  private readonly trace: string[] = [];
  private readonly keys: Array<[string, string]>;
  private activeFaults = 0;
  private crashes = 0;
  private partitions = 0;
  private failure: string | undefined;

  constructor(
    private readonly plan: Plan,
    makeStorage: StorageFactory = (options) => new SimStorage(options),
  ) {
    this.prng = Prng.seeded(plan.seed);
    const networkPrng = this.prng.fork();
    this.workloadPrng = this.prng.fork();
    this.keys = keySpace(plan.workload);
    const context = {
      plan,
      scheduler: this.scheduler,
      network: () => this.network,
      acknowledged: this.acknowledged,
      healthy: () => this.activeFaults === 0 && this.nodes.every((node) => node.up),
      delay: (ms: number, pulled: boolean) => {
        this.delays.all.push(ms);
        (pulled ? this.delays.pulled : this.delays.inline).push(ms);
      },
      note: (line: string) => this.note(line),
      fail: (reason: string) => {
        this.failure ??= reason;
      },
      failed: () => this.failure !== undefined,
    };
    this.nodes = Array.from(
      { length: plan.nodes },
      (_, index) => new SimNode(index, context, this.prng.fork(), makeStorage),
    );
    this.network = new Network(plan.nodes, { ...plan.network }, this.scheduler, networkPrng, {
      incarnation: (index) => {
        const node = this.node(index);
        return node.up ? node.incarnation : undefined;
      },
      info: (index) => {
        const replica = this.node(index).replica;
        if (!replica) throw new Error(`node-${index} is down`);
        return replica.membership.info();
      },
      nodeId: (index) => this.node(index).id,
      deliver: (index, input) => this.node(index).step(input),
      blob: (index, hash) => this.node(index).storage.blob(hash),
      whenBlobs: (index, hashes, ready) => this.node(index).whenBlobs(hashes, ready),
    });
    for (const node of this.nodes) this.network.register(node.index, node.url, node.id);
  }

  run(): RunResult {
    const { plan } = this;
    for (const [index, at] of plan.joinAt.entries())
      this.scheduler.at(at, () => this.start(this.node(index)));
    this.scheduleWrites();
    for (const fault of plan.faults) this.scheduler.at(fault.at, () => this.inject(fault));
    this.scheduler.at(plan.healAt, () => this.heal());
    let convergedAt: number | undefined;
    const check = () => {
      if (this.converged()) convergedAt = this.scheduler.now;
      else this.scheduler.after(convergeCheckMs, check);
    };
    this.scheduler.at(plan.healAt, check);
    this.advance(plan.healAt + plan.convergeWithinMs, () => convergedAt !== undefined);
    if (convergedAt === undefined)
      throw this.fail(`no convergence ${plan.convergeWithinMs} ms after the heal`, true);
    const syncsAtConvergence = this.nodes.map((node) => node.replica?.sent.sync ?? 0);
    this.advance(convergedAt + settleMs, () => false);
    this.checkQuiet(syncsAtConvergence);
    const digest = this.verify();
    return { figures: this.figures(convergedAt, digest), delays: this.delays };
  }

  /** Runs virtual time on; a failure anywhere (protocol, storage, simulator) ends the run with the seed. */
  private advance(until: number, done: () => boolean): void {
    try {
      this.scheduler.runUntil(until, () => this.failure !== undefined || done());
    } catch (error) {
      this.failure ??= (error as Error).message;
    }
    const failure = this.failure as string | undefined;
    if (failure !== undefined) throw this.fail(failure, true);
  }

  private node(index: number): SimNode {
    return this.nodes[index] as SimNode;
  }

  /** Node 0 starts alone; the others join through node 0; a restarted node through two others. */
  private start(node: SimNode): void {
    const others = this.nodes.filter((other) => other !== node && other.started);
    const seeds = node.incarnation === 0 ? others.filter((other) => other.index === 0) : others;
    node.start(this.prng.sample(seeds, 2).map((seed) => seed.url));
  }

  private scheduleWrites(): void {
    const { plan } = this;
    const prng = this.workloadPrng;
    for (
      let at = plan.writesFrom + prng.exponential(plan.writeGapMs);
      at < plan.healAt;
      at += prng.exponential(plan.writeGapMs)
    ) {
      if (prng.chance(plan.burstShare)) {
        // Concurrent writes to one key on several nodes: they cannot see each other, so they conflict.
        const key = prng.pick(this.keys);
        for (const node of prng.sample(this.nodes, prng.int(2, 3)))
          this.scheduler.at(at + prng.between(0, 10), () => node.write([key]));
      } else {
        const node = prng.pick(this.nodes);
        const keys = prng.sample(this.keys, prng.chance(0.8) ? 1 : prng.int(2, 3));
        this.scheduler.at(at, () => node.write(keys));
      }
    }
  }

  private inject(fault: Fault): void {
    switch (fault.kind) {
      case 'partition':
        this.activeFaults += 1;
        this.partitions += 1;
        this.network.partition(fault.groups);
        this.note(`partition ${JSON.stringify(fault.groups)}`);
        this.scheduler.after(fault.durationMs, () =>
          this.endFault(() => this.network.partition([this.nodes.map((node) => node.index)])),
        );
        break;
      case 'crash': {
        const node = this.node(fault.node);
        if (!node.up) return;
        this.activeFaults += 1;
        this.crashes += 1;
        node.crash();
        // A crash that lasts past the heal ends with it: the node restarts then.
        const restartAt = this.scheduler.now + fault.downMs;
        if (restartAt < this.plan.healAt)
          this.scheduler.at(restartAt, () => this.endFault(() => this.start(node)));
        break;
      }
      case 'slow':
        this.activeFaults += 1;
        this.network.setSlow(fault.a, fault.b, fault.bytesPerMs);
        this.note(`slow link node-${fault.a} ↔ node-${fault.b} at ${Math.round(fault.bytesPerMs)} B/ms`);
        break;
    }
  }

  private endFault(end: () => void): void {
    if (this.scheduler.now >= this.plan.healAt) return;
    this.activeFaults -= 1;
    end();
  }

  /** Writes have stopped; partitions and slow links end, crashed nodes restart, loss stops (fault scenario). */
  private heal(): void {
    this.note('heal');
    this.network.heal();
    if (!this.plan.wan) this.network.setLoss(0, 0);
    for (const node of this.nodes) if (!node.up) this.start(node);
    this.activeFaults = 0;
  }

  private converged(): boolean {
    for (const node of this.nodes) {
      const replica = node.replica;
      if (!node.up || !replica || !node.storage.settled()) return false;
      if (replica.delivery.pendingCount() > 0 || replica.delivery.scheduledCount() > 0) return false;
    }
    const revisions = this.nodes.map((node) => JSON.stringify(sortedVector(node.storage.revision())));
    if (revisions.some((revision) => revision !== revisions[0])) return false;
    const digests = this.nodes.map((node) => digestOf(node.storage, this.readPoint()));
    return digests.every((digest) => digest === digests[0]);
  }

  /**
   * Once every node holds the same commits and nothing is written, anti-entropy has nothing to do:
   * a node asks one random neighbour per round and nobody is ahead, so no one asks back. A node that
   * keeps asking is in a sync loop (the cluster never quiesces).
   */
  private checkQuiet(syncsAtConvergence: number[]): void {
    const rounds = Math.ceil(settleMs / (this.nodes[0]?.replica?.timing.antiEntropyIntervalMs ?? 1000));
    const allowed = 3 * rounds + 3;
    for (const [index, node] of this.nodes.entries()) {
      const syncs = (node.replica?.sent.sync ?? 0) - (syncsAtConvergence[index] ?? 0);
      if (syncs > allowed)
        throw this.fail(
          `${node.name} sent ${syncs} sync requests in the ${settleMs} ms after convergence ` +
            `(anti-entropy needs about ${rounds}, at most ${allowed} allowed): the cluster does not quiesce`,
          true,
        );
    }
  }

  /** The promises of DESIGN §5 and principle 4; returns the common digest. */
  private verify(): string {
    const digests = this.nodes.map((node) => digestOf(node.storage, this.readPoint()));
    const differing = this.nodes.filter((_, index) => digests[index] !== digests[0]);
    if (differing.length > 0)
      throw this.fail(
        `digests differ after convergence: ${differing.map((node) => node.name).join(', ')}`,
        true,
      );
    for (const node of this.nodes) {
      for (const id of this.acknowledged.keys())
        if (!node.storage.hasCommit(id) || !node.storage.envelope(id))
          throw this.fail(`${node.name} lacks acknowledged commit ${id}`, true);
      const inLog = new Set<CommitId>();
      for (const entry of node.storage.entries()) {
        if (inLog.has(entry.id)) throw this.fail(`${node.name} holds ${entry.id} twice`);
        inLog.add(entry.id);
        if (!entry.local && !node.applied.has(entry.id))
          throw this.fail(`${node.name} holds ${entry.id} that the protocol never handed out`);
        if (!this.acknowledged.has(entry.id))
          throw this.fail(`${node.name} holds unacknowledged commit ${entry.id}`);
      }
      for (const id of node.applied)
        if (!inLog.has(id)) throw this.fail(`${node.name} applied ${id} but its log does not hold it`, true);
    }
    return digests[0] as string;
  }

  /** Late enough that every future-dated write has taken effect: one read point for every node. */
  private readPoint(): number {
    return epochMs + this.plan.healAt + 10_000;
  }

  private figures(convergedAt: number, digest: string): RunFigures {
    const commits = this.acknowledged.size;
    return {
      seed: this.plan.seed,
      nodes: this.plan.nodes,
      commits,
      virtualMs: Math.round(this.scheduler.now),
      convergenceMs: Math.round(convergedAt - this.plan.healAt),
      ...trafficFigures(this.network.figures, commits, this.plan.nodes),
      delay: percentiles(this.delays.all),
      delayInline: percentiles(this.delays.inline),
      delayPulled: percentiles(this.delays.pulled),
      crashes: this.crashes,
      partitions: this.partitions,
      digest,
      events: this.scheduler.executed,
    };
  }

  private note(line: string): void {
    this.trace.push(`${Math.round(this.scheduler.now)} ms ${line}`);
    if (this.trace.length > traceLines) this.trace.shift();
  }

  private fail(reason: string, withState = false): SimulationFailure {
    const state = withState ? this.nodes.map((node) => this.describe(node)) : [];
    const { seed, nodes, wan, writeMs } = this.plan;
    const replay = `npm run sim -- --seed ${seed} --nodes ${nodes}${wan ? ' --wan' : ''} --write-ms ${writeMs}`;
    return new SimulationFailure(this.plan.seed, reason, replay, [...this.trace, ...state]);
  }

  private describe(node: SimNode): string {
    const replica = node.replica;
    const name = (id: string) => this.nodes.find((other) => other.id === id)?.name ?? id;
    const links = replica ? [...replica.membership.links.keys()].map(name).join(',') : '-';
    const backlog = replica ? `${replica.delivery.pendingCount()}/${replica.delivery.scheduledCount()}` : '-';
    return (
      `${node.name} up=${node.up} log=${node.storage.entries().length} ` +
      `revision=${JSON.stringify(sortedVector(node.storage.revision()))} links=[${links}] pending/applying=${backlog}`
    );
  }
}

function sortedVector(vector: Record<string, number>): Array<[string, number]> {
  return Object.entries(vector).sort(([a], [b]) => (a < b ? -1 : 1));
}
