import { createHash } from 'node:crypto';
import type { ClusterInput, ClusterOutput } from '../cluster/protocol.js';
import { Replica } from '../cluster/replica.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Network } from './network.js';
import type { Prng } from './prng.js';
import type { Plan } from './scenario.js';
import type { Scheduler } from './scheduler.js';
import type { LogEntry, SimStorage, SimStorageOptions } from './storage.js';
import { LocalWriter } from './workload.js';

/** Virtual time 0 on every node's clock (before its offset): 2026-01-01. */
export const epochMs = 1_767_225_600_000;

export type StorageFactory = (options: SimStorageOptions, node: number) => SimStorage;

export interface Acknowledged {
  origin: number;
  at: number;
  /** Acknowledged with no fault active: counts towards the replication delay figures. */
  healthy: boolean;
  /** Names a blob too large to ride inline: each receiver pulls it before applying. */
  pulled: boolean;
}

/** What a node shares with the rest of the run. */
export interface NodeContext {
  readonly plan: Plan;
  readonly scheduler: Scheduler;
  network(): Network;
  /** Every acknowledged commit of the run, by id. */
  readonly acknowledged: Map<CommitId, Acknowledged>;
  healthy(): boolean;
  delay(ms: number, pulled: boolean): void;
  note(line: string): void;
  /** Records the first failure; the run stops at the next event. */
  fail(reason: string): void;
  failed(): boolean;
}

/**
 * One simulated server: its disk survives crashes, its protocol state does not. It plays the part
 * of the server's adapter (`cluster-service.ts`): ticks the Replica, feeds it what happens and
 * carries out what it returns, against the virtual network and the in-memory store. After every
 * step it checks the protocol's own invariants (STYLE §13).
 */
export class SimNode {
  readonly id: NodeId;
  readonly name: string;
  /** parsePeerMessage takes http(s) URLs only; the `.sim` host names no real machine. */
  readonly url: string;
  readonly storage: SimStorage;
  readonly offsetMs: number;
  incarnation = 0;
  up = false;
  started = false;
  replica: Replica | undefined;
  private writer: LocalWriter | undefined;
  /** Commit id → handed out with `apply` and kept (a crash forgets what it lost). */
  readonly applied = new Set<CommitId>();
  /** Blob hash → peers' pulls waiting for this node's own pull of it to end. */
  private readonly arriving = new Map<string, Array<() => void>>();

  constructor(
    readonly index: number,
    private readonly context: NodeContext,
    private readonly random: Prng,
    makeStorage: StorageFactory,
  ) {
    const { plan } = context;
    this.id = createHash('sha256')
      .update(`sim ${plan.seed} node ${index}`)
      .digest('hex')
      .slice(0, 16) as NodeId;
    this.name = `node-${index}`;
    this.url = `http://node-${index}.sim`;
    this.offsetMs = random.between(-plan.clockSkewMs, plan.clockSkewMs);
    this.storage = makeStorage(
      {
        self: this.id,
        inlineBytesMax: plan.workload.inlineBytesMax,
        fsync: (done) => context.scheduler.after(this.fsyncMs(), done),
        durable: (entries) => this.durable(entries),
      },
      index,
    );
  }

  /** Starts (or restarts) the node: a new Replica over what its disk kept, a bumped incarnation. */
  start(joinUrls: string[]): void {
    const { plan, scheduler } = this.context;
    this.incarnation += 1;
    this.up = true;
    this.started = true;
    const clock = { now: () => epochMs + Math.floor(scheduler.now + this.offsetMs) };
    const replica = new Replica({
      self: { id: this.id, name: this.name, url: this.url, incarnation: this.incarnation },
      storage: this.storage,
      now: clock.now,
      random: () => this.random.float(),
      timing: plan.timing,
    });
    this.replica = replica;
    this.writer = new LocalWriter(this.id, this.storage, clock, plan.workload);
    this.context.note(`${this.name} starts (incarnation ${this.incarnation})`);
    const incarnation = this.incarnation;
    const tick = () => {
      if (!this.up || this.incarnation !== incarnation) return;
      this.step({ type: 'tick' });
      scheduler.after(replica.timing.tickIntervalMs, tick);
    };
    scheduler.after(this.random.between(0, replica.timing.tickIntervalMs), tick);
    if (joinUrls.length > 0) this.step({ type: 'join', urls: joinUrls });
  }

  /** Power loss: protocol state and the unsynced tail of the log are gone. */
  crash(): void {
    if (!this.up) return;
    this.up = false;
    this.replica = undefined;
    this.writer = undefined;
    this.context.network().crash(this.index);
    // The waiting pulls are answered now; they find the node down and fail.
    this.settle([...this.arriving.keys()]);
    for (const entry of this.storage.crash()) {
      if (entry.local && this.context.acknowledged.has(entry.id))
        this.context.fail(`${this.name} lost acknowledged commit ${entry.id} in a crash`);
      if (!entry.local) this.applied.delete(entry.id);
    }
    this.context.note(`${this.name} crashes`);
  }

  step(input: ClusterInput): void {
    if (this.context.failed() || !this.up || !this.replica) return;
    try {
      const outputs = this.replica.step(input);
      this.replica.checkInvariants();
      for (const output of outputs) this.carryOut(output);
    } catch (error) {
      const what = input.type === 'message' ? `message ${input.message.type}` : input.type;
      this.context.fail(`${this.name} on ${what}: ${(error as Error).message}`);
    }
  }

  /** A local write, as a client's PUT would make it. */
  write(keys: Array<[string, string]>): void {
    if (this.context.failed() || !this.up || !this.writer) return;
    try {
      this.writer.write(this.random, keys);
    } catch (error) {
      this.context.fail(`${this.name} local write: ${(error as Error).message}`);
    }
  }

  private carryOut(output: ClusterOutput): void {
    const network = this.context.network();
    switch (output.type) {
      case 'send':
        network.send(this.index, output.to, output.message);
        break;
      case 'connect':
        network.connect(this.index, output.url);
        break;
      case 'disconnect':
        network.disconnect(this.index, output.peer);
        break;
      case 'apply': {
        const id = output.envelope.id;
        if (this.applied.has(id)) throw new Error(`${id} handed out with apply a second time`);
        if (!this.context.acknowledged.has(id))
          throw new Error(`${id} reached a peer before its origin acknowledged it`);
        this.storage.applyRemote(output.envelope);
        this.applied.add(id);
        this.writer?.observe(output.commit.hlc);
        break;
      }
      case 'fetch_blobs':
        this.fetch(output.from, output.hashes);
        break;
      case 'event':
        if (output.event.type !== 'clock_skew')
          this.context.note(`${this.name}: ${output.event.type} ${output.event.name}`);
        break;
      default: {
        const unreachable: never = output;
        throw new Error(`unknown output ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Calls `ready` once this node's own pulls of `hashes` that are under way have ended. */
  whenBlobs(hashes: string[], ready: () => void): void {
    const queues = hashes.flatMap((hash) => {
      const queue = this.arriving.get(hash);
      return queue ? [queue] : [];
    });
    let left = queues.length;
    if (left === 0) {
      ready();
      return;
    }
    for (const queue of queues)
      queue.push(() => {
        left -= 1;
        if (left === 0) ready();
      });
  }

  private fetch(from: NodeId, hashes: string[]): void {
    const incarnation = this.incarnation;
    const alive = () => this.up && this.incarnation === incarnation;
    for (const hash of hashes) if (!this.arriving.has(hash)) this.arriving.set(hash, []);
    this.context.network().fetchBlobs(this.index, from, hashes, (found, ok) => {
      if (!alive()) return;
      for (const [hash, bytes] of found) this.storage.putBlob(hash, bytes);
      // Each pulled blob is fsync'd before the pull reports (BlobStore.ingest, Store.putBlob).
      this.context.scheduler.after(this.fsyncMs(), () => {
        if (!alive()) return;
        this.settle(hashes);
        this.step({ type: 'blobs_fetched', hashes, ok });
      });
    });
  }

  private settle(hashes: string[]): void {
    for (const hash of hashes) {
      const queue = this.arriving.get(hash);
      this.arriving.delete(hash);
      for (const ready of queue ?? []) ready();
    }
  }

  /** An fsync completed: local commits are acknowledged (then broadcast), remote ones reported applied. */
  private durable(entries: LogEntry[]): void {
    const { acknowledged, scheduler } = this.context;
    for (const entry of entries) {
      if (!this.up) return;
      if (entry.local) {
        const envelope = this.storage.envelope(entry.id);
        if (!envelope) throw new Error(`durable commit ${entry.id} has no envelope`);
        const pulled = entry.commit.ops.some((op) => op.blob !== undefined && !envelope.blobs?.[op.blob]);
        acknowledged.set(entry.id, {
          origin: this.index,
          at: scheduler.now,
          healthy: this.context.healthy(),
          pulled,
        });
        this.step({ type: 'committed', envelope });
      } else {
        const acked = acknowledged.get(entry.id);
        if (acked?.healthy) this.context.delay(scheduler.now - acked.at, acked.pulled);
        this.step({ type: 'applied', id: entry.id });
      }
    }
  }

  private fsyncMs(): number {
    return this.random.between(...this.context.plan.fsyncMs);
  }
}
