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

/**
 * Plumtree broadcast (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS 2007). New
 * commits are pushed whole to eager peers and announced by id to lazy ones. A duplicate means two
 * tree paths reach this node, so the sender is pruned to lazy; an announced id whose commit does
 * not follow in time grafts the announcer back into the tree and pulls the commit from it.
 *
 * One change to the paper: a commit is forwarded when it has been *applied*, not when it is
 * received, so that whoever gets it from us can always ask us for what it depends on. The one
 * exception, a commit that waits only for its blobs, is pushed on receipt (`push`) and announced
 * once applied (`announce`): the blob is on its way here, and a pull from us waits for it.
 */
export class Plumtree {
  readonly eager = new Set<NodeId>();
  readonly lazy = new Set<NodeId>();
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

  neighborUp(peer: NodeId): void {
    this.lazy.delete(peer);
    this.eager.add(peer);
  }

  neighborDown(peer: NodeId): void {
    this.eager.delete(peer);
    this.lazy.delete(peer);
    this.announcements.delete(peer);
    for (const [id, entry] of this.missing) {
      entry.announcers = entry.announcers.filter((announcer) => announcer !== peer);
      if (entry.announcers.length === 0) this.missing.delete(id);
    }
  }

  /**
   * A gossip message arrived. Returns true when it is new here (the caller delivers it); a
   * duplicate prunes the sender.
   */
  onGossip(from: NodeId, id: CommitId): boolean {
    this.counters.gossipReceived += 1;
    if (this.hooks.seen(id)) {
      this.counters.duplicatesReceived += 1;
      // A copy that anti-entropy happened to bring first says nothing about the tree: only a
      // duplicate of a commit that came by gossip shows a redundant path.
      if (!this.hooks.cameBySync?.(id) && this.eager.delete(from)) {
        this.lazy.add(from);
        this.counters.prunesSent += 1;
        this.send(from, { type: 'prune' });
      }
      return false;
    }
    this.missing.delete(id);
    // The path the commit came by is the tree: keep it eager.
    this.lazy.delete(from);
    this.eager.add(from);
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
        this.lazy.delete(from);
        this.eager.add(from);
        for (const id of message.ids) {
          const envelope = this.hooks.envelope(id);
          if (envelope) this.send(from, { type: 'gossip', envelope, round: 0 });
        }
        break;
      case 'prune':
        if (this.eager.delete(from)) this.lazy.add(from);
        break;
      default:
        break;
    }
  }

  /** Pushes an applied commit on: whole to eager peers, by id to lazy ones, never back to `from`. */
  forward(envelope: Envelope, round: number, from?: NodeId): void {
    this.push(envelope, round, from);
    this.announce(envelope.id, from);
  }

  /** The eager half of `forward`: the whole commit to every eager peer but `from`. */
  push(envelope: Envelope, round: number, from?: NodeId): void {
    for (const peer of this.eager) {
      if (peer !== from) this.send(peer, { type: 'gossip', envelope, round });
    }
  }

  /** The lazy half of `forward`: the id to every lazy peer but `from`, batched until the next tick. */
  announce(id: CommitId, from?: NodeId): void {
    for (const peer of this.lazy) {
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
    for (const [peer, ids] of grafts) {
      this.lazy.delete(peer);
      this.eager.add(peer);
      this.counters.graftsSent += 1;
      this.send(peer, { type: 'graft', ids });
    }
  }

  /** STYLE §13: checked by the simulator after every step. */
  checkInvariants(links: ReadonlySet<NodeId> | ReadonlyMap<NodeId, unknown>): void {
    for (const peer of this.eager) {
      if (this.lazy.has(peer)) throw new Error(`invariant: ${peer} is both eager and lazy`);
      if (!links.has(peer)) throw new Error(`invariant: eager peer ${peer} has no link`);
    }
    for (const peer of this.lazy)
      if (!links.has(peer)) throw new Error(`invariant: lazy peer ${peer} has no link`);
  }

  private send(to: NodeId, message: PeerMessage): void {
    this.hooks.emit({ type: 'send', to, message });
  }
}
