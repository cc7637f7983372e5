import { originOfEncoded } from '../core/commit.js';
import type { CommitId, NodeId } from '../core/ids.js';
import { Delivery } from './delivery.js';
import { Membership, type MemberView } from './membership.js';
import {
  type MemberSignals,
  meanResponseMsMax,
  type PeerMessage,
  replicationDelayMsMax,
} from './messages.js';
import { Plumtree } from './plumtree.js';
import {
  type ClusterInput,
  type ClusterOptions,
  type ClusterOutput,
  type ClusterTiming,
  defaultTiming,
  type Self,
} from './protocol.js';

export interface MemberStatus {
  id: NodeId;
  name: string;
  url: string;
  state: 'alive' | 'suspect' | 'dead';
  self: boolean;
  left: boolean;
  heartbeatAgeMs: number;
  revision: Record<string, number>;
  replicationDelayMs: number;
  meanResponseMs: number;
  errorRate: number;
  geo: { lat: number; lon: number } | null;
  clockOffsetMs: number | null;
  /** 1 when the offset was measured on a link to the member, n when summed over a path of n links; null when unknown. */
  clockOffsetHops: number | null;
  roundTripMs: number | null;
  clockSkewed: boolean;
  linked: boolean;
  links: { eager: NodeId[]; lazy: NodeId[] };
}

/**
 * A node's whole cluster protocol as one state machine: membership and overlay, Plumtree
 * broadcast, causal delivery and anti-entropy. `step(input)` returns the outputs for the adapter;
 * it never does I/O, reads the OS clock or draws OS randomness (STYLE §3–4).
 */
export class Replica {
  readonly timing: ClusterTiming;
  readonly membership: Membership;
  readonly plumtree: Plumtree;
  readonly delivery: Delivery;
  readonly self: Self;
  /** Messages handed to the adapter, by type (messages per commit = these over commits). */
  readonly sent: Record<string, number> = {};
  private outputs: ClusterOutput[] = [];

  constructor(private readonly options: ClusterOptions) {
    this.self = options.self;
    this.timing = { ...defaultTiming, ...options.timing };
    const emit = (output: ClusterOutput) => this.emit(output);
    this.delivery = new Delivery(options.self.id, options.storage, this.timing, {
      emit,
      now: options.now,
      random: options.random,
      linkedPeers: () => [...this.membership.links.keys()],
    });
    this.plumtree = new Plumtree(this.timing, {
      emit,
      now: options.now,
      envelope: (id) => options.storage.envelope(id),
      seen: (id) => this.delivery.seen(id),
      cameBySync: (id) => this.delivery.cameBySync(id),
    });
    this.membership = new Membership(options.self, this.timing, {
      emit,
      now: options.now,
      random: options.random,
      signals: () => this.signals(),
      linkLost: (peer) => {
        this.plumtree.neighborDown(peer);
        this.delivery.linkDown(peer);
      },
    });
  }

  step(input: ClusterInput): ClusterOutput[] {
    this.outputs = [];
    this.handle(input);
    const outputs = this.outputs;
    this.outputs = [];
    return outputs;
  }

  status(): MemberStatus[] {
    const now = this.options.now();
    const selfInfo = this.membership.info();
    const rows: MemberStatus[] = [
      {
        ...this.statusOf(selfInfo, 'alive', 0),
        self: true,
        clockOffsetMs: 0,
        clockOffsetHops: 0,
        // No link to itself, so no ping: null, as for any member it has no link to.
        roundTripMs: null,
        linked: false,
      },
    ];
    const offsets = this.clockOffsets();
    for (const view of this.membership.members.values())
      rows.push(this.viewStatus(view, now, offsets.get(view.info.id)));
    return rows;
  }

  /**
   * Every member's clock offset that can be known here: measured on a link, or else summed along
   * the fewest links whose ends measured them and gossiped it (signals.clockOffsets). Each link adds
   * up to half its round trip of error.
   */
  private clockOffsets(): Map<NodeId, { offsetMs: number; hops: number }> {
    const known = new Map<NodeId, { offsetMs: number; hops: number }>();
    const order: NodeId[] = [];
    for (const [peer, offsetMs] of Object.entries(this.membership.linkOffsets()) as Array<[NodeId, number]>) {
      known.set(peer, { offsetMs, hops: 1 });
      order.push(peer);
    }
    for (const via of order) {
      const base = known.get(via) as { offsetMs: number; hops: number };
      const theirs = this.membership.members.get(via)?.info.signals.clockOffsets ?? {};
      for (const [member, offsetMs] of Object.entries(theirs) as Array<[NodeId, number]>) {
        if (member === this.self.id || known.has(member) || !this.membership.members.has(member)) continue;
        known.set(member, { offsetMs: base.offsetMs + offsetMs, hops: base.hops + 1 });
        order.push(member);
      }
    }
    return known;
  }

  checkInvariants(): void {
    this.plumtree.checkInvariants(this.membership.links);
    this.delivery.checkInvariants();
  }

  private handle(input: ClusterInput): void {
    switch (input.type) {
      case 'tick':
        this.membership.tick();
        this.delivery.tick();
        this.plumtree.tick();
        break;
      case 'join':
        this.membership.join(input.urls);
        break;
      case 'link_up':
        if (input.peer.id === this.self.id) {
          this.emit({ type: 'disconnect', peer: input.peer.id });
          break;
        }
        if (this.membership.isLinked(input.peer.id)) break;
        if (!this.membership.linkUp(input.peer)) break;
        this.plumtree.neighborUp(input.peer.id);
        this.delivery.linkUp(input.peer.id);
        break;
      case 'link_down':
        this.membership.linkDown(input.peer);
        break;
      case 'connect_failed':
        this.membership.connectFailed(input.url);
        break;
      case 'message':
        this.onMessage(input.from, input.message);
        break;
      case 'committed':
        this.delivery.committed(input.envelope.id as CommitId);
        this.plumtree.forward(input.envelope, this.self.id, 0);
        break;
      case 'applied': {
        const entry = this.delivery.applied(input.id);
        if (entry?.source.kind !== 'gossip') break;
        // Pushed already while its blobs were on their way: only the announcements are left.
        const origin = entry.commit.origin;
        if (entry.forwarded) this.plumtree.announce(entry.envelope.id, origin, entry.from);
        else this.plumtree.forward(entry.envelope, origin, entry.source.round + 1, entry.from);
        break;
      }
      case 'apply_failed':
        this.delivery.applyFailed(input.id);
        break;
      case 'blobs_fetched':
        this.delivery.blobsFetched(input.hashes, input.ok);
        break;
      case 'leave':
        this.membership.leave();
        break;
      default: {
        const unreachable: never = input;
        throw new Error(`unknown input ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private onMessage(from: NodeId, message: PeerMessage): void {
    // Only linked peers speak; anything else is a stray from a link already dropped.
    if (!this.membership.isLinked(from)) return;
    this.membership.heard(from);
    switch (message.type) {
      case 'members':
      case 'ping':
      case 'pong':
        this.membership.onMessage(from, message);
        break;
      case 'gossip': {
        const { envelope, round } = message;
        const origin = originOfEncoded(envelope.body);
        if (!this.plumtree.onGossip(from, envelope.id, origin)) break;
        if (
          this.delivery.receive(envelope, from, { kind: 'gossip', round }, true) &&
          origin !== undefined &&
          this.delivery.forwardEarly(envelope.id)
        )
          this.plumtree.push(envelope, origin, round + 1, from);
        break;
      }
      case 'ihave':
      case 'graft':
      case 'prune':
        this.plumtree.onMessage(from, message);
        break;
      case 'sync':
        this.delivery.onSync(from, message.revision);
        break;
      case 'sync_batch':
        for (const envelope of message.envelopes) this.plumtree.received(envelope.id as CommitId);
        this.delivery.onSyncBatch(from, message.envelopes, message.more);
        break;
      default: {
        const unreachable: never = message;
        throw new Error(`unknown message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private signals(): MemberSignals {
    const serving = this.options.serving?.() ?? { meanResponseMs: 0, errorRate: 0 };
    const clockOffsets = this.membership.linkOffsets();
    return {
      revision: this.options.storage.revision(),
      // Clamped to what peers accept (messages.ts): a signal out of range would make the whole
      // members message malformed.
      replicationDelayMs: Math.min(Math.round(this.delivery.replicationDelayMs()), replicationDelayMsMax),
      meanResponseMs: Math.min(Math.round(serving.meanResponseMs * 1000) / 1000, meanResponseMsMax),
      errorRate: Math.round(serving.errorRate * 10_000) / 10_000,
      eager: [...this.plumtree.eager],
      lazy: [...this.plumtree.lazy],
      ...(Object.keys(clockOffsets).length > 0 ? { clockOffsets } : {}),
    };
  }

  private viewStatus(
    view: MemberView,
    now: number,
    clock: { offsetMs: number; hops: number } | undefined,
  ): MemberStatus {
    const linked = this.membership.isLinked(view.info.id);
    return {
      ...this.statusOf(view.info, view.state, Math.max(0, now - view.progressAt)),
      self: false,
      clockOffsetMs: clock ? Math.round(clock.offsetMs) : null,
      clockOffsetHops: clock?.hops ?? null,
      roundTripMs: linked && view.roundTripMs !== undefined ? Math.round(view.roundTripMs * 10) / 10 : null,
      // Measured here: the flag the skew event was raised on; estimated: the estimate against the limit.
      clockSkewed: linked
        ? view.skewed
        : Math.round(Math.abs(clock?.offsetMs ?? 0)) > this.timing.maxClockSkewMs,
      linked,
    };
  }

  private statusOf(
    info: ReturnType<Membership['info']>,
    state: MemberStatus['state'],
    heartbeatAgeMs: number,
  ): Omit<MemberStatus, 'self' | 'clockOffsetMs' | 'clockOffsetHops' | 'roundTripMs' | 'linked'> & {
    clockSkewed: boolean;
  } {
    return {
      id: info.id,
      name: info.name,
      url: info.url,
      state,
      left: info.left === true,
      heartbeatAgeMs,
      revision: info.signals.revision,
      replicationDelayMs: info.signals.replicationDelayMs,
      meanResponseMs: info.signals.meanResponseMs,
      errorRate: info.signals.errorRate,
      geo: info.geo ?? null,
      clockSkewed: false,
      links: { eager: info.signals.eager, lazy: info.signals.lazy },
    };
  }

  private emit(output: ClusterOutput): void {
    if (output.type === 'send') this.sent[output.message.type] = (this.sent[output.message.type] ?? 0) + 1;
    this.outputs.push(output);
  }
}
