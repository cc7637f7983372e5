import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Envelope, PeerMessage } from './messages.js';
import { Plumtree } from './plumtree.js';
import { type ClusterOutput, type ClusterTiming, defaultTiming } from './protocol.js';

const [B, C, D, E] = ['b', 'c', 'd', 'e'].map((digit) => digit.repeat(16) as NodeId) as [
  NodeId,
  NodeId,
  NodeId,
  NodeId,
];
const id1 = '1'.repeat(64) as CommitId;
const id2 = '2'.repeat(64) as CommitId;
const id3 = '3'.repeat(64) as CommitId;
const envelope = (id: CommitId): Envelope => ({ id, body: `body of ${id.slice(0, 4)}` });

/** Plumtree with the rest of the node faked: what is seen, what is applied, the links. */
class Harness {
  readonly clock = new ManualClock(1_700_000_000_000);
  readonly seen = new Set<CommitId>();
  readonly applied = new Map<CommitId, Envelope>();
  readonly links = new Set<NodeId>();
  readonly bySync = new Set<CommitId>();
  readonly timing: ClusterTiming = { ...defaultTiming, graftTimeoutMs: 400, graftRetryMs: 300 };
  outputs: ClusterOutput[] = [];
  readonly plumtree = new Plumtree(this.timing, {
    emit: (output) => this.outputs.push(output),
    now: () => this.clock.now(),
    envelope: (id) => this.applied.get(id),
    seen: (id) => this.seen.has(id) || this.applied.has(id),
    cameBySync: (id) => this.bySync.has(id),
  });

  constructor(peers: NodeId[] = []) {
    for (const peer of peers) this.up(peer);
  }

  up(peer: NodeId): void {
    this.links.add(peer);
    this.plumtree.neighborUp(peer);
  }

  down(peer: NodeId): void {
    this.links.delete(peer);
    this.plumtree.neighborDown(peer);
  }

  /** Runs `act` and returns the messages it sent, checking the invariants after. */
  sends(act: () => void): Array<{ to: NodeId; message: PeerMessage }> {
    this.outputs = [];
    act();
    this.plumtree.checkInvariants(this.links);
    return this.outputs.flatMap((output) =>
      output.type === 'send' ? [{ to: output.to, message: output.message }] : [],
    );
  }

  tick(ms = this.timing.tickIntervalMs): Array<{ to: NodeId; message: PeerMessage }> {
    this.clock.advance(ms);
    return this.sends(() => this.plumtree.tick());
  }

  roles(): { eager: NodeId[]; lazy: NodeId[] } {
    return { eager: [...this.plumtree.eager].sort(), lazy: [...this.plumtree.lazy].sort() };
  }
}

describe('Plumtree', () => {
  it('starts every new neighbour eager', () => {
    const tree = new Harness([B, C]);
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [] });
  });

  it('pushes a commit whole to eager peers but the sender, and announces it to lazy peers on the next tick', () => {
    const tree = new Harness([B, C, D, E]);
    tree.sends(() => tree.plumtree.onMessage(D, { type: 'prune' }));
    tree.sends(() => tree.plumtree.onMessage(E, { type: 'prune' }));
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [D, E] });

    const pushed = tree.sends(() => tree.plumtree.forward(envelope(id1), 3, B));
    expect(pushed).toEqual([{ to: C, message: { type: 'gossip', envelope: envelope(id1), round: 3 } }]);
    expect(tree.sends(() => tree.plumtree.forward(envelope(id2), 0, E))).toEqual([
      { to: B, message: { type: 'gossip', envelope: envelope(id2), round: 0 } },
      { to: C, message: { type: 'gossip', envelope: envelope(id2), round: 0 } },
    ]);
    // One batch of announcements per lazy peer per tick; never back to the sender.
    const announced = tree.tick();
    expect(announced).toEqual([
      { to: D, message: { type: 'ihave', ids: [id1, id2], round: 0 } },
      { to: E, message: { type: 'ihave', ids: [id1], round: 0 } },
    ]);
    expect(tree.tick()).toEqual([]);
  });

  it('takes a new commit as tree path: returns true and keeps (or makes) the sender eager', () => {
    const tree = new Harness([B, C]);
    tree.sends(() => tree.plumtree.onMessage(C, { type: 'prune' }));
    let isNew = false;
    expect(tree.sends(() => (isNew = tree.plumtree.onGossip(C, id1)))).toEqual([]);
    expect(isNew).toBe(true);
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.plumtree.counters.gossipReceived).toBe(1);
  });

  it('prunes the sender of a duplicate, once, moving it to lazy', () => {
    const tree = new Harness([B, C]);
    tree.seen.add(id1);
    let isNew = true;
    expect(tree.sends(() => (isNew = tree.plumtree.onGossip(C, id1)))).toEqual([
      { to: C, message: { type: 'prune' } },
    ]);
    expect(isNew).toBe(false);
    expect(tree.roles()).toEqual({ eager: [B], lazy: [C] });
    // A lazy peer sending a duplicate (it grafted, or messages crossed) is not pruned again.
    expect(tree.sends(() => tree.plumtree.onGossip(C, id1))).toEqual([]);
    expect(tree.plumtree.counters).toMatchObject({ duplicatesReceived: 2, prunesSent: 1 });
  });

  it('does not prune the sender of a copy of a commit that anti-entropy brought first', () => {
    const tree = new Harness([B]);
    tree.seen.add(id1);
    tree.bySync.add(id1);
    expect(tree.sends(() => tree.plumtree.onGossip(B, id1))).toEqual([]);
    expect(tree.roles()).toEqual({ eager: [B], lazy: [] });
    expect(tree.plumtree.counters).toMatchObject({ duplicatesReceived: 1, prunesSent: 0 });
  });

  it('a prune moves the peer that sent it to lazy', () => {
    const tree = new Harness([B]);
    tree.sends(() => tree.plumtree.onMessage(B, { type: 'prune' }));
    expect(tree.roles()).toEqual({ eager: [], lazy: [B] });
  });

  describe('announcements of unknown commits', () => {
    function announced(): Harness {
      const tree = new Harness([B, C, D]);
      tree.sends(() => tree.plumtree.onMessage(B, { type: 'prune' }));
      tree.sends(() => tree.plumtree.onMessage(C, { type: 'prune' }));
      tree.sends(() => tree.plumtree.onMessage(B, { type: 'ihave', ids: [id1], round: 0 }));
      tree.clock.advance(60);
      tree.sends(() => tree.plumtree.onMessage(C, { type: 'ihave', ids: [id1, id2], round: 0 }));
      tree.sends(() => tree.plumtree.onMessage(B, { type: 'ihave', ids: [id1], round: 0 }));
      return tree;
    }

    it('grafts the first announcer after graftTimeoutMs, then the next after graftRetryMs', () => {
      const tree = announced();
      const start = tree.clock.now() - 60;
      const grafts: Array<{ at: number; to: NodeId; message: PeerMessage }> = [];
      while (tree.clock.now() < start + 2000) {
        for (const sent of tree.tick()) grafts.push({ at: tree.clock.now() - start, ...sent });
      }
      expect(grafts).toEqual([
        { at: 400, to: B, message: { type: 'graft', ids: [id1] } },
        { at: 460, to: C, message: { type: 'graft', ids: [id2] } },
        { at: 700, to: C, message: { type: 'graft', ids: [id1] } },
      ]);
      // A graft puts the announcer back in the tree.
      expect(tree.roles()).toEqual({ eager: [B, C, D], lazy: [] });
      expect(tree.plumtree.counters.graftsSent).toBe(3);
    });

    it('does not graft a commit that arrived by gossip or by anti-entropy in the meantime', () => {
      const tree = announced();
      tree.sends(() => tree.plumtree.onGossip(D, id1));
      tree.plumtree.received(id2);
      for (let step = 0; step < 100; step += 1) expect(tree.tick()).toEqual([]);
    });

    it('does not graft a commit seen by the time its timer runs out', () => {
      const tree = announced();
      tree.seen.add(id1);
      tree.seen.add(id2);
      for (let step = 0; step < 100; step += 1) expect(tree.tick()).toEqual([]);
    });

    it('ignores announcements of what it has seen', () => {
      const tree = new Harness([B]);
      tree.seen.add(id1);
      tree.sends(() => tree.plumtree.onMessage(B, { type: 'ihave', ids: [id1], round: 0 }));
      for (let step = 0; step < 100; step += 1) expect(tree.tick()).toEqual([]);
      expect(tree.plumtree.counters).toMatchObject({ ihaveReceived: 1, ihaveAlreadySeen: 1 });
    });

    it('forgets an announcer whose link went down, and the commit once no announcer is left', () => {
      const tree = announced();
      tree.down(B);
      const first = tree.tick(400);
      expect(first).toEqual([{ to: C, message: { type: 'graft', ids: [id1, id2] } }]);
      tree.down(C);
      for (let step = 0; step < 100; step += 1) expect(tree.tick()).toEqual([]);
    });
  });

  it('answers a graft with the applied commits it names, making the grafting peer eager', () => {
    const tree = new Harness([B, C]);
    tree.sends(() => tree.plumtree.onMessage(B, { type: 'prune' }));
    tree.applied.set(id1, envelope(id1));
    tree.seen.add(id2); // received but not applied: it cannot be served yet
    const answer = tree.sends(() => tree.plumtree.onMessage(B, { type: 'graft', ids: [id1, id2, id3] }));
    expect(answer).toEqual([{ to: B, message: { type: 'gossip', envelope: envelope(id1), round: 0 } }]);
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [] });
  });

  it('a neighbour that goes down leaves both roles and its queued announcements', () => {
    const tree = new Harness([B, C]);
    tree.sends(() => tree.plumtree.onMessage(C, { type: 'prune' }));
    tree.sends(() => tree.plumtree.forward(envelope(id1), 0));
    tree.down(C);
    tree.down(B);
    expect(tree.roles()).toEqual({ eager: [], lazy: [] });
    expect(tree.tick()).toEqual([]);
    // Up again: eager, announcements start afresh.
    tree.up(C);
    expect(tree.roles()).toEqual({ eager: [C], lazy: [] });
    expect(tree.tick()).toEqual([]);
  });

  it('checkInvariants catches a peer in both roles or without a link', () => {
    const tree = new Harness([B]);
    expect(() => tree.plumtree.checkInvariants(new Set())).toThrow(/eager peer .* has no link/);
    tree.plumtree.lazy.add(B);
    expect(() => tree.plumtree.checkInvariants(tree.links)).toThrow(/both eager and lazy/);
    tree.plumtree.eager.delete(B);
    expect(() => tree.plumtree.checkInvariants(new Set())).toThrow(/lazy peer .* has no link/);
  });

  it('keeps its invariants under any sequence of link changes and messages', () => {
    const peers = [B, C, D, E];
    const ids = [id1, id2, id3];
    const peer = fc.constantFrom(...peers);
    const commit = fc.constantFrom(...ids);
    const action = fc.oneof(
      fc.record({ kind: fc.constant('up' as const), peer }),
      fc.record({ kind: fc.constant('down' as const), peer }),
      fc.record({ kind: fc.constant('gossip' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('ihave' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('graft' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('prune' as const), peer }),
      fc.record({ kind: fc.constant('apply' as const), id: commit }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 500 }) }),
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 80 }), (actions) => {
        const tree = new Harness();
        for (const step of actions) {
          const linked = 'peer' in step && tree.links.has(step.peer);
          let sent: Array<{ to: NodeId; message: PeerMessage }> = [];
          switch (step.kind) {
            case 'up':
              if (!linked) tree.up(step.peer);
              break;
            case 'down':
              if (linked) tree.down(step.peer);
              break;
            case 'gossip':
              // The node only hears linked peers (Replica drops strays).
              if (linked) sent = tree.sends(() => tree.plumtree.onGossip(step.peer, step.id));
              break;
            case 'ihave':
              if (linked)
                sent = tree.sends(() =>
                  tree.plumtree.onMessage(step.peer, { type: 'ihave', ids: [step.id], round: 0 }),
                );
              break;
            case 'graft':
              if (linked)
                sent = tree.sends(() =>
                  tree.plumtree.onMessage(step.peer, { type: 'graft', ids: [step.id] }),
                );
              break;
            case 'prune':
              if (linked) sent = tree.sends(() => tree.plumtree.onMessage(step.peer, { type: 'prune' }));
              break;
            case 'apply':
              tree.applied.set(step.id, envelope(step.id));
              sent = tree.sends(() => tree.plumtree.forward(envelope(step.id), 0));
              break;
            case 'tick':
              sent = tree.tick(step.ms);
              break;
          }
          tree.plumtree.checkInvariants(tree.links);
          // Nothing goes to a peer it has no link to, and it never grafts what it has seen.
          for (const { to, message } of sent) {
            expect(tree.links.has(to)).toBe(true);
            if (message.type === 'graft')
              for (const id of message.ids) expect(tree.applied.has(id)).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
