import { originOfEncoded } from '../core/commit.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Envelope, PeerMessage } from './messages.js';
import type { ClusterOutput, ClusterTiming } from './protocol.js';

export interface PlumtreeHooks {
  emit(output: ClusterOutput): void;
  now(): number;
  /** Durable here: such a commit can be sent to a peer that grafts. */
  envelope(id: CommitId): Envelope | undefined;
  /** Received already: applied, handed out for applying, or waiting for a dependency. */
  seen(id: CommitId): boolean;
  /** Received first through anti-entropy, not through the tree. */
  cameBySync?(id: CommitId): boolean;
}

interface Missing {
  /** Peers that announced it, oldest first: the next one is grafted when a timer expires. */
  announcers: NodeId[];
  deadline: number;
}

/** One broadcast tree: the links a commit of its origin is pushed on whole, and those it is announced on. */
interface Tree {
  eager: Set<NodeId>;
  lazy: Set<NodeId>;
}

/**
 * Origins with a tree of their own. Past this, the oldest tree is dropped: its origin starts over
 * from every link eager, as a new origin does, and the tree is pruned again by its duplicates.
 */
export const treesMax = 1024;

/**
 * Plumtree broadcast (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS 2007). New
 * commits are pushed whole to eager peers and announced by id to lazy ones. A duplicate means two
 * tree paths reach this node, so the sender is pruned to lazy; an announced id whose commit does
 * not follow in time grafts the announcer back into the tree and pulls the commit from it.
 *
 * One tree per origin (the paper's multiple-sender variant): which links are eager is kept for
 * each node whose commits travel, and a prune or a graft changes only the tree of the commit
 * that caused it. Every node accepts writes, and a tree shared by all origins is the best tree
 * for none of them: a commit would cross the path from the shared root, and each origin's
 * shortcut, grafted when its commits came late, would be pruned again by another origin's
 * duplicates. A tree of its own lets each origin's commits settle on the fastest paths from it:
 * in a full mesh, straight to every node.
 *
 * One change to the paper: a commit is forwarded when it has been *applied*, not when it is
 * received, so that whoever gets it from us can always ask us for what it depends on. The one
 * exception, a commit that waits only for its blobs, is pushed on receipt (`push`) and announced
 * once applied (`announce`): the blob is on its way here, and a pull from us waits for it.
 */
export class Plumtree {
  /** The overlay links the broadcast runs on. */
  private readonly neighbors = new Set<NodeId>();
  /** By origin, oldest first. An origin without a tree has every link eager. */
  private readonly trees = new Map<NodeId, Tree>();
  private readonly missing = new Map<CommitId, Missing>();
  /** Announcements waiting for the next tick, one batch per peer. */
  private readonly announcements = new Map<NodeId, CommitId[]>();
  readonly counters = {
    gossipReceived: 0,
    duplicatesReceived: 0,
    ihaveReceived: 0,
    ihaveAlreadySeen: 0,
    graftsSent: 0,
    prunesSent: 0,
  };

  constructor(
    private readonly timing: ClusterTiming,
    private readonly hooks: PlumtreeHooks,
  ) {}

  /**
   * Links eager in at least one tree kept here, or every link while none is kept: the links that
   * carry whole commits of some origin pruned here. (For an origin without a tree, every link does.)
   */
  get eager(): ReadonlySet<NodeId> {
    if (this.trees.size === 0) return new Set(this.neighbors);
    const eager = new Set<NodeId>();
    for (const tree of this.trees.values()) for (const peer of tree.eager) eager.add(peer);
    return eager;
  }

  /** Links lazy in every tree kept here. */
  get lazy(): ReadonlySet<NodeId> {
    const eager = this.eager;
    return new Set([...this.neighbors].filter((peer) => !eager.has(peer)));
  }

  /** The tree of `origin`'s commits, as eager and lazy links; every link is eager for an origin without one. */
  treeOf(origin: NodeId): { eager: NodeId[]; lazy: NodeId[] } {
    const tree = this.trees.get(origin);
    return tree ? { eager: [...tree.eager], lazy: [...tree.lazy] } : { eager: [...this.neighbors], lazy: [] };
  }

  /** Origins that have a tree of their own. */
  origins(): NodeId[] {
    return [...this.trees.keys()];
  }

  neighborUp(peer: NodeId): void {
    this.neighbors.add(peer);
    for (const tree of this.trees.values()) {
      tree.lazy.delete(peer);
      tree.eager.add(peer);
    }
  }

  neighborDown(peer: NodeId): void {
    this.neighbors.delete(peer);
    for (const tree of this.trees.values()) {
      tree.eager.delete(peer);
      tree.lazy.delete(peer);
    }
    this.announcements.delete(peer);
    for (const [id, entry] of this.missing) {
      entry.announcers = entry.announcers.filter((announcer) => announcer !== peer);
      if (entry.announcers.length === 0) this.missing.delete(id);
    }
  }

  /**
   * A gossip message arrived for a commit of `origin` (undefined when its body names none: it is
   * refused on delivery). Returns true when it is new here (the caller delivers it); a duplicate
   * prunes the sender from the origin's tree.
   */
  onGossip(from: NodeId, id: CommitId, origin: NodeId | undefined): boolean {
    this.counters.gossipReceived += 1;
    if (this.hooks.seen(id)) {
      this.counters.duplicatesReceived += 1;
      // A copy that anti-entropy happened to bring first says nothing about the tree: only a
      // duplicate of a commit that came by gossip shows a redundant path.
      if (origin !== undefined && !this.hooks.cameBySync?.(id) && this.demote(origin, from)) {
        this.counters.prunesSent += 1;
        this.send(from, { type: 'prune', origin });
      }
      return false;
    }
    this.missing.delete(id);
    // The path the commit came by is the tree: keep it eager.
    if (origin !== undefined) this.promote(origin, from);
    return true;
  }

  /** The commit arrived by another way (anti-entropy): stop waiting for it. */
  received(id: CommitId): void {
    this.missing.delete(id);
  }

  onMessage(from: NodeId, message: PeerMessage): void {
    switch (message.type) {
      case 'ihave':
        for (const id of message.ids) {
          this.counters.ihaveReceived += 1;
          if (this.hooks.seen(id)) {
            this.counters.ihaveAlreadySeen += 1;
            continue;
          }
          const entry = this.missing.get(id);
          if (entry) {
            if (!entry.announcers.includes(from)) entry.announcers.push(from);
          } else {
            this.missing.set(id, {
              announcers: [from],
              deadline: this.hooks.now() + this.timing.graftTimeoutMs,
            });
          }
        }
        break;
      case 'graft':
        for (const id of message.ids) {
          const envelope = this.hooks.envelope(id);
          if (!envelope) continue;
          const origin = originOfEncoded(envelope.body);
          if (origin !== undefined) this.promote(origin, from);
          this.send(from, { type: 'gossip', envelope, round: 0 });
        }
        break;
      case 'prune':
        // A prune without an origin (from a node that keeps one tree for all) prunes every tree.
        if (message.origin !== undefined) this.demote(message.origin, from);
        else for (const origin of this.trees.keys()) this.demote(origin, from);
        break;
      default:
        break;
    }
  }

  /** Pushes an applied commit of `origin` on: whole to eager peers, by id to lazy ones, never back to `from`. */
  forward(envelope: Envelope, origin: NodeId, round: number, from?: NodeId): void {
    this.push(envelope, origin, round, from);
    this.announce(envelope.id, origin, from);
  }

  /** The eager half of `forward`: the whole commit to every eager peer of its origin's tree but `from`. */
  push(envelope: Envelope, origin: NodeId, round: number, from?: NodeId): void {
    const eager = this.trees.get(origin)?.eager ?? this.neighbors;
    for (const peer of eager) {
      if (peer !== from) this.send(peer, { type: 'gossip', envelope, round });
    }
  }

  /** The lazy half of `forward`: the id to every lazy peer of its origin's tree but `from`, batched until the next tick. */
  announce(id: CommitId, origin: NodeId, from?: NodeId): void {
    const lazy = this.trees.get(origin)?.lazy;
    if (!lazy) return;
    for (const peer of lazy) {
      if (peer === from) continue;
      const queued = this.announcements.get(peer);
      if (queued) queued.push(id);
      else this.announcements.set(peer, [id]);
    }
  }

  tick(): void {
    for (const [peer, ids] of this.announcements) {
      this.send(peer, { type: 'ihave', ids, round: 0 });
    }
    this.announcements.clear();
    const now = this.hooks.now();
    const grafts = new Map<NodeId, CommitId[]>();
    for (const [id, entry] of this.missing) {
      if (entry.deadline > now) continue;
      if (this.hooks.seen(id)) {
        this.missing.delete(id);
        continue;
      }
      const announcer = entry.announcers.shift();
      if (announcer === undefined) {
        this.missing.delete(id);
        continue;
      }
      entry.deadline = now + this.timing.graftRetryMs;
      const ids = grafts.get(announcer);
      if (ids) ids.push(id);
      else grafts.set(announcer, [id]);
    }
    // The announcer joins the tree here when the commit it sends in answer arrives (onGossip):
    // only then is the commit's origin, and so its tree, known.
    for (const [peer, ids] of grafts) {
      this.counters.graftsSent += 1;
      this.send(peer, { type: 'graft', ids });
    }
  }

  /** STYLE §13: checked by the simulator after every step. */
  checkInvariants(links: ReadonlySet<NodeId> | ReadonlyMap<NodeId, unknown>): void {
    for (const peer of this.neighbors)
      if (!links.has(peer)) throw new Error(`invariant: neighbour ${peer} has no link`);
    if (this.trees.size > treesMax)
      throw new Error(`invariant: ${this.trees.size} trees, more than ${treesMax}`);
    for (const [origin, tree] of this.trees) {
      for (const peer of tree.eager) {
        if (tree.lazy.has(peer))
          throw new Error(`invariant: ${peer} is both eager and lazy in ${origin}'s tree`);
        if (!this.neighbors.has(peer)) throw new Error(`invariant: eager peer ${peer} has no link`);
      }
      for (const peer of tree.lazy)
        if (!this.neighbors.has(peer)) throw new Error(`invariant: lazy peer ${peer} has no link`);
      if (tree.eager.size + tree.lazy.size !== this.neighbors.size)
        throw new Error(`invariant: ${origin}'s tree does not place every link`);
    }
  }

  /** Makes `peer` eager in `origin`'s tree. */
  private promote(origin: NodeId, peer: NodeId): void {
    if (!this.neighbors.has(peer)) return;
    const tree = this.trees.get(origin);
    if (!tree) return; // every link is eager already
    tree.lazy.delete(peer);
    tree.eager.add(peer);
  }

  /** Makes `peer` lazy in `origin`'s tree; false when it was not eager there. */
  private demote(origin: NodeId, peer: NodeId): boolean {
    if (!this.neighbors.has(peer)) return false;
    const tree = this.tree(origin);
    if (!tree.eager.delete(peer)) return false;
    tree.lazy.add(peer);
    return true;
  }

  private tree(origin: NodeId): Tree {
    let tree = this.trees.get(origin);
    if (!tree) {
      if (this.trees.size >= treesMax) {
        const oldest = this.trees.keys().next().value as NodeId;
        this.trees.delete(oldest);
      }
      tree = { eager: new Set(this.neighbors), lazy: new Set() };
      this.trees.set(origin, tree);
    }
    return tree;
  }

  private send(to: NodeId, message: PeerMessage): void {
    this.hooks.emit({ type: 'send', to, message });
  }
}
