import { describe, expect, it } from 'vitest';
import { type Built, build, MemoryStorage, start } from '../../test/support/replica-storage.js';
import { ManualClock } from '../core/clock.js';
import { type CommitId, type NodeId, versionId } from '../core/ids.js';
import { seededRandom as seeded } from '../sim/prng.js';
import { fullRowEveryHeartbeats } from './membership.js';
import { isBeat, type MemberInfo, type PeerMessage } from './messages.js';
import {
  type ClusterEvent,
  type ClusterInput,
  type ClusterOutput,
  type ClusterTiming,
  defaultTiming,
} from './protocol.js';
import { Replica } from './replica.js';

const urlOf = (id: NodeId) => `http://${id.slice(0, 4)}.test:7070`;
const nodeIds = Array.from({ length: 8 }, (_, index) => `${index + 1}`.repeat(16) as NodeId);
const [A, B, C, D] = nodeIds as [NodeId, NodeId, NodeId, NodeId];

function info(id: NodeId, heartbeat = 1): MemberInfo {
  return {
    id,
    name: `node-${id.slice(0, 4)}`,
    url: urlOf(id),
    incarnation: 1,
    heartbeat,
    signals: { revision: {}, replicationDelayMs: 0, meanResponseMs: 0, errorRate: 0, eager: [], lazy: [] },
  };
}

const sentTo = (outputs: ClusterOutput[], to: NodeId, type: PeerMessage['type']): PeerMessage[] =>
  outputs.flatMap((output) =>
    output.type === 'send' && output.to === to && output.message.type === type ? [output.message] : [],
  );
const appliedIds = (outputs: ClusterOutput[]): CommitId[] =>
  outputs.flatMap((output) => (output.type === 'apply' ? [output.envelope.id] : []));

/** One replica driven by hand, with peers that are only ids. */
class Single {
  readonly clock = new ManualClock(start);
  readonly storage = new MemoryStorage();
  readonly replica: Replica;

  constructor(peers: NodeId[], timing: Partial<ClusterTiming> = {}) {
    this.replica = new Replica({
      self: { id: A, name: 'node-a', url: urlOf(A), incarnation: 1, geo: { lat: 52.5, lon: 13.4 } },
      storage: this.storage,
      now: () => this.clock.now(),
      random: seeded(1),
      serving: () => ({ meanResponseMs: 2.34567, errorRate: 0.012345 }),
      timing,
    });
    for (const peer of peers) this.step({ type: 'link_up', peer: info(peer) });
  }

  step(input: ClusterInput): ClusterOutput[] {
    const outputs = this.replica.step(input);
    this.replica.checkInvariants();
    return outputs;
  }

  message(from: NodeId, message: PeerMessage): ClusterOutput[] {
    return this.step({ type: 'message', from, message });
  }

  tick(ms = this.replica.timing.tickIntervalMs): ClusterOutput[] {
    this.clock.advance(ms);
    return this.step({ type: 'tick' });
  }

  /** Makes a handed-out commit durable and reports it. */
  apply(built: Built): ClusterOutput[] {
    this.storage.add(built.envelope);
    return this.step({ type: 'applied', id: built.id });
  }
}

describe('Replica', () => {
  it('forwards a commit that came by gossip only once applied: whole to eager peers but the sender, by id to lazy ones', () => {
    const node = new Single([B, C, D]);
    node.message(D, { type: 'prune', origin: B });
    const x1 = build(B, 1, { key: 'k' });
    const received = node.message(B, { type: 'gossip', envelope: x1.envelope, round: 2 });
    expect(appliedIds(received)).toEqual([x1.id]);
    expect(received.filter((output) => output.type === 'send' && output.message.type === 'gossip')).toEqual(
      [],
    );
    expect(sentTo(node.tick(), D, 'ihave')).toEqual([]);

    const applied = node.apply(x1);
    expect(sentTo(applied, C, 'gossip')).toEqual([{ type: 'gossip', envelope: x1.envelope, round: 3 }]);
    expect(sentTo(applied, B, 'gossip')).toEqual([]);
    expect(sentTo(applied, D, 'gossip')).toEqual([]);
    expect(sentTo(node.tick(), D, 'ihave')).toEqual([{ type: 'ihave', ids: [x1.id], round: 0 }]);
  });

  it('pushes a commit that waits only for its blob on receipt, and announces it to lazy peers once applied', () => {
    const node = new Single([B, C, D]);
    node.message(D, { type: 'prune', origin: B });
    const x1 = build(B, 1, { key: 'k', blob: Buffer.from('pulled, not inline') });
    const hash = x1.commit.ops[0]?.blob as string;
    const received = node.message(B, { type: 'gossip', envelope: x1.envelope, round: 2 });
    expect(received.filter((output) => output.type === 'fetch_blobs')).toEqual([
      { type: 'fetch_blobs', from: B, hashes: [hash] },
    ]);
    expect(appliedIds(received)).toEqual([]);
    expect(sentTo(received, C, 'gossip')).toEqual([{ type: 'gossip', envelope: x1.envelope, round: 3 }]);
    expect(sentTo(received, B, 'gossip')).toEqual([]);
    // A lazy peer that grafted now would find nothing to take: the announcement waits for the apply.
    expect(sentTo(node.tick(), D, 'ihave')).toEqual([]);

    node.storage.blobs.add(hash);
    expect(appliedIds(node.step({ type: 'blobs_fetched', hashes: [hash], ok: true }))).toEqual([x1.id]);
    const applied = node.apply(x1);
    expect(sentTo(applied, C, 'gossip')).toEqual([]);
    expect(sentTo(node.tick(), D, 'ihave')).toEqual([{ type: 'ihave', ids: [x1.id], round: 0 }]);
  });

  it('does not push on receipt a commit that also waits for another commit, nor one that came by anti-entropy', () => {
    const node = new Single([B, C]);
    const x1 = build(B, 1, { key: 'k' });
    const x2 = build(B, 2, {
      key: 'k',
      parents: [versionId(x1.id, 0)],
      blob: Buffer.from('pulled, not inline'),
    });
    const received = node.message(B, { type: 'gossip', envelope: x2.envelope, round: 0 });
    expect(received.some((output) => output.type === 'fetch_blobs')).toBe(true);
    expect(sentTo(received, C, 'gossip')).toEqual([]);

    const y1 = build(D, 1, { key: 'y', blob: Buffer.from('another pulled blob') });
    const batch = node.message(B, {
      type: 'sync_batch',
      envelopes: [y1.envelope],
      more: false,
      revision: {},
    });
    expect(batch.some((output) => output.type === 'fetch_blobs')).toBe(true);
    expect(sentTo(batch, C, 'gossip')).toEqual([]);
  });

  it('broadcasts a local commit once durable, from round 0', () => {
    const node = new Single([B, C]);
    const a1 = build(A, 1, { key: 'k' });
    node.storage.add(a1.envelope);
    const outputs = node.step({ type: 'committed', envelope: a1.envelope });
    expect(sentTo(outputs, B, 'gossip')).toEqual([{ type: 'gossip', envelope: a1.envelope, round: 0 }]);
    expect(sentTo(outputs, C, 'gossip')).toEqual([{ type: 'gossip', envelope: a1.envelope, round: 0 }]);
    expect(node.replica.sent.gossip).toBe(2);
  });

  it('does not forward what it pulled by anti-entropy', () => {
    const node = new Single([B, C]);
    const x1 = build(B, 1, { key: 'k' });
    node.message(B, { type: 'sync_batch', envelopes: [x1.envelope], more: false, revision: { [B]: 1 } });
    expect(sentTo(node.apply(x1), C, 'gossip')).toEqual([]);
  });

  it("prunes the sender of a duplicate from the origin's tree and stops pushing that origin's commits to it", () => {
    const node = new Single([B, C, D]);
    const x1 = build(B, 1, { key: 'k' });
    node.message(B, { type: 'gossip', envelope: x1.envelope, round: 0 });
    node.apply(x1);
    expect(node.message(C, { type: 'gossip', envelope: x1.envelope, round: 1 })).toEqual([
      { type: 'send', to: C, message: { type: 'prune', origin: B } },
    ]);
    expect(node.replica.plumtree.treeOf(B)).toEqual({ eager: [B, D], lazy: [C] });
    const x2 = build(B, 2, { key: 'k2' });
    node.message(B, { type: 'gossip', envelope: x2.envelope, round: 0 });
    const forwarded = node.apply(x2);
    expect(sentTo(forwarded, C, 'gossip')).toEqual([]);
    expect(sentTo(forwarded, D, 'gossip')).toEqual([{ type: 'gossip', envelope: x2.envelope, round: 1 }]);
    expect(sentTo(node.tick(), C, 'ihave')).toEqual([{ type: 'ihave', ids: [x2.id], round: 0 }]);
    // Another origin's commits still go to C whole: the prune was about B's tree only.
    const a1 = build(A, 1, { key: 'k3' });
    node.storage.add(a1.envelope);
    const outputs = node.step({ type: 'committed', envelope: a1.envelope });
    expect(sentTo(outputs, C, 'gossip')).toEqual([{ type: 'gossip', envelope: a1.envelope, round: 0 }]);
  });

  it('keeps the tree link when the broadcast copy comes after anti-entropy brought the commit', () => {
    const node = new Single([B, C]);
    const x1 = build(B, 1, { key: 'k' });
    node.message(C, { type: 'sync_batch', envelopes: [x1.envelope], more: false, revision: { [B]: 1 } });
    node.apply(x1);
    expect(node.message(B, { type: 'gossip', envelope: x1.envelope, round: 0 })).toEqual([]);
    expect(node.replica.plumtree.eager.has(B)).toBe(true);
  });

  it('grafts an announcer whose commit does not follow, and applies what the graft brings', () => {
    const node = new Single([B, C], { graftTimeoutMs: 400 });
    const x1 = build(B, 1, { key: 'k' });
    node.message(C, { type: 'ihave', ids: [x1.id], round: 0 });
    let graft: PeerMessage[] = [];
    const from = node.clock.now();
    while (graft.length === 0) graft = sentTo(node.tick(), C, 'graft');
    expect(node.clock.now() - from).toBe(400);
    expect(graft).toEqual([{ type: 'graft', ids: [x1.id] }]);
    const answer = node.message(C, { type: 'gossip', envelope: x1.envelope, round: 0 });
    expect(appliedIds(answer)).toEqual([x1.id]);
  });

  it('no graft for an announced commit that came by anti-entropy', () => {
    const node = new Single([B, C], { graftTimeoutMs: 400 });
    const x1 = build(B, 1, { key: 'k' });
    node.message(C, { type: 'ihave', ids: [x1.id], round: 0 });
    node.message(B, { type: 'sync_batch', envelopes: [x1.envelope], more: false, revision: {} });
    node.apply(x1);
    for (let step = 0; step < 50; step += 1) expect(sentTo(node.tick(), C, 'graft')).toEqual([]);
  });

  it('answers a graft with the commit, from its store', () => {
    const node = new Single([B]);
    const a1 = build(A, 1, { key: 'k' });
    node.storage.add(a1.envelope);
    expect(node.message(B, { type: 'graft', ids: [a1.id] })).toEqual([
      { type: 'send', to: B, message: { type: 'gossip', envelope: a1.envelope, round: 0 } },
    ]);
  });

  it('a link that goes down is forgotten by every layer, and what arrives from it is ignored', () => {
    const node = new Single([B, C]);
    node.step({ type: 'link_down', peer: B });
    expect(node.replica.membership.isLinked(B)).toBe(false);
    expect([...node.replica.plumtree.eager]).toEqual([C]);
    const x1 = build(B, 1, { key: 'k' });
    expect(node.message(B, { type: 'gossip', envelope: x1.envelope, round: 0 })).toEqual([]);
    expect(node.message(B, { type: 'sync', revision: {} })).toEqual([]);
    expect(node.replica.delivery.seen(x1.id)).toBe(false);
    // Linked again: a fresh start, and reconciled at once.
    const again = node.step({ type: 'link_up', peer: info(B, 2) });
    expect(sentTo(again, B, 'sync')).toHaveLength(1);
    expect(node.replica.plumtree.eager.has(B)).toBe(true);
  });

  // Regression: a dial that crosses the peer's departure must leave no eager entry without a link.
  it('link_up of a member that has just left leaves no trace in the overlay', () => {
    const node = new Single([C]);
    node.message(C, { type: 'members', members: [info(C, 2), info(B, 3)] });
    const outputs = node.replica.step({ type: 'link_up', peer: { ...info(B, 4), left: true } });
    expect(outputs).toContainEqual({ type: 'disconnect', peer: B });
    expect(node.replica.membership.isLinked(B)).toBe(false);
    expect(() => node.replica.checkInvariants()).not.toThrow();
    expect(node.replica.plumtree.eager.has(B)).toBe(false);
    expect(outputs.filter((output) => output.type === 'send' && output.to === B)).toEqual([]);
  });

  it('ignores a second link_up for a peer it is linked to', () => {
    const node = new Single([B]);
    expect(node.step({ type: 'link_up', peer: info(B, 5) })).toEqual([]);
  });

  it('reports itself first in status, alive, with its revision, geo and serving figures', () => {
    const node = new Single([B]);
    node.storage.add(build(A, 1, { key: 'k' }).envelope);
    node.storage.add(build(A, 2, { key: 'k' }).envelope);
    node.message(B, { type: 'members', members: [info(B, 2), info(C)] });
    const [self, ...others] = node.replica.status();
    expect(self).toMatchObject({
      id: A,
      self: true,
      state: 'alive',
      left: false,
      revision: { [A]: 2 },
      geo: { lat: 52.5, lon: 13.4 },
      meanResponseMs: 2.346,
      errorRate: 0.0123,
      heartbeatAgeMs: 0,
      links: { eager: [B], lazy: [] },
    });
    expect(others.map((row) => [row.id, row.state, row.linked])).toEqual([
      [B, 'alive', true],
      [C, 'alive', false],
    ]);
    expect(others.every((row) => !row.self)).toBe(true);
  });

  it('gossips its signals: revision, replication delay and its links by role', () => {
    const node = new Single([B, C]);
    node.message(C, { type: 'prune', origin: B });
    const x1 = build(B, 1, { key: 'k', wall: start - 250 });
    node.message(B, { type: 'gossip', envelope: x1.envelope, round: 0 });
    node.apply(x1);
    // The full row (with the signals) follows within fullRowEveryHeartbeats heartbeats; beats in between.
    let self: MemberInfo | undefined;
    for (let beat = 0; beat < fullRowEveryHeartbeats && !self; beat += 1) {
      const table = sentTo(node.tick(node.replica.timing.heartbeatIntervalMs), B, 'members')[0];
      const row = table?.type === 'members' ? table.members.find((member) => member.id === A) : undefined;
      if (row && !isBeat(row)) self = row;
    }
    expect(self?.signals).toEqual({
      revision: { [B]: 1 },
      replicationDelayMs: 250,
      meanResponseMs: 2.346,
      errorRate: 0.0123,
      eager: [B],
      lazy: [C],
    });
  });
});

/**
 * A simulated network of replicas (STYLE §5): one manual clock, links that carry messages in order
 * and one tick late, connects that succeed unless the two sides are cut off, stores in memory that
 * apply a tick after the protocol hands a commit out. Link failures and partitions come from a seeded
 * generator; every replica's invariants are checked after every step.
 */
class Network {
  readonly clock = new ManualClock(start);
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly links = new Map<string, number>();
  private generation = 0;
  private inFlight: Array<() => void> = [];
  private readonly cut = new Set<string>();
  readonly violations: string[] = [];
  readonly random: () => number;

  constructor(
    readonly seed: number,
    readonly timing: Partial<ClusterTiming> = {},
  ) {
    this.random = seeded(seed);
  }

  add(id: NodeId, join: NodeId[] = [], incarnation = 1, storage = new MemoryStorage()): SimNode {
    const node: SimNode = {
      id,
      url: urlOf(id),
      storage,
      events: [],
      up: true,
      sent: {},
      replica: new Replica({
        self: { id, name: `node-${id.slice(0, 4)}`, url: urlOf(id), incarnation },
        storage,
        now: () => this.clock.now(),
        random: seeded(this.seed * 31 + Number.parseInt(id.slice(0, 4), 16) + incarnation),
        timing: this.timing,
      }),
    };
    this.nodes.set(id, node);
    if (join.length > 0) this.step(node, { type: 'join', urls: join.map(urlOf) });
    return node;
  }

  step(node: SimNode, input: ClusterInput): void {
    if (!node.up) return;
    const outputs = node.replica.step(input);
    node.replica.checkInvariants();
    for (const output of outputs) this.run(node, output);
  }

  /** A local write: supersedes what this node holds of the key, made durable, then broadcast. */
  write(node: SimNode, key: string): Built {
    const seq = (node.storage.revision()[node.id] ?? 0) + 1;
    const latest = node.storage.latest(key);
    const built = build(node.id, seq, { key, parents: latest ? [latest] : [], wall: this.clock.now() });
    node.storage.add(built.envelope);
    this.step(node, { type: 'committed', envelope: built.envelope });
    return built;
  }

  /** One tick of every node, then what was in flight (what this delivers arrives next round). */
  round(): void {
    this.clock.advance(defaultTiming.tickIntervalMs);
    for (const node of this.nodes.values()) this.step(node, { type: 'tick' });
    const batch = this.inFlight;
    this.inFlight = [];
    for (const deliver of batch) deliver();
  }

  runFor(ms: number, each?: () => void): void {
    const until = this.clock.now() + ms;
    while (this.clock.now() < until) {
      each?.();
      this.round();
    }
  }

  /** Runs until `condition` holds; fails with the seed after `ms` of simulated time. */
  runUntil(condition: () => boolean, ms: number, what: string): number {
    const from = this.clock.now();
    while (!condition()) {
      if (this.clock.now() - from > ms) throw new Error(`seed ${this.seed}: no ${what} after ${ms} ms`);
      this.round();
    }
    return this.clock.now() - from;
  }

  converged(): boolean {
    const logs = [...this.nodes.values()]
      .filter((node) => node.up)
      .map((node) =>
        node.storage.log
          .map((entry) => entry.id)
          .sort()
          .join(),
      );
    return logs.every((log) => log === logs[0]);
  }

  linkCount(): number {
    return this.links.size;
  }

  /** Breaks one random link, as a network failure does (both sides see it close). */
  breakRandomLink(): void {
    const keys = [...this.links.keys()];
    const key = keys[Math.floor(this.random() * keys.length)];
    if (key) this.closeLink(key);
  }

  partition(sides: NodeId[][]): void {
    for (const [index, side] of sides.entries())
      for (const other of sides.slice(index + 1))
        for (const a of side) for (const b of other) this.cut.add(pairKey(a, b));
    for (const key of [...this.links.keys()]) if (this.cut.has(key)) this.closeLink(key);
  }

  heal(): void {
    this.cut.clear();
  }

  /** The node stops at once (a crash): its links close, its store stays. */
  stop(node: SimNode): void {
    node.up = false;
    for (const key of [...this.links.keys()]) if (key.split('|').includes(node.id)) this.closeLink(key);
  }

  private closeLink(key: string): void {
    this.links.delete(key);
    const [a, b] = key.split('|') as [NodeId, NodeId];
    const nodeA = this.nodes.get(a);
    const nodeB = this.nodes.get(b);
    if (nodeA) this.step(nodeA, { type: 'link_down', peer: b });
    if (nodeB) this.step(nodeB, { type: 'link_down', peer: a });
  }

  private run(node: SimNode, output: ClusterOutput): void {
    switch (output.type) {
      case 'send': {
        const key = pairKey(node.id, output.to);
        const generation = this.links.get(key);
        if (generation === undefined) return;
        node.sent[output.message.type] = (node.sent[output.message.type] ?? 0) + 1;
        const target = this.nodes.get(output.to);
        this.inFlight.push(() => {
          if (target && this.links.get(key) === generation)
            this.step(target, { type: 'message', from: node.id, message: output.message });
        });
        break;
      }
      case 'connect':
        this.inFlight.push(() => {
          const target = [...this.nodes.values()].find((other) => other.url === output.url && other.up);
          if (!node.up) return;
          if (!target || this.cut.has(pairKey(node.id, target.id))) {
            this.step(node, { type: 'connect_failed', url: output.url });
            return;
          }
          const key = pairKey(node.id, target.id);
          if (this.links.has(key)) return;
          this.generation += 1;
          this.links.set(key, this.generation);
          this.step(node, { type: 'link_up', peer: target.replica.membership.info() });
          this.step(target, { type: 'link_up', peer: node.replica.membership.info() });
        });
        break;
      case 'disconnect': {
        const key = pairKey(node.id, output.peer);
        if (!this.links.delete(key)) return;
        const target = this.nodes.get(output.peer);
        this.inFlight.push(() => {
          if (target) this.step(target, { type: 'link_down', peer: node.id });
        });
        break;
      }
      case 'apply':
        this.inFlight.push(() => {
          if (!node.up) return;
          try {
            node.storage.add(output.envelope);
          } catch (error) {
            // Here the store refuses only what was handed out too early: a protocol bug.
            this.violations.push(`seed ${this.seed}: ${node.id}: ${(error as Error).message}`);
            this.step(node, { type: 'apply_failed', id: output.envelope.id, reason: 'refused' });
            return;
          }
          this.step(node, { type: 'applied', id: output.envelope.id });
        });
        break;
      case 'fetch_blobs':
        this.inFlight.push(() =>
          this.step(node, { type: 'blobs_fetched', hashes: output.hashes, ok: false }),
        );
        break;
      case 'event':
        node.events.push(output.event);
        break;
    }
  }
}

interface SimNode {
  id: NodeId;
  url: string;
  storage: MemoryStorage;
  replica: Replica;
  events: ClusterEvent[];
  up: boolean;
  /** Messages put on a link, by type. */
  sent: Record<string, number>;
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function cluster(
  size: number,
  seed = 1,
  timing: Partial<ClusterTiming> = {},
): { net: Network; nodes: SimNode[] } {
  const net = new Network(seed, timing);
  const nodes = nodeIds.slice(0, size).map((id, index) => net.add(id, index === 0 ? [] : [A]));
  net.runUntil(
    () => nodes.every((node) => node.replica.status().filter((row) => row.state === 'alive').length === size),
    10_000,
    'full membership',
  );
  return { net, nodes };
}

const gossipSent = (nodes: SimNode[]) => nodes.reduce((sum, node) => sum + (node.sent.gossip ?? 0), 0);

describe('a simulated cluster', () => {
  it('nodes that join through one seed learn of each other and link up to the overlay degree', () => {
    const { net, nodes } = cluster(6);
    net.runFor(3000);
    const degree = defaultTiming.degree;
    for (const node of nodes) {
      const others = nodes.filter((other) => other !== node).map((other) => other.id);
      expect(
        node.events
          .filter((event) => event.type === 'new_neighbor')
          .map((event) => event.member)
          .sort(),
      ).toEqual(others.sort());
      expect(node.replica.membership.links.size).toBeGreaterThanOrEqual(degree);
      expect(node.replica.membership.links.size).toBeLessThanOrEqual(defaultTiming.linksMax);
      expect(node.events.filter((event) => event.type !== 'new_neighbor')).toEqual([]);
    }
    expect(net.violations).toEqual([]);
  });

  it("a commit reaches every node by the broadcast; once its origin's tree is pruned, a commit costs n − 1 pushes", () => {
    const { net, nodes } = cluster(6);
    net.runFor(2000);
    const before = gossipSent(nodes);
    const first = net.write(nodes[2] as SimNode, 'k');
    net.runUntil(() => nodes.every((node) => node.storage.hasCommit(first.id)), 2000, 'broadcast');
    net.runFor(500);
    const firstCost = gossipSent(nodes) - before;
    for (const node of nodes.filter((node) => node !== nodes[2]))
      expect(node.replica.delivery.counters.commitsPulled, 'arrived by gossip, not by anti-entropy').toBe(0);

    const middle = gossipSent(nodes);
    const second = net.write(nodes[2] as SimNode, 'k');
    net.runUntil(() => nodes.every((node) => node.storage.hasCommit(second.id)), 2000, 'broadcast');
    net.runFor(500);
    expect(gossipSent(nodes) - middle).toBe(nodes.length - 1);
    expect(firstCost).toBeGreaterThanOrEqual(nodes.length - 1);
    expect(net.violations).toEqual([]);
  });

  it("every origin's tree settles on the fastest paths from it: in a full mesh, straight to every node", () => {
    const { net, nodes } = cluster(5);
    net.runFor(2000);
    for (const node of nodes) expect(node.replica.membership.links.size).toBe(nodes.length - 1);
    // Each node's first commit prunes the tree of its commits; nodes writing in turn do not undo each other's.
    for (const node of nodes) net.write(node, `first-${node.id}`);
    net.runFor(1000);
    for (const writer of nodes) {
      const before = nodes.map((node) => node.sent.gossip ?? 0);
      const built = net.write(writer, `second-${writer.id}`);
      const elapsedMs = net.runUntil(
        () => nodes.every((node) => node.storage.hasCommit(built.id)),
        2000,
        'broadcast',
      );
      net.runFor(500);
      const pushes = nodes.map((node, index) => (node.sent.gossip ?? 0) - (before[index] ?? 0));
      // Only the writer pushes the commit, once to each other node, and it arrives in one hop.
      expect(pushes).toEqual(nodes.map((node) => (node === writer ? nodes.length - 1 : 0)));
      expect(elapsedMs).toBeLessThanOrEqual(2 * defaultTiming.tickIntervalMs);
    }
    expect(net.violations).toEqual([]);
  });

  it.each([1, 2, 3, 4, 5, 6])(
    'converges after random link failures and concurrent writes (seed %i)',
    (seed) => {
      const { net, nodes } = cluster(5, seed);
      let writes = 0;
      net.runFor(8000, () => {
        if (net.random() < 0.05) net.breakRandomLink();
        if (net.random() < 0.1) {
          const node = nodes[Math.floor(net.random() * nodes.length)] as SimNode;
          net.write(node, `k${Math.floor(net.random() * 4)}`);
          writes += 1;
        }
      });
      expect(writes).toBeGreaterThan(10);
      net.runUntil(() => net.converged(), 10_000, 'convergence');
      expect(nodes[0]?.storage.log).toHaveLength(writes);
      expect(net.violations, `seed ${seed}`).toEqual([]);
    },
  );

  it('a partition: each side keeps writing and declares the other dead; after heal they reconnect and converge', () => {
    const { net, nodes } = cluster(4, 7);
    const [n0, n1, n2, n3] = nodes as [SimNode, SimNode, SimNode, SimNode];
    net.partition([
      [n0.id, n1.id],
      [n2.id, n3.id],
    ]);
    net.write(n0, 'left');
    net.write(n3, 'right');
    net.runUntil(
      () => n0.replica.status().find((row) => row.id === n3.id)?.state === 'dead',
      2 * defaultTiming.deadAfterMs,
      'dead across the partition',
    );
    net.write(n1, 'left');
    net.write(n2, 'right');
    expect(net.converged()).toBe(false);
    net.heal();
    net.runUntil(() => net.converged(), 20_000, 'convergence after heal');
    net.runUntil(
      () => nodes.every((node) => node.replica.status().every((row) => row.state === 'alive')),
      20_000,
      'everyone alive again',
    );
    expect(n0.events).toContainEqual({ type: 'alive', member: n3.id, name: 'node-4444' });
    expect(n0.storage.log).toHaveLength(4);
    expect(net.violations).toEqual([]);
  });

  it('a member that leaves is dead with reason "left" everywhere and is not dialed again', () => {
    const { net, nodes } = cluster(4, 3);
    // Settled first: a dial still in flight to the leaver meets the bug shown in 'link_up of a member that has just left'.
    net.runFor(3000);
    const leaver = nodes[3] as SimNode;
    net.step(leaver, { type: 'leave' });
    net.runFor(100);
    net.stop(leaver);
    net.runFor(3 * defaultTiming.deadAfterMs);
    for (const node of nodes.slice(0, 3)) {
      expect(
        node.events.filter((event) => event.member === leaver.id && event.type !== 'new_neighbor'),
      ).toEqual([{ type: 'dead_neighbor', member: leaver.id, name: 'node-4444', reason: 'left' }]);
      expect(node.replica.status().find((row) => row.id === leaver.id)).toMatchObject({
        state: 'dead',
        left: true,
      });
    }
  });

  it('a crashed node is declared dead; restarted with a higher incarnation it is alive again and catches up', () => {
    const { net, nodes } = cluster(3, 5);
    const [n0, n1, n2] = nodes as [SimNode, SimNode, SimNode];
    net.write(n2, 'k');
    net.runUntil(() => net.converged(), 2000, 'first write everywhere');
    net.stop(n2);
    net.runUntil(
      () => n0.events.some((event) => event.type === 'dead_neighbor' && event.member === n2.id),
      2 * defaultTiming.deadAfterMs,
      'crashed node dead',
    );
    expect(n0.events).toContainEqual({
      type: 'dead_neighbor',
      member: n2.id,
      name: 'node-3333',
      reason: 'silent',
    });
    net.write(n0, 'k');
    net.write(n1, 'k');
    const restarted = net.add(n2.id, [n0.id], 2, n2.storage);
    net.runUntil(
      () => restarted.storage.log.length === 3 && n1.replica.status().every((row) => row.state === 'alive'),
      20_000,
      'restarted node alive and caught up',
    );
    expect(n1.events).toContainEqual({ type: 'alive', member: n2.id, name: 'node-3333' });
    expect(net.violations).toEqual([]);
  });

  // Regression (fixed in dd6383f, see delivery.test.ts): sync requests left out the node's own
  // commits, so past one batch of them every answer said `more` with nothing new, a sync each tick.
  it('anti-entropy stays at about one sync per interval and peer after both nodes wrote more than a batch', () => {
    const { net, nodes } = cluster(2, 1, { syncBatchCommitsMax: 2 });
    for (const node of nodes)
      for (let index = 0; index < 5; index += 1) net.write(node, `${node.id}-${index}`);
    net.runUntil(() => net.converged(), 2000, 'convergence');
    const before = nodes.map((node) => node.sent.sync ?? 0);
    net.runFor(5000);
    // One round per antiEntropyIntervalMs (1 s), plus push-pull answers: a handful, not one a tick.
    for (const [index, node] of nodes.entries())
      expect((node.sent.sync ?? 0) - (before[index] ?? 0)).toBeLessThanOrEqual(15);
    expect(nodes[0]?.storage.log).toHaveLength(10);
  });
});
