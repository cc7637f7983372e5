import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Envelope, PeerMessage } from './messages.js';
import { Plumtree, treesMax } from './plumtree.js';
import { type ClusterOutput, type ClusterTiming, defaultTiming } from './protocol.js';

const [B, C, D, E] = ['b', 'c', 'd', 'e'].map((digit) => digit.repeat(16) as NodeId) as [
  NodeId,
  NodeId,
  NodeId,
  NodeId,
];
/** Origins of the commits: O1 and O2 write, the node under test links to B–E. */
const [O1, O2] = ['01', '02'].map((digits) => digits.repeat(8) as NodeId) as [NodeId, NodeId];
const id1 = '1'.repeat(64) as CommitId;
const id2 = '2'.repeat(64) as CommitId;
const id3 = '3'.repeat(64) as CommitId;
/** Commit ids → their origin, as the bodies below say. */
const originOf: Record<string, NodeId> = { [id1]: O1, [id2]: O1, [id3]: O2 };
/** An envelope whose body names its origin where a canonical commit does (just before `seq`). */
const envelope = (id: CommitId): Envelope => ({
  id,
  body: `{"hlc":"${id.slice(0, 4)}","ops":[],"origin":"${originOf[id]}","seq":1}`,
});

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

  /** Every link's role over all trees: eager when eager in any. */
  roles(): { eager: NodeId[]; lazy: NodeId[] } {
    return { eager: [...this.plumtree.eager].sort(), lazy: [...this.plumtree.lazy].sort() };
  }

  /** The roles in `origin`'s tree. */
  tree(origin: NodeId): { eager: NodeId[]; lazy: NodeId[] } {
    const tree = this.plumtree.treeOf(origin);
    return { eager: tree.eager.sort(), lazy: tree.lazy.sort() };
  }

  prune(from: NodeId, origin?: NodeId): void {
    this.sends(() => this.plumtree.onMessage(from, origin ? { type: 'prune', origin } : { type: 'prune' }));
  }
}

describe('Plumtree', () => {
  it('starts every new neighbour eager, in the tree of any origin', () => {
    const tree = new Harness([B, C]);
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.tree(O1)).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.plumtree.origins()).toEqual([]);
  });

  it("pushes a commit whole to its origin's eager peers but the sender, and announces it to the lazy ones on the next tick", () => {
    const tree = new Harness([B, C, D, E]);
    tree.prune(D, O1);
    tree.prune(E, O1);
    expect(tree.tree(O1)).toEqual({ eager: [B, C], lazy: [D, E] });
    // The other origin's tree is untouched: every link still carries its commits whole. The links'
    // roles over all trees count the trees kept (O1's only).
    expect(tree.tree(O2)).toEqual({ eager: [B, C, D, E], lazy: [] });
    expect(tree.roles()).toEqual({ eager: [B, C], lazy: [D, E] });

    const pushed = tree.sends(() => tree.plumtree.forward(envelope(id1), O1, 3, B));
    expect(pushed).toEqual([{ to: C, message: { type: 'gossip', envelope: envelope(id1), round: 3 } }]);
    expect(tree.sends(() => tree.plumtree.forward(envelope(id2), O1, 0, E))).toEqual([
      { to: B, message: { type: 'gossip', envelope: envelope(id2), round: 0 } },
      { to: C, message: { type: 'gossip', envelope: envelope(id2), round: 0 } },
    ]);
    expect(tree.sends(() => tree.plumtree.forward(envelope(id3), O2, 0, B)).map(({ to }) => to)).toEqual([
      C,
      D,
      E,
    ]);
    // One batch of announcements per lazy peer per tick; never back to the sender.
    const announced = tree.tick();
    expect(announced).toEqual([
      { to: D, message: { type: 'ihave', ids: [id1, id2], round: 0 } },
      { to: E, message: { type: 'ihave', ids: [id1], round: 0 } },
    ]);
    expect(tree.tick()).toEqual([]);
  });

  it("takes a new commit as tree path: returns true and keeps (or makes) the sender eager in its origin's tree", () => {
    const tree = new Harness([B, C]);
    tree.prune(C, O1);
    tree.prune(C, O2);
    let isNew = false;
    expect(tree.sends(() => (isNew = tree.plumtree.onGossip(C, id1, O1)))).toEqual([]);
    expect(isNew).toBe(true);
    expect(tree.tree(O1)).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.tree(O2)).toEqual({ eager: [B], lazy: [C] });
    expect(tree.plumtree.counters.gossipReceived).toBe(1);
  });

  it("prunes the sender of a duplicate from the commit's origin's tree, once, naming the origin", () => {
    const tree = new Harness([B, C]);
    tree.seen.add(id1);
    let isNew = true;
    expect(tree.sends(() => (isNew = tree.plumtree.onGossip(C, id1, O1)))).toEqual([
      { to: C, message: { type: 'prune', origin: O1 } },
    ]);
    expect(isNew).toBe(false);
    expect(tree.tree(O1)).toEqual({ eager: [B], lazy: [C] });
    expect(tree.tree(O2)).toEqual({ eager: [B, C], lazy: [] });
    // A lazy peer sending a duplicate (it grafted, or messages crossed) is not pruned again.
    expect(tree.sends(() => tree.plumtree.onGossip(C, id1, O1))).toEqual([]);
    expect(tree.plumtree.counters).toMatchObject({ duplicatesReceived: 2, prunesSent: 1 });
  });

  it('does not prune the sender of a copy of a commit that anti-entropy brought first', () => {
    const tree = new Harness([B]);
    tree.seen.add(id1);
    tree.bySync.add(id1);
    expect(tree.sends(() => tree.plumtree.onGossip(B, id1, O1))).toEqual([]);
    expect(tree.tree(O1)).toEqual({ eager: [B], lazy: [] });
    expect(tree.plumtree.counters).toMatchObject({ duplicatesReceived: 1, prunesSent: 0 });
  });

  it('takes a gossip whose body names no origin as new without touching any tree (delivery refuses it)', () => {
    const tree = new Harness([B]);
    tree.prune(B, O1);
    expect(tree.sends(() => tree.plumtree.onGossip(B, id2, undefined))).toEqual([]);
    tree.seen.add(id2);
    expect(tree.sends(() => tree.plumtree.onGossip(B, id2, undefined))).toEqual([]);
    expect(tree.tree(O1)).toEqual({ eager: [], lazy: [B] });
    expect(tree.plumtree.origins()).toEqual([O1]);
  });

  it("a prune moves the peer that sent it to lazy in the origin's tree; one without an origin, in every tree", () => {
    const tree = new Harness([B, C]);
    tree.prune(B, O1);
    expect(tree.tree(O1)).toEqual({ eager: [C], lazy: [B] });
    expect(tree.tree(O2)).toEqual({ eager: [B, C], lazy: [] });
    tree.prune(C, O2);
    // A node that keeps one tree for all origins prunes with no origin named.
    tree.prune(C);
    expect(tree.tree(O1)).toEqual({ eager: [], lazy: [B, C] });
    expect(tree.tree(O2)).toEqual({ eager: [B], lazy: [C] });
    expect(tree.roles()).toEqual({ eager: [B], lazy: [C] });
  });

  it(`keeps at most ${treesMax} trees, dropping the oldest, whose origin starts over with every link eager`, () => {
    const tree = new Harness([B, C]);
    const origins = Array.from(
      { length: treesMax + 1 },
      (_, index) => index.toString(16).padStart(16, '0') as NodeId,
    );
    for (const origin of origins) tree.prune(B, origin);
    expect(tree.plumtree.origins()).toHaveLength(treesMax);
    expect(tree.plumtree.origins()).not.toContain(origins[0]);
    expect(tree.tree(origins[0] as NodeId)).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.tree(origins[treesMax] as NodeId)).toEqual({ eager: [C], lazy: [B] });
  });

  describe('announcements of unknown commits', () => {
    function announced(): Harness {
      const tree = new Harness([B, C, D]);
      tree.prune(B, O1);
      tree.prune(C, O1);
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
      expect(tree.plumtree.counters.graftsSent).toBe(3);
      // The grafted announcer joins the tree when the commit it sends arrives: only then is the
      // commit's origin known.
      expect(tree.tree(O1)).toEqual({ eager: [D], lazy: [B, C] });
      tree.sends(() => tree.plumtree.onGossip(C, id1, O1));
      expect(tree.tree(O1)).toEqual({ eager: [C, D], lazy: [B] });
    });

    it('does not graft a commit that arrived by gossip or by anti-entropy in the meantime', () => {
      const tree = announced();
      tree.sends(() => tree.plumtree.onGossip(D, id1, O1));
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

  it("answers a graft with the applied commits it names, making the grafting peer eager in their origins' trees", () => {
    const tree = new Harness([B, C]);
    tree.prune(B, O1);
    tree.prune(B, O2);
    tree.applied.set(id1, envelope(id1));
    tree.seen.add(id2); // received but not applied: it cannot be served yet
    const answer = tree.sends(() => tree.plumtree.onMessage(B, { type: 'graft', ids: [id1, id2, id3] }));
    expect(answer).toEqual([{ to: B, message: { type: 'gossip', envelope: envelope(id1), round: 0 } }]);
    expect(tree.tree(O1)).toEqual({ eager: [B, C], lazy: [] });
    expect(tree.tree(O2)).toEqual({ eager: [C], lazy: [B] });
  });

  it('a neighbour that goes down leaves every tree and its queued announcements', () => {
    const tree = new Harness([B, C]);
    tree.prune(C, O1);
    tree.sends(() => tree.plumtree.forward(envelope(id1), O1, 0));
    tree.down(C);
    tree.down(B);
    expect(tree.roles()).toEqual({ eager: [], lazy: [] });
    expect(tree.tree(O1)).toEqual({ eager: [], lazy: [] });
    expect(tree.tick()).toEqual([]);
    // Up again: eager in every tree, announcements start afresh.
    tree.up(C);
    expect(tree.tree(O1)).toEqual({ eager: [C], lazy: [] });
    expect(tree.tick()).toEqual([]);
  });

  it('checkInvariants catches a link lost, a peer in both roles, and a link placed in neither', () => {
    const tree = new Harness([B, C]);
    tree.prune(C, O1);
    expect(() => tree.plumtree.checkInvariants(new Set([C]))).toThrow(/neighbour .* has no link/);
    const trees = (
      tree.plumtree as unknown as { trees: Map<NodeId, { eager: Set<NodeId>; lazy: Set<NodeId> }> }
    ).trees;
    const o1 = trees.get(O1) as { eager: Set<NodeId>; lazy: Set<NodeId> };
    o1.eager.add(C);
    expect(() => tree.plumtree.checkInvariants(tree.links)).toThrow(/both eager and lazy/);
    o1.eager.delete(C);
    o1.lazy.delete(C);
    expect(() => tree.plumtree.checkInvariants(tree.links)).toThrow(/does not place every link/);
    o1.lazy.add(D);
    expect(() => tree.plumtree.checkInvariants(tree.links)).toThrow(/lazy peer .* has no link/);
  });

  it('keeps its invariants under any sequence of link changes and messages', () => {
    const peers = [B, C, D, E];
    const ids = [id1, id2, id3];
    const peer = fc.constantFrom(...peers);
    const commit = fc.constantFrom(...ids);
    const origin = fc.constantFrom<NodeId | undefined>(O1, O2, undefined);
    const action = fc.oneof(
      fc.record({ kind: fc.constant('up' as const), peer }),
      fc.record({ kind: fc.constant('down' as const), peer }),
      fc.record({ kind: fc.constant('gossip' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('ihave' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('graft' as const), peer, id: commit }),
      fc.record({ kind: fc.constant('prune' as const), peer, origin }),
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
              if (linked)
                sent = tree.sends(() => tree.plumtree.onGossip(step.peer, step.id, originOf[step.id]));
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
              if (linked) tree.prune(step.peer, step.origin);
              break;
            case 'apply':
              tree.applied.set(step.id, envelope(step.id));
              sent = tree.sends(() =>
                tree.plumtree.forward(envelope(step.id), originOf[step.id] as NodeId, 0),
              );
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
