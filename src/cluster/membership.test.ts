import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { NodeId } from '../core/ids.js';
import { seededRandom as seeded } from '../sim/prng.js';
import { fullRowEveryHeartbeats } from './membership.js';
import { isBeat, type MemberInfo, type PeerMessage } from './messages.js';
import {
  type ClusterEvent,
  type ClusterInput,
  type ClusterOutput,
  type ClusterTiming,
  defaultTiming,
  type ReplicaStorage,
} from './protocol.js';
import { Replica } from './replica.js';

const start = 1_700_000_000_000;
const A = 'aaaaaaaaaaaaaaaa' as NodeId;
const [B, C, D, E, F, G, H] = ['b', 'c', 'd', 'e', 'f', '1', '2'].map(
  (digit) => digit.repeat(16) as NodeId,
) as [NodeId, NodeId, NodeId, NodeId, NodeId, NodeId, NodeId];

const urlOf = (id: NodeId) => `http://${id.slice(0, 4)}.test:7070`;

function info(id: NodeId, overrides: Partial<MemberInfo> = {}): MemberInfo {
  return {
    id,
    name: `node-${id.slice(0, 4)}`,
    url: urlOf(id),
    incarnation: 1,
    heartbeat: 1,
    signals: { revision: {}, replicationDelayMs: 0, meanResponseMs: 0, errorRate: 0, eager: [], lazy: [] },
    ...overrides,
  };
}

/** A node with nothing stored: membership does not read the store beyond its revision. */
const emptyStorage: ReplicaStorage = {
  revision: () => ({}),
  hasCommit: () => false,
  hasBlob: () => false,
  envelope: () => undefined,
  missingFrom: () => ({ envelopes: [], more: false }),
};

class Node {
  readonly clock = new ManualClock(start);
  readonly replica: Replica;
  readonly timing: ClusterTiming;

  constructor(timing: Partial<ClusterTiming> = {}) {
    this.timing = { ...defaultTiming, ...timing };
    this.replica = new Replica({
      self: { id: A, name: 'node-a', url: urlOf(A), incarnation: 1 },
      storage: emptyStorage,
      now: () => this.clock.now(),
      random: seeded(7),
      timing,
    });
  }

  step(input: ClusterInput): ClusterOutput[] {
    const outputs = this.replica.step(input);
    this.replica.checkInvariants();
    return outputs;
  }

  linkUp(peer: MemberInfo): ClusterOutput[] {
    return this.step({ type: 'link_up', peer });
  }

  message(from: NodeId, message: PeerMessage): ClusterOutput[] {
    return this.step({ type: 'message', from, message });
  }

  /** Ticks every tickIntervalMs for `ms`; `each` runs before every tick (a peer speaking, say). */
  run(ms: number, each?: () => ClusterOutput[]): ClusterOutput[] {
    const outputs: ClusterOutput[] = [];
    const until = this.clock.now() + ms;
    while (this.clock.now() < until) {
      this.clock.advance(this.timing.tickIntervalMs);
      if (each) outputs.push(...each());
      outputs.push(...this.step({ type: 'tick' }));
    }
    return outputs;
  }

  /** Runs until an output matches, at most `ms`; returns the time it took and that output. */
  runUntil(
    ms: number,
    match: (output: ClusterOutput) => boolean,
    each?: () => ClusterOutput[],
  ): { afterMs: number; output: ClusterOutput } {
    const from = this.clock.now();
    while (this.clock.now() - from < ms) {
      this.clock.advance(this.timing.tickIntervalMs);
      const outputs = [...(each?.() ?? []), ...this.step({ type: 'tick' })];
      const found = outputs.find(match);
      if (found) return { afterMs: this.clock.now() - from, output: found };
    }
    throw new Error(`nothing matched within ${ms} ms`);
  }

  state(id: NodeId): string | undefined {
    return this.replica.status().find((row) => row.id === id)?.state;
  }
}

/**
 * A linked peer that keeps heartbeating, so that its link stays up and it stays alive; its gossip
 * also carries the growing heartbeats of `alive` and, unchanged, the `stale` entries.
 */
function heartbeats(
  node: Node,
  peer: NodeId,
  gossip: { alive?: NodeId[]; stale?: MemberInfo[] } = {},
): () => ClusterOutput[] {
  let heartbeat = 1;
  return () => {
    heartbeat += 1;
    const alive = [peer, ...(gossip.alive ?? [])].map((id) => info(id, { heartbeat }));
    return node.message(peer, { type: 'members', members: [...alive, ...(gossip.stale ?? [])] });
  };
}

const eventsOf = (outputs: ClusterOutput[]): ClusterEvent[] =>
  outputs.flatMap((output) => (output.type === 'event' ? [output.event] : []));

const sentTo = (outputs: ClusterOutput[], to: NodeId, type: PeerMessage['type']): PeerMessage[] =>
  outputs.flatMap((output) =>
    output.type === 'send' && output.to === to && output.message.type === type ? [output.message] : [],
  );

const connectsOf = (outputs: ClusterOutput[]) =>
  outputs.flatMap((output) => (output.type === 'connect' ? [output] : []));

const tableIds = (message: PeerMessage | undefined): NodeId[] =>
  message?.type === 'members' ? message.members.map((member) => member.id) : [];

describe('membership', () => {
  it('gives a newcomer the whole member list at once, and announces it to the others before the next heartbeat', () => {
    const node = new Node();
    const up = node.linkUp(info(B));
    const [table] = sentTo(up, B, 'members');
    expect(tableIds(table)).toEqual([A, B]);
    expect(eventsOf(up)).toEqual([{ type: 'new_neighbor', member: B, name: 'node-bbbb', url: urlOf(B) }]);
    node.run(node.timing.tickIntervalMs); // the first heartbeat

    const second = node.linkUp(info(D));
    expect(tableIds(sentTo(second, D, 'members')[0]).sort()).toEqual([A, B, D].sort());
    expect(eventsOf(second)).toEqual([{ type: 'new_neighbor', member: D, name: 'node-dddd', url: urlOf(D) }]);
    const next = node.run(node.timing.tickIntervalMs);
    expect(node.timing.tickIntervalMs).toBeLessThan(node.timing.heartbeatIntervalMs);
    expect(tableIds(sentTo(next, B, 'members')[0])).toContain(D);
    expect(sentTo(next, B, 'ping')).toEqual([]);
  });

  it('sends each link a full row of a member once per fullRowEveryHeartbeats of its heartbeats, beats in between', () => {
    const node = new Node();
    node.linkUp(info(B));
    node.message(B, { type: 'members', members: [info(B, { heartbeat: 2 }), info(C, { heartbeat: 10 })] });
    // What each heartbeat tells B of C, while C's heartbeat grows by one a heartbeat.
    const told: Array<'full' | 'beat'> = [];
    let heartbeatOfC = 10;
    for (let beat = 0; beat < 2 * fullRowEveryHeartbeats + 1; beat += 1) {
      heartbeatOfC += 1;
      const outputs = node.run(node.timing.heartbeatIntervalMs, () =>
        node.message(B, { type: 'members', members: [{ id: C, incarnation: 1, heartbeat: heartbeatOfC }] }),
      );
      for (const table of sentTo(outputs, B, 'members')) {
        const row = table.type === 'members' ? table.members.find((member) => member.id === C) : undefined;
        if (row) told.push(isBeat(row) ? 'beat' : 'full');
      }
    }
    expect(told).toEqual(
      Array.from({ length: 2 * fullRowEveryHeartbeats + 1 }, (_, index) =>
        index % fullRowEveryHeartbeats === 0 ? 'full' : 'beat',
      ),
    );
    // A beat carries id, incarnation and heartbeat only.
    const beat = sentTo(node.run(node.timing.heartbeatIntervalMs), B, 'members')
      .flatMap((table) => (table.type === 'members' ? table.members : []))
      .find((row) => row.id === A && isBeat(row));
    expect(beat).toBeDefined();
    expect(Object.keys(beat ?? {}).sort()).toEqual(['heartbeat', 'id', 'incarnation']);

    // A new link is told everything in full at once.
    const [table] = sentTo(node.linkUp(info(D)), D, 'members');
    expect(table?.type === 'members' && table.members.every((row) => !isBeat(row))).toBe(true);
    expect(tableIds(table).sort()).toEqual([A, B, C, D].sort());
  });

  it('takes a beat as progress of a member it knows under that incarnation, keeping the rest of its row', () => {
    const node = new Node();
    node.linkUp(info(B));
    const signals = {
      revision: { [C]: 7 },
      replicationDelayMs: 3,
      meanResponseMs: 1,
      errorRate: 0,
      eager: [],
      lazy: [],
    };
    node.message(B, { type: 'members', members: [info(C, { heartbeat: 5, signals })] });
    const keepB = heartbeats(node, B);
    let heartbeatOfC = 5;
    // Beats alone keep C alive well past deadAfterMs.
    const outputs = node.run(2 * node.timing.deadAfterMs, () => {
      heartbeatOfC += 1;
      return [
        ...keepB(),
        ...node.message(B, {
          type: 'members',
          members: [{ id: C, incarnation: 1, heartbeat: heartbeatOfC }],
        }),
      ];
    });
    expect(eventsOf(outputs).filter((event) => event.member === C)).toEqual([]);
    const row = node.replica.status().find((member) => member.id === C);
    expect(row).toMatchObject({ state: 'alive', url: urlOf(C), revision: { [C]: 7 }, replicationDelayMs: 3 });
    expect(node.replica.membership.members.get(C)?.info.heartbeat).toBe(heartbeatOfC);

    // A beat of a member not known, or of another incarnation, is not enough to know it by.
    node.message(B, { type: 'members', members: [{ id: D, incarnation: 1, heartbeat: 3 }] });
    expect(node.replica.membership.members.has(D)).toBe(false);
    node.message(B, { type: 'members', members: [{ id: C, incarnation: 2, heartbeat: 1 }] });
    expect(node.replica.membership.members.get(C)?.info).toMatchObject({
      incarnation: 1,
      heartbeat: heartbeatOfC,
    });
  });

  it('learns members from heartbeat gossip, passes them on, and dials them', () => {
    const node = new Node();
    node.linkUp(info(B));
    node.run(node.timing.tickIntervalMs);
    const gossip = node.message(B, { type: 'members', members: [info(B, { heartbeat: 2 }), info(C)] });
    expect(eventsOf(gossip)).toEqual([{ type: 'new_neighbor', member: C, name: 'node-cccc', url: urlOf(C) }]);
    const next = node.run(node.timing.tickIntervalMs);
    expect(tableIds(sentTo(next, B, 'members')[0]).sort()).toEqual([A, B, C].sort());
    expect(connectsOf(next)).toEqual([{ type: 'connect', url: urlOf(C), peer: C }]);
    // Knowing C again is not news.
    expect(eventsOf(node.message(B, { type: 'members', members: [info(C)] }))).toEqual([]);
  });

  it('heartbeats: every heartbeatIntervalMs, its table and a ping to each link, with its own heartbeat growing', () => {
    const node = new Node();
    node.linkUp(info(B));
    const beats: number[] = [];
    let pings = 0;
    for (const output of node.run(5 * node.timing.heartbeatIntervalMs)) {
      if (output.type !== 'send' || output.to !== B) continue;
      if (output.message.type === 'ping') pings += 1;
      if (output.message.type === 'members') {
        const self = output.message.members.find((member) => member.id === A);
        if (self) beats.push(self.heartbeat);
      }
    }
    expect(pings).toBe(5);
    expect(beats).toEqual([1, 2, 3, 4, 5]);
  });

  describe('failure detection', () => {
    function withSilentC(): { node: Node; keepB: () => ClusterOutput[]; learnedAt: number } {
      const node = new Node();
      node.linkUp(info(B));
      node.message(B, { type: 'members', members: [info(B), info(C, { heartbeat: 5 })] });
      return { node, keepB: heartbeats(node, B), learnedAt: node.clock.now() };
    }

    it('forgets a member dead for forgetDeadAfterMs, and takes it back when it is heard again', () => {
      const node = new Node({ forgetDeadAfterMs: 20_000 });
      node.linkUp(info(B));
      node.message(B, { type: 'members', members: [info(B), info(C, { heartbeat: 5 })] });
      const keepB = heartbeats(node, B);
      const forgotten = node.runUntil(
        30_000,
        (o) => o.type === 'event' && o.event.type === 'forgotten',
        keepB,
      );
      expect(forgotten.afterMs).toBeGreaterThan(20_000);
      expect(forgotten.output).toMatchObject({ event: { type: 'forgotten', member: C, reason: 'silent' } });
      expect(node.state(C)).toBeUndefined();
      // No longer probed.
      expect(
        connectsOf(node.run(5 * node.timing.probeDeadIntervalMs, keepB)).map((c) => c.url),
      ).not.toContain(urlOf(C));
      // Its old row again is stale; a newer heartbeat (a healed partition) is news.
      expect(eventsOf(node.message(B, { type: 'members', members: [info(C, { heartbeat: 5 })] }))).toEqual(
        [],
      );
      expect(node.state(C)).toBeUndefined();
      const healed = node.message(B, { type: 'members', members: [info(C, { heartbeat: 6 })] });
      expect(eventsOf(healed)).toEqual([
        { type: 'new_neighbor', member: C, name: 'node-cccc', url: urlOf(C) },
      ]);
      expect(node.state(C)).toBe('alive');
    });

    it('suspects a member after suspectAfterMs without heartbeat progress, then declares it dead', () => {
      const { node, keepB, learnedAt } = withSilentC();
      const { suspectAfterMs, deadAfterMs, tickIntervalMs } = node.timing;
      const suspect = node.runUntil(
        deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'suspect',
        keepB,
      );
      expect(suspect.afterMs).toBeGreaterThan(suspectAfterMs);
      expect(suspect.afterMs).toBeLessThanOrEqual(suspectAfterMs + tickIntervalMs);
      expect(suspect.output).toMatchObject({ event: { type: 'suspect', member: C, name: 'node-cccc' } });
      expect(node.state(C)).toBe('suspect');
      expect(node.state(B)).toBe('alive');

      const dead = node.runUntil(
        deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'dead_neighbor',
        keepB,
      );
      expect(node.clock.now() - learnedAt).toBeGreaterThan(deadAfterMs);
      expect(node.clock.now() - learnedAt).toBeLessThanOrEqual(deadAfterMs + tickIntervalMs);
      expect(dead.output).toEqual({
        type: 'event',
        event: { type: 'dead_neighbor', member: C, name: 'node-cccc', reason: 'silent' },
      });
      expect(node.state(C)).toBe('dead');
      // A dead member is no longer gossiped.
      const next = node.run(node.timing.heartbeatIntervalMs, keepB);
      expect(tableIds(sentTo(next, B, 'members').at(-1))).not.toContain(C);
    });

    it('counts gossip that repeats a heartbeat as no progress', () => {
      const { node, keepB } = withSilentC();
      const stale = () => [
        ...keepB(),
        ...node.message(B, { type: 'members', members: [info(C, { heartbeat: 5 })] }),
      ];
      const suspect = node.runUntil(
        node.timing.deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'suspect',
        stale,
      );
      expect(suspect.afterMs).toBeLessThanOrEqual(node.timing.suspectAfterMs + node.timing.tickIntervalMs);
      expect(node.state(C)).toBe('suspect');
    });

    it('a suspect whose heartbeat grows is alive again', () => {
      const { node, keepB } = withSilentC();
      node.runUntil(node.timing.deadAfterMs, (o) => o.type === 'event' && o.event.type === 'suspect', keepB);
      const back = node.message(B, { type: 'members', members: [info(C, { heartbeat: 6 })] });
      expect(eventsOf(back)).toEqual([{ type: 'alive', member: C, name: 'node-cccc' }]);
      expect(node.state(C)).toBe('alive');
      expect(node.replica.status().find((row) => row.id === C)?.heartbeatAgeMs).toBe(0);
    });

    it('a dead member is alive again on a newer heartbeat, or on a newer incarnation even with a lower heartbeat', () => {
      const { node, keepB } = withSilentC();
      node.runUntil(
        2 * node.timing.deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'dead_neighbor',
        keepB,
      );
      expect(eventsOf(node.message(B, { type: 'members', members: [info(C, { heartbeat: 5 })] }))).toEqual(
        [],
      );
      expect(eventsOf(node.message(B, { type: 'members', members: [info(C, { heartbeat: 6 })] }))).toEqual([
        { type: 'alive', member: C, name: 'node-cccc' },
      ]);

      node.runUntil(
        2 * node.timing.deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'dead_neighbor',
        keepB,
      );
      const restarted = node.message(B, {
        type: 'members',
        members: [info(C, { incarnation: 2, heartbeat: 1 })],
      });
      expect(eventsOf(restarted)).toEqual([{ type: 'alive', member: C, name: 'node-cccc' }]);
      expect(node.state(C)).toBe('alive');
      // …and the old incarnation's heartbeats no longer count.
      expect(eventsOf(node.message(B, { type: 'members', members: [info(C, { heartbeat: 99 })] }))).toEqual(
        [],
      );
      expect(node.replica.membership.members.get(C)?.info.incarnation).toBe(2);
    });

    it('probes a dead member periodically, no more often than probeDeadIntervalMs', () => {
      const { node, keepB } = withSilentC();
      node.runUntil(
        2 * node.timing.deadAfterMs,
        (o) => o.type === 'event' && o.event.type === 'dead_neighbor',
        keepB,
      );
      const probes: number[] = [];
      const until = node.clock.now() + 10 * node.timing.probeDeadIntervalMs;
      while (node.clock.now() < until) {
        node.clock.advance(node.timing.tickIntervalMs);
        keepB();
        for (const connect of connectsOf(node.step({ type: 'tick' }))) {
          expect(connect).toEqual({ type: 'connect', url: urlOf(C), peer: C });
          probes.push(node.clock.now());
          // Report every failed dial, so that only the probe interval holds the next one back.
          node.step({ type: 'connect_failed', url: connect.url });
        }
      }
      expect(probes.length).toBeGreaterThanOrEqual(8);
      for (let index = 1; index < probes.length; index += 1)
        expect((probes[index] ?? 0) - (probes[index - 1] ?? 0)).toBeGreaterThanOrEqual(
          node.timing.probeDeadIntervalMs,
        );
    });
  });

  describe('departure', () => {
    function departed(): Node {
      const node = new Node();
      node.linkUp(info(B, { heartbeat: 3 }));
      node.linkUp(info(D));
      return node;
    }

    it('a member that leaves is dead with reason "left" at once, and its link is dropped', () => {
      const node = departed();
      const left = node.message(B, { type: 'members', members: [info(B, { heartbeat: 4, left: true })] });
      expect(eventsOf(left)).toEqual([
        { type: 'dead_neighbor', member: B, name: 'node-bbbb', reason: 'left' },
      ]);
      expect(left).toContainEqual({ type: 'disconnect', peer: B });
      expect(node.state(B)).toBe('dead');
      expect(node.replica.membership.isLinked(B)).toBe(false);
      expect(node.replica.plumtree.eager.has(B)).toBe(false);
      expect(node.replica.status().find((row) => row.id === B)?.left).toBe(true);
    });

    it('passes the departure on, and stale gossip does not bring the departed member back', () => {
      const node = departed();
      node.message(B, { type: 'members', members: [info(B, { heartbeat: 4, left: true })] });
      const next = node.run(node.timing.tickIntervalMs);
      const table = sentTo(next, D, 'members')[0];
      expect(
        table?.type === 'members' &&
          table.members.some((member) => member.id === B && !isBeat(member) && member.left),
      ).toBe(true);

      const keepD = heartbeats(node, D, { stale: [info(B, { heartbeat: 3 })] });
      const later = node.run(3 * node.timing.deadAfterMs, keepD);
      expect(eventsOf(later).filter((event) => event.member === B)).toEqual([]);
      expect(connectsOf(later).filter((connect) => connect.url === urlOf(B))).toEqual([]);
      expect(node.state(B)).toBe('dead');
    });

    it('forgets a departed member after forgetLeftAfterMs, and stale gossip does not bring it back', () => {
      const node = new Node({ forgetLeftAfterMs: 5_000 });
      node.linkUp(info(B, { heartbeat: 3 }));
      node.linkUp(info(D));
      node.message(B, { type: 'members', members: [info(B, { heartbeat: 4, left: true })] });
      const keepD = heartbeats(node, D, { stale: [info(B, { heartbeat: 3 })] });
      const forgotten = node.runUntil(
        10_000,
        (o) => o.type === 'event' && o.event.type === 'forgotten',
        keepD,
      );
      expect(forgotten.afterMs).toBeGreaterThan(5_000);
      expect(forgotten.output).toEqual({
        type: 'event',
        event: { type: 'forgotten', member: B, name: 'node-bbbb', reason: 'left' },
      });
      expect(node.state(B)).toBeUndefined();
      const later = node.run(3 * node.timing.heartbeatIntervalMs, keepD);
      expect(tableIds(sentTo(later, D, 'members').at(-1))).not.toContain(B);
      expect(eventsOf(later).filter((event) => event.member === B)).toEqual([]);
      expect(node.state(B)).toBeUndefined();
      // Restarted, it is a member again.
      const back = node.message(D, { type: 'members', members: [info(B, { incarnation: 2, heartbeat: 1 })] });
      expect(eventsOf(back)).toEqual([{ type: 'new_neighbor', member: B, name: 'node-bbbb', url: urlOf(B) }]);
    });

    it('a departed member that restarts (newer incarnation) is alive again', () => {
      const node = departed();
      node.message(B, { type: 'members', members: [info(B, { heartbeat: 4, left: true })] });
      const back = node.message(D, { type: 'members', members: [info(B, { incarnation: 2, heartbeat: 1 })] });
      expect(eventsOf(back)).toEqual([{ type: 'alive', member: B, name: 'node-bbbb' }]);
    });

    it('a departed member learned second hand is not news', () => {
      const node = new Node();
      node.linkUp(info(D));
      const gossip = node.message(D, { type: 'members', members: [info(B, { left: true })] });
      expect(eventsOf(gossip)).toEqual([]);
      expect(node.state(B)).toBeUndefined();
    });

    it('leave announces the departure to every link and stops dialing', () => {
      const node = departed();
      node.message(D, { type: 'members', members: [info(D, { heartbeat: 2 }), info(C), info(E), info(F)] });
      const leave = node.step({ type: 'leave' });
      for (const peer of [B, D]) {
        const [announcement] = sentTo(leave, peer, 'members');
        expect(announcement).toMatchObject({ members: [{ id: A, left: true }] });
        expect(announcement?.type === 'members' && announcement.members).toHaveLength(1);
      }
      expect(node.replica.status()[0]).toMatchObject({ self: true, left: true });
      expect(connectsOf(node.run(node.timing.deadAfterMs))).toEqual([]);
    });
  });

  describe('overlay', () => {
    it('dials alive members until it has degree links, and no more while those are pending', () => {
      const node = new Node({ degree: 3 });
      node.linkUp(info(B));
      const others = [C, D, E, F, G, H];
      const keepB = heartbeats(node, B, { alive: others });
      keepB();
      const first = connectsOf(node.run(node.timing.tickIntervalMs, keepB));
      expect(first).toHaveLength(2);
      for (const connect of first) {
        expect(others).toContain(connect.peer);
        expect(connect.url).toBe(urlOf(connect.peer as NodeId));
      }
      expect(new Set(first.map((connect) => connect.peer)).size).toBe(2);
      expect(connectsOf(node.run(node.timing.connectTimeoutMs / 2, keepB))).toEqual([]);

      for (const connect of first) node.linkUp(info(connect.peer as NodeId));
      const keep = [keepB, ...first.map((connect) => heartbeats(node, connect.peer as NodeId))];
      const all = () => keep.flatMap((beat) => beat());
      expect(connectsOf(node.run(node.timing.connectTimeoutMs * 2, all))).toEqual([]);
      expect(node.replica.membership.links.size).toBe(3);

      // One link lost: one dial, to a member it is not linked to.
      const lost = first[0]?.peer as NodeId;
      node.step({ type: 'link_down', peer: lost });
      expect(node.replica.plumtree.eager.has(lost)).toBe(false);
      const again = connectsOf(node.run(node.timing.tickIntervalMs, all));
      expect(again).toHaveLength(1);
      expect(others).toContain(again[0]?.peer);
      expect([...node.replica.membership.links.keys()]).not.toContain(again[0]?.peer);
    });

    it('dials a link that closed as soon as it opened again only after connectRetryMs', () => {
      const node = new Node();
      node.linkUp(info(B));
      const keepB = heartbeats(node, B, { alive: [C] });
      keepB();
      node.linkUp(info(C));
      node.run(node.timing.tickIntervalMs, keepB);
      // C refuses what this node said: its link closes at once.
      node.step({ type: 'link_down', peer: C });
      const soon = connectsOf(node.run(node.timing.connectRetryMs - 2 * node.timing.tickIntervalMs, keepB));
      expect(soon.filter((connect) => connect.peer === C)).toEqual([]);
      const later = connectsOf(node.run(3 * node.timing.tickIntervalMs, keepB));
      expect(later.filter((connect) => connect.peer === C)).toHaveLength(1);
    });

    it('fills the degree with alive members only; a suspect is only probed, once per probeDeadIntervalMs', () => {
      const node = new Node({ degree: 3 });
      node.linkUp(info(B));
      node.message(B, { type: 'members', members: [info(B, { heartbeat: 2 }), info(C), info(D)] });
      const keepB = heartbeats(node, B, { alive: [D] });
      node.runUntil(node.timing.deadAfterMs, (o) => o.type === 'event' && o.event.type === 'suspect', keepB);
      expect(node.state(C)).toBe('suspect');
      // Until C is declared dead, every dial fails: D is dialed again after each connectRetryMs,
      // C only when the probe interval comes round.
      const dials: Record<string, number[]> = { [C]: [], [D]: [] };
      const { deadAfterMs, suspectAfterMs, tickIntervalMs, probeDeadIntervalMs } = node.timing;
      const until = node.clock.now() + deadAfterMs - suspectAfterMs - 2 * tickIntervalMs;
      while (node.clock.now() < until) {
        node.clock.advance(tickIntervalMs);
        keepB();
        for (const connect of connectsOf(node.step({ type: 'tick' }))) {
          dials[connect.peer as string]?.push(node.clock.now());
          node.step({ type: 'connect_failed', url: connect.url });
        }
      }
      expect(node.state(C)).toBe('suspect');
      const probes = dials[C] ?? [];
      expect(probes.length).toBeGreaterThanOrEqual(2);
      for (let index = 1; index < probes.length; index += 1)
        expect((probes[index] ?? 0) - (probes[index - 1] ?? 0)).toBeGreaterThanOrEqual(probeDeadIntervalMs);
      expect(dials[D]?.length).toBeGreaterThan(probes.length);
    });

    it('does not probe a suspect it is linked to', () => {
      const node = new Node();
      node.linkUp(info(B));
      // B's link carries pings, but its heartbeat does not grow.
      const pings = () => node.message(B, { type: 'ping', sentAt: node.clock.now() });
      node.runUntil(node.timing.deadAfterMs, (o) => o.type === 'event' && o.event.type === 'suspect', pings);
      const later = node.run(node.timing.deadAfterMs - node.timing.suspectAfterMs - 100, pings);
      expect(node.state(B)).toBe('suspect');
      expect(connectsOf(later)).toEqual([]);
      expect(node.replica.membership.isLinked(B)).toBe(true);
    });

    it('dials again when a connect has produced no link after connectTimeoutMs', () => {
      const node = new Node({ degree: 2 });
      node.linkUp(info(B));
      const keepB = heartbeats(node, B, { alive: [C] });
      const first = node.runUntil(node.timing.tickIntervalMs, (o) => o.type === 'connect', keepB);
      const second = node.runUntil(2 * node.timing.connectTimeoutMs, (o) => o.type === 'connect', keepB);
      expect(first.output).toEqual({ type: 'connect', url: urlOf(C), peer: C });
      expect(second.output).toEqual(first.output);
      expect(second.afterMs).toBeGreaterThanOrEqual(node.timing.connectTimeoutMs);
      expect(second.afterMs).toBeLessThanOrEqual(node.timing.connectTimeoutMs + node.timing.tickIntervalMs);
    });

    it('after a failed connect, tries the same URL again no sooner than connectRetryMs', () => {
      const node = new Node({ degree: 2 });
      node.linkUp(info(B));
      const keepB = heartbeats(node, B, { alive: [C] });
      node.runUntil(node.timing.tickIntervalMs, (o) => o.type === 'connect', keepB);
      node.step({ type: 'connect_failed', url: urlOf(C) });
      const retry = node.runUntil(node.timing.connectTimeoutMs, (o) => o.type === 'connect', keepB);
      expect(retry.output).toEqual({ type: 'connect', url: urlOf(C), peer: C });
      expect(retry.afterMs).toBeGreaterThanOrEqual(node.timing.connectRetryMs);
      expect(retry.afterMs).toBeLessThanOrEqual(node.timing.connectRetryMs + node.timing.tickIntervalMs);
    });

    it('dials the seeds again while it has no link', () => {
      const node = new Node();
      const seed = 'http://seed.test:7070';
      expect(node.step({ type: 'join', urls: [seed] })).toEqual([{ type: 'connect', url: seed }]);
      const retry = node.runUntil(2 * node.timing.connectTimeoutMs, (o) => o.type === 'connect');
      expect(retry.output).toEqual({ type: 'connect', url: seed });
      expect(retry.afterMs).toBeGreaterThanOrEqual(node.timing.connectTimeoutMs);
    });

    it('never dials itself', () => {
      const node = new Node();
      expect(node.step({ type: 'join', urls: [urlOf(A)] })).toEqual([]);
      expect(node.step({ type: 'link_up', peer: info(A) })).toEqual([{ type: 'disconnect', peer: A }]);
      expect(node.replica.membership.links.size).toBe(0);
    });

    it('drops links beyond linksMax, one per tick', () => {
      const node = new Node({ degree: 2, linksMax: 3 });
      for (const peer of [B, C, D, E, F]) node.linkUp(info(peer));
      const first = node.run(node.timing.tickIntervalMs).filter((output) => output.type === 'disconnect');
      expect(first).toHaveLength(1);
      node.run(node.timing.tickIntervalMs * 5);
      expect(node.replica.membership.links.size).toBe(3);
      expect(node.replica.plumtree.eager.size).toBe(3);
    });

    it('drops a link on which nothing arrived for linkSilenceMs', () => {
      const node = new Node();
      node.linkUp(info(B));
      node.linkUp(info(C));
      const keepC = heartbeats(node, C);
      const dropped = node.runUntil(2 * node.timing.linkSilenceMs, (o) => o.type === 'disconnect', keepC);
      expect(dropped.output).toEqual({ type: 'disconnect', peer: B });
      expect(dropped.afterMs).toBeGreaterThan(node.timing.linkSilenceMs);
      expect(dropped.afterMs).toBeLessThanOrEqual(node.timing.linkSilenceMs + node.timing.tickIntervalMs);
      expect(node.replica.membership.isLinked(B)).toBe(false);
      expect(node.replica.membership.isLinked(C)).toBe(true);
      expect(node.replica.plumtree.eager.has(B)).toBe(false);
      // What B says afterwards is a stray from a dropped link.
      expect(node.message(B, { type: 'ping', sentAt: 1 })).toEqual([]);
    });
  });

  describe('clock offset', () => {
    function linked(): Node {
      const node = new Node({ maxClockSkewMs: 500 });
      node.linkUp(info(B));
      return node;
    }
    const pong = (node: Node, roundTripMs: number, offsetMs: number) => {
      const sentAt = node.clock.now() - roundTripMs;
      return node.message(B, {
        type: 'pong',
        pingSentAt: sentAt,
        receivedAt: sentAt + roundTripMs / 2 + offsetMs,
      });
    };
    const row = (node: Node) => node.replica.status().find((member) => member.id === B);

    it('answers a ping with its own clock', () => {
      const node = linked();
      node.clock.advance(5);
      expect(sentTo(node.message(B, { type: 'ping', sentAt: 42 }), B, 'pong')).toEqual([
        { type: 'pong', pingSentAt: 42, receivedAt: start + 5 },
      ]);
    });

    it('measures the offset and round trip from a pong, NTP style', () => {
      const node = linked();
      node.clock.advance(1000);
      expect(eventsOf(pong(node, 100, 300))).toEqual([]);
      expect(row(node)).toMatchObject({ clockOffsetMs: 300, roundTripMs: 100, clockSkewed: false });
      expect(node.replica.status()[0]).toMatchObject({ self: true, clockOffsetMs: 0 });
    });

    it('flags an offset beyond maxClockSkewMs once, either way, and again after it came back', () => {
      const node = linked();
      node.clock.advance(1000);
      expect(eventsOf(pong(node, 100, 800))).toEqual([
        { type: 'clock_skew', member: B, name: 'node-bbbb', offsetMs: 800 },
      ]);
      expect(row(node)?.clockSkewed).toBe(true);
      expect(eventsOf(pong(node, 100, 810))).toEqual([]);
      expect(eventsOf(pong(node, 100, 0))).toEqual([]);
      expect(row(node)?.clockSkewed).toBe(false);
      expect(eventsOf(pong(node, 100, -501))).toEqual([
        { type: 'clock_skew', member: B, name: 'node-bbbb', offsetMs: -501 },
      ]);
      expect(eventsOf(pong(node, 100, 500))).toEqual([]);
      expect(row(node)?.clockSkewed).toBe(false);
    });

    it('gossips the offsets it measured on its links in its own row', () => {
      const node = linked();
      node.clock.advance(1000);
      pong(node, 100, 300);
      const own = node.replica.status()[0];
      expect(own?.clockOffsetHops).toBe(0);
      // What it tells its links about itself carries the offset it measured to B.
      const rows = node
        .run(node.timing.heartbeatIntervalMs * fullRowEveryHeartbeats)
        .flatMap((output) =>
          output.type === 'send' && output.message.type === 'members' ? output.message.members : [],
        );
      const self = rows.findLast((row) => row.id === A && !isBeat(row)) as MemberInfo | undefined;
      expect(self?.signals.clockOffsets).toEqual({ [B]: 300 });
    });

    it('estimates the offset of a member without a link along the links whose ends measured it', () => {
      const node = linked();
      node.clock.advance(1000);
      pong(node, 100, 300);
      // B measured C at -120 and D at +50; C measured E at +900. D is also what C says of it.
      node.message(B, {
        type: 'members',
        members: [
          info(B, {
            heartbeat: 2,
            signals: { ...info(B).signals, clockOffsets: { [A]: -300, [C]: -120, [D]: 50 } },
          }),
          info(C, { heartbeat: 2, signals: { ...info(C).signals, clockOffsets: { [D]: 1000, [E]: 900 } } }),
          info(D),
          info(E),
          info(F),
        ],
      });
      const status = node.replica.status();
      const of = (id: NodeId) => status.find((member) => member.id === id);
      expect(of(B)).toMatchObject({
        clockOffsetMs: 300,
        clockOffsetHops: 1,
        linked: true,
        clockSkewed: false,
      });
      expect(of(C)).toMatchObject({
        clockOffsetMs: 180,
        clockOffsetHops: 2,
        linked: false,
        roundTripMs: null,
      });
      // The fewest links win: D through B (2), not through B and C (3).
      expect(of(D)).toMatchObject({ clockOffsetMs: 350, clockOffsetHops: 2 });
      expect(of(E)).toMatchObject({ clockOffsetMs: 1080, clockOffsetHops: 3, clockSkewed: true });
      // Nobody measured F.
      expect(of(F)).toMatchObject({ clockOffsetMs: null, clockOffsetHops: null, clockSkewed: false });
    });

    it('once the link is gone, a member offset comes from others or is unknown', () => {
      const node = linked();
      node.clock.advance(1000);
      pong(node, 100, 300);
      node.step({ type: 'link_down', peer: B });
      expect(row(node)).toMatchObject({ clockOffsetMs: null, clockOffsetHops: null, roundTripMs: null });
    });

    it('keeps the estimate of a fast round trip over one from a slow, queued one', () => {
      const node = linked();
      node.clock.advance(10_000);
      pong(node, 100, 20);
      expect(eventsOf(pong(node, 1000, 3000))).toEqual([]);
      expect(row(node)?.clockOffsetMs).toBe(20);
      pong(node, 140, 30);
      expect(row(node)?.clockOffsetMs).toBe(30);
    });
  });
});
