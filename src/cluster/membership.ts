import type { NodeId } from '../core/ids.js';
import { isBeat, type MemberInfo, type MemberRow, type MemberSignals, type PeerMessage } from './messages.js';
import type { ClusterEvent, ClusterOutput, ClusterTiming, Self } from './protocol.js';

export type MemberState = 'alive' | 'suspect' | 'dead';

export interface MemberView {
  info: MemberInfo;
  state: MemberState;
  /** Local time at which its heartbeat last grew. */
  progressAt: number;
  /** Measured on a direct link (NTP style): its clock minus ours. */
  clockOffsetMs?: number;
  roundTripMs?: number;
  skewed: boolean;
}

interface Link {
  upAt: number;
  lastHeardAt: number;
  /** Member → the incarnation and heartbeat of the last full row this link was sent about it. */
  told: Map<NodeId, { incarnation: number; heartbeat: number }>;
}

/**
 * A member's full row (name, URL, signals) goes to a neighbour at most once every this many of the
 * member's heartbeats (2 s); the heartbeats in between travel as beats. At 50 nodes the full rows
 * were about 1.6 KB each, most of it the version vector, and 96% of the cluster's bytes.
 */
export const fullRowEveryHeartbeats = 4;

export interface MembershipHooks {
  emit(output: ClusterOutput): void;
  now(): number;
  random(): number;
  signals(): MemberSignals;
  /** A link went away (silence, death, departure, or trimming): the other layers forget it. */
  linkLost(peer: NodeId): void;
}

/** Forgotten members remembered (their last row), so that stale gossip does not bring them back. */
const forgottenMax = 10_000;

/**
 * Membership and the overlay (DESIGN §5). Gossip-style failure detection (van Renesse, Minsky,
 * Hayden, "A Gossip-Style Failure Detection Service", 1998): every node bumps its own heartbeat and
 * gossips its member table to its neighbours; a member whose heartbeat stops growing is suspected,
 * then declared dead. A restart bumps the incarnation, which outranks any remembered heartbeat.
 * The overlay keeps at least `degree` links to alive members, and probes suspect and dead ones so
 * that a healed partition reconnects by itself.
 */
export class Membership {
  readonly members = new Map<NodeId, MemberView>();
  readonly links = new Map<NodeId, Link>();
  /**
   * The last row of each forgotten member: only a newer one (it came back, or restarted) makes it
   * a member again, so that stale gossip of it does not. Oldest dropped past `forgottenMax`.
   */
  private readonly forgotten = new Map<NodeId, { incarnation: number; heartbeat: number }>();
  private readonly connecting = new Map<string, number>();
  private seeds: string[] = [];
  private heartbeat = 0;
  private left = false;
  private nextHeartbeatAt = 0;
  private nextProbeAt = 0;
  /** Set when the table changed in a way others should hear about now, not at the next heartbeat. */
  private pushSoon = false;

  constructor(
    private readonly self: Self,
    private readonly timing: ClusterTiming,
    private readonly hooks: MembershipHooks,
  ) {}

  info(): MemberInfo {
    const info: MemberInfo = {
      id: this.self.id,
      name: this.self.name,
      url: this.self.url,
      incarnation: this.self.incarnation,
      heartbeat: this.heartbeat,
      signals: this.hooks.signals(),
    };
    if (this.self.geo) info.geo = this.self.geo;
    if (this.left) info.left = true;
    return info;
  }

  join(urls: string[]): void {
    this.seeds = [...urls];
    for (const url of urls) this.connect(url);
  }

  isLinked(peer: NodeId): boolean {
    return this.links.has(peer);
  }

  /** Returns false when the link is refused: the peer has left the cluster. */
  linkUp(peer: MemberInfo): boolean {
    const now = this.hooks.now();
    this.connecting.delete(peer.url);
    this.merge([peer]);
    if (peer.left) {
      this.hooks.emit({ type: 'disconnect', peer: peer.id });
      return false;
    }
    const link: Link = { upAt: now, lastHeardAt: now, told: new Map() };
    this.links.set(peer.id, link);
    // Tell the newcomer everything at once: joining returns the whole member list (all rows full).
    this.send(peer.id, { type: 'members', members: this.tableFor(link, this.table()) });
    return true;
  }

  connectFailed(url: string): void {
    if (this.connecting.has(url)) this.connecting.set(url, this.hooks.now() + this.timing.connectRetryMs);
  }

  linkDown(peer: NodeId): void {
    const link = this.links.get(peer);
    if (!link || !this.links.delete(peer)) return;
    // A link that closed as soon as it opened (the peer refused what this node said) is dialed
    // again no sooner than a failed connect would be: else the two would open and close it in a loop.
    const now = this.hooks.now();
    const url = this.members.get(peer)?.info.url;
    if (url && now - link.upAt < this.timing.connectRetryMs)
      this.connecting.set(url, now + this.timing.connectRetryMs);
    this.hooks.linkLost(peer);
  }

  heard(peer: NodeId): void {
    const link = this.links.get(peer);
    if (link) link.lastHeardAt = this.hooks.now();
  }

  onMessage(from: NodeId, message: PeerMessage): void {
    switch (message.type) {
      case 'members':
        this.merge(message.members);
        break;
      case 'ping':
        this.send(from, { type: 'pong', pingSentAt: message.sentAt, receivedAt: this.hooks.now() });
        break;
      case 'pong':
        this.measureClock(from, message.pingSentAt, message.receivedAt);
        break;
      default:
        break;
    }
  }

  tick(): void {
    const now = this.hooks.now();
    this.detectFailures(now);
    this.dropSilentLinks(now);
    if (now >= this.nextHeartbeatAt) {
      this.nextHeartbeatAt = now + this.timing.heartbeatIntervalMs;
      this.heartbeat += 1;
      const table = this.table();
      for (const [peer, link] of this.links) {
        this.send(peer, { type: 'members', members: this.tableFor(link, table) });
        this.send(peer, { type: 'ping', sentAt: now });
      }
      this.pushSoon = false;
    } else if (this.pushSoon) {
      this.pushSoon = false;
      const table = this.table();
      for (const [peer, link] of this.links)
        this.send(peer, { type: 'members', members: this.tableFor(link, table) });
    }
    this.maintainOverlay(now);
  }

  /** Announces the departure; the adapter closes the links once the messages are out. */
  leave(): void {
    this.left = true;
    this.heartbeat += 1;
    const members = [this.info()];
    for (const peer of this.links.keys()) this.send(peer, { type: 'members', members });
  }

  alivePeers(): NodeId[] {
    const alive: NodeId[] = [];
    for (const [id, view] of this.members) if (view.state !== 'dead') alive.push(id);
    return alive;
  }

  /** What this node gossips: itself and every member not known to be dead. */
  private table(): MemberInfo[] {
    const table = [this.info()];
    for (const view of this.members.values())
      if (view.state !== 'dead' || view.info.left) table.push(view.info);
    return table;
  }

  /**
   * The table as one link is sent it: a member's full row when this link has not had one of its
   * current incarnation, or had it `fullRowEveryHeartbeats` ago, or the member left; otherwise a beat.
   */
  private tableFor(link: Link, table: MemberInfo[]): MemberRow[] {
    return table.map((info) => {
      const told = link.told.get(info.id);
      if (
        told !== undefined &&
        told.incarnation === info.incarnation &&
        info.heartbeat - told.heartbeat < fullRowEveryHeartbeats &&
        !info.left
      )
        return { id: info.id, incarnation: info.incarnation, heartbeat: info.heartbeat };
      link.told.set(info.id, { incarnation: info.incarnation, heartbeat: info.heartbeat });
      return info;
    });
  }

  private merge(rows: MemberRow[]): void {
    const now = this.hooks.now();
    for (const row of rows) {
      if (row.id === this.self.id) continue;
      const known = this.members.get(row.id);
      let info: MemberInfo;
      if (isBeat(row)) {
        // A beat moves a member known under the same incarnation on; one of a member not known yet
        // (or restarted) waits for its full row, which its sender sends within a few heartbeats.
        if (!known || known.info.incarnation !== row.incarnation) continue;
        info = { ...known.info, heartbeat: row.heartbeat };
      } else {
        info = row;
      }
      if (!known) {
        // A departed or long-gone member learned second hand is not news.
        if (info.left) continue;
        const gone = this.forgotten.get(info.id);
        if (
          gone &&
          (info.incarnation < gone.incarnation ||
            (info.incarnation === gone.incarnation && info.heartbeat <= gone.heartbeat))
        )
          continue;
        this.forgotten.delete(info.id);
        this.members.set(info.id, { info, state: 'alive', progressAt: now, skewed: false });
        this.event({ type: 'new_neighbor', member: info.id, name: info.name, url: info.url });
        this.pushSoon = true;
        continue;
      }
      const newer =
        info.incarnation > known.info.incarnation ||
        (info.incarnation === known.info.incarnation && info.heartbeat > known.info.heartbeat);
      if (!newer) continue;
      known.info = info;
      known.progressAt = now;
      if (info.left) {
        if (known.state !== 'dead') {
          known.state = 'dead';
          this.event({ type: 'dead_neighbor', member: info.id, name: info.name, reason: 'left' });
          this.pushSoon = true;
        }
        this.drop(info.id);
      } else if (known.state !== 'alive') {
        known.state = 'alive';
        this.event({ type: 'alive', member: info.id, name: info.name });
        this.pushSoon = true;
      }
    }
  }

  private detectFailures(now: number): void {
    for (const [id, view] of this.members) {
      if (view.state === 'dead') {
        const left = view.info.left === true;
        if (now - view.progressAt > (left ? this.timing.forgetLeftAfterMs : this.timing.forgetDeadAfterMs)) {
          this.members.delete(id);
          this.forgotten.set(id, { incarnation: view.info.incarnation, heartbeat: view.info.heartbeat });
          if (this.forgotten.size > forgottenMax)
            this.forgotten.delete(this.forgotten.keys().next().value as NodeId);
          this.event({
            type: 'forgotten',
            member: id,
            name: view.info.name,
            reason: left ? 'left' : 'silent',
          });
        }
        continue;
      }
      const silentMs = now - view.progressAt;
      if (silentMs > this.timing.deadAfterMs) {
        view.state = 'dead';
        this.event({ type: 'dead_neighbor', member: id, name: view.info.name, reason: 'silent' });
        this.drop(id);
      } else if (silentMs > this.timing.suspectAfterMs && view.state === 'alive') {
        view.state = 'suspect';
        this.event({ type: 'suspect', member: id, name: view.info.name, silentMs });
      }
    }
  }

  private dropSilentLinks(now: number): void {
    for (const [peer, link] of this.links) {
      if (now - link.lastHeardAt > this.timing.linkSilenceMs) this.drop(peer);
    }
  }

  private drop(peer: NodeId): void {
    if (!this.links.has(peer)) return;
    this.hooks.emit({ type: 'disconnect', peer });
    this.linkDown(peer);
  }

  /** Keeps the degree between `degree` and `linksMax`, links to alive members only. */
  private maintainOverlay(now: number): void {
    if (this.left) return;
    for (const [url, deadline] of this.connecting) if (deadline <= now) this.connecting.delete(url);
    const candidates = [...this.members.values()].filter(
      (view) =>
        view.state === 'alive' && !this.links.has(view.info.id) && !this.connecting.has(view.info.url),
    );
    let missing = this.timing.degree - this.links.size - this.connecting.size;
    while (missing > 0 && candidates.length > 0) {
      const [pick] = candidates.splice(Math.floor(this.hooks.random() * candidates.length), 1);
      if (pick) this.connect(pick.info.url, pick.info.id);
      missing -= 1;
    }
    if (this.links.size === 0 && this.connecting.size === 0) for (const url of this.seeds) this.connect(url);
    if (this.links.size > this.timing.linksMax) {
      const extra = [...this.links.keys()];
      const [pick] = extra.splice(Math.floor(this.hooks.random() * extra.length), 1);
      if (pick) this.drop(pick);
    }
    if (now >= this.nextProbeAt) {
      this.nextProbeAt = now + this.timing.probeDeadIntervalMs;
      // Suspects too: after a partition heals, a member may still be only suspect on this side.
      const dead = [...this.members.values()].filter(
        (view) =>
          view.state !== 'alive' &&
          !view.info.left &&
          !this.links.has(view.info.id) &&
          !this.connecting.has(view.info.url),
      );
      const pick = dead[Math.floor(this.hooks.random() * dead.length)];
      if (pick) this.connect(pick.info.url, pick.info.id);
    }
  }

  private connect(url: string, peer?: NodeId): void {
    if (url === this.self.url) return;
    this.connecting.set(url, this.hooks.now() + this.timing.connectTimeoutMs);
    this.hooks.emit(peer ? { type: 'connect', url, peer } : { type: 'connect', url });
  }

  /** Clock offsets measured on the current links (their clock minus ours, whole ms). */
  linkOffsets(): Record<NodeId, number> {
    const offsets: Record<NodeId, number> = {};
    for (const peer of this.links.keys()) {
      const offset = this.members.get(peer)?.clockOffsetMs;
      if (offset !== undefined) offsets[peer] = Math.round(offset);
    }
    return offsets;
  }

  private measureClock(from: NodeId, sentAt: number, receivedAt: number): void {
    const view = this.members.get(from);
    if (!view) return;
    const now = this.hooks.now();
    const roundTripMs = Math.max(0, now - sentAt);
    // The peer read its clock halfway through the round trip, on a symmetric path.
    const offset = receivedAt - (sentAt + roundTripMs / 2);
    // Keep the estimate from the fastest recent round trip: queueing only adds error.
    if (view.roundTripMs === undefined || roundTripMs <= view.roundTripMs * 1.5) {
      view.clockOffsetMs = offset;
      view.roundTripMs = roundTripMs;
    } else {
      view.roundTripMs = view.roundTripMs * 0.9 + roundTripMs * 0.1;
    }
    // Whole milliseconds, as status shows the offset: a sub-millisecond one is no skew at a limit of 0.
    const skewed = Math.round(Math.abs(view.clockOffsetMs ?? 0)) > this.timing.maxClockSkewMs;
    if (skewed && !view.skewed)
      this.event({ type: 'clock_skew', member: from, name: view.info.name, offsetMs: Math.round(offset) });
    view.skewed = skewed;
  }

  private send(to: NodeId, message: PeerMessage): void {
    this.hooks.emit({ type: 'send', to, message });
  }

  private event(event: ClusterEvent): void {
    this.hooks.emit({ type: 'event', event });
  }
}
