import { type MemberInfo, type PeerMessage, parseHello, parsePeerMessage } from '../cluster/messages.js';
import type { ClusterInput } from '../cluster/protocol.js';
import type { NodeId } from '../core/ids.js';
import type { Prng } from './prng.js';
import type { Scheduler } from './scheduler.js';

export interface NetworkConfig {
  /** One-way latency of each pair of nodes, drawn once per pair from this range. */
  latencyMs: [number, number];
  /** Added to each message independently, so messages on one link overtake each other. */
  jitterMs: number;
  lossRate: number;
  duplicateRate: number;
  /** Serialisation speed of a normal directed link; slow links are set one by one. */
  bytesPerMs: number;
  /** A blob pull from an unreachable peer fails after this long (the adapter's connect timeout). */
  pullTimeoutMs: number;
}

/** What the network needs of the nodes it connects. */
export interface NetworkHost {
  /** The running incarnation of a node, undefined while it is down. */
  incarnation(node: number): number | undefined;
  /** What the node says of itself in its hello. */
  info(node: number): MemberInfo;
  nodeId(node: number): NodeId;
  deliver(node: number, input: ClusterInput): void;
  /** The blob's bytes if the node holds it now. */
  blob(node: number, hash: string): Buffer | undefined;
  /** Calls `ready` once the node's own pulls of these blobs, if any are under way, have ended. */
  whenBlobs(node: number, hashes: string[], ready: () => void): void;
}

interface Link {
  ends: [number, number];
  incarnations: [number, number];
  /** Each end stays open until that node closed it, got link_down, or crashed. */
  open: [boolean, boolean];
}

/** One serialised message, decoded by its receiver as a real link's would be. */
interface Packet {
  type: PeerMessage['type'];
  text: string;
}

export interface TrafficFigures {
  sent: Record<string, { messages: number; bytes: number }>;
  delivered: Record<string, number>;
  dropped: { noLink: number; partition: number; loss: number; closed: number };
  duplicated: number;
}

/**
 * The virtual network between simulated nodes. A message travels on the link between two nodes
 * (WebSocket links in the server): it waits for the directed link to finish serialising what was
 * sent before it (bytes / bandwidth), then takes the pair's latency plus jitter, and may be lost or
 * duplicated. A partition drops everything between its sides while links stay open, as a broken
 * route does to TCP; a crashed node's peers hear nothing and must notice the silence themselves.
 * Every message goes through JSON and `parsePeerMessage`, as on a real link.
 */
export class Network {
  private readonly latency: number[][];
  private readonly links = new Map<number, Link>();
  private readonly busyUntil = new Map<number, number>();
  private readonly slow = new Map<number, number>();
  private group: number[];
  private readonly urls = new Map<string, number>();
  private readonly ids = new Map<string, number>();
  readonly figures: TrafficFigures = {
    sent: {},
    delivered: {},
    dropped: { noLink: 0, partition: 0, loss: 0, closed: 0 },
    duplicated: 0,
  };

  constructor(
    private readonly size: number,
    private readonly config: NetworkConfig,
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly host: NetworkHost,
  ) {
    this.latency = Array.from({ length: size }, () => new Array<number>(size).fill(0));
    for (let a = 0; a < size; a += 1)
      for (let b = a + 1; b < size; b += 1) {
        const ms = prng.between(config.latencyMs[0], config.latencyMs[1]);
        (this.latency[a] as number[])[b] = ms;
        (this.latency[b] as number[])[a] = ms;
      }
    this.group = new Array<number>(size).fill(0);
  }

  register(node: number, url: string, id: NodeId): void {
    this.urls.set(url, node);
    this.ids.set(id, node);
  }

  setLoss(lossRate: number, duplicateRate: number): void {
    this.config.lossRate = lossRate;
    this.config.duplicateRate = duplicateRate;
  }

  /** Nodes in different groups cannot reach each other; a node in no group is cut off from all. */
  partition(groups: number[][]): void {
    this.group = this.group.map((_, node) => -1 - node);
    for (const [index, members] of groups.entries()) for (const node of members) this.group[node] = index;
  }

  heal(): void {
    this.group = this.group.map(() => 0);
    this.slow.clear();
  }

  setSlow(a: number, b: number, bytesPerMs: number): void {
    this.slow.set(this.directed(a, b), bytesPerMs);
    this.slow.set(this.directed(b, a), bytesPerMs);
  }

  reachable(a: number, b: number): boolean {
    return this.group[a] === this.group[b];
  }

  send(from: number, to: NodeId, message: PeerMessage): void {
    const packet = this.packet(message);
    const sent = this.figures.sent[packet.type] ?? { messages: 0, bytes: 0 };
    this.figures.sent[packet.type] = sent;
    sent.messages += 1;
    sent.bytes += packet.text.length;
    const target = this.ids.get(to);
    const link = target === undefined ? undefined : this.links.get(this.pair(from, target));
    if (target === undefined || !link || !link.open[link.ends.indexOf(from)]) {
      this.figures.dropped.noLink += 1;
      return;
    }
    if (!this.reachable(from, target)) {
      this.figures.dropped.partition += 1;
      return;
    }
    if (this.prng.chance(this.config.lossRate)) {
      this.figures.dropped.loss += 1;
      return;
    }
    const onWire = this.transmit(from, target, packet.text.length);
    const deliver = () => this.arrive(link, from, target, packet);
    this.scheduler.at(onWire + this.delay(from, target), deliver);
    if (this.prng.chance(this.config.duplicateRate)) {
      this.figures.duplicated += 1;
      this.scheduler.at(onWire + this.delay(from, target), deliver);
    }
  }

  /** Dials the node at `url`: a link after one round trip, unless one exists or the target is unreachable. */
  connect(from: number, url: string): void {
    const target = this.urls.get(url);
    if (target === undefined || target === from) return;
    const key = this.pair(from, target);
    if (this.links.has(key) || !this.reachable(from, target) || this.host.incarnation(target) === undefined)
      return;
    const dialer = this.host.incarnation(from);
    const roundTrip = this.delay(from, target) + this.delay(target, from);
    this.scheduler.after(roundTrip, () => {
      const accepter = this.host.incarnation(target);
      if (this.host.incarnation(from) !== dialer || dialer === undefined || accepter === undefined) return;
      if (this.links.has(key) || !this.reachable(from, target)) return;
      this.links.set(key, { ends: [from, target], incarnations: [dialer, accepter], open: [true, true] });
      const dialerInfo = hello(this.host.info(from));
      const accepterInfo = hello(this.host.info(target));
      this.host.deliver(from, { type: 'link_up', peer: accepterInfo });
      this.host.deliver(target, { type: 'link_up', peer: dialerInfo });
    });
  }

  /** Closes the link: the closer hears link_down at once, the other end one trip later. */
  disconnect(from: number, peer: NodeId): void {
    const target = this.ids.get(peer);
    if (target === undefined) return;
    const key = this.pair(from, target);
    const link = this.links.get(key);
    if (!link) return;
    const side = link.ends.indexOf(from);
    if (!link.open[side] || link.incarnations[side] !== this.host.incarnation(from)) return;
    this.links.delete(key);
    link.open[side] = false;
    this.scheduler.after(0, () => this.linkDown(link, from, target));
    this.scheduler.after(this.delay(from, target), () => this.linkDown(link, target, from));
  }

  /** A crashed node's ends of its links die; its peers' ends stay open until they give up on them. */
  crash(node: number): void {
    for (const [key, link] of this.links) {
      const side = link.ends.indexOf(node);
      if (side < 0) continue;
      link.open[side] = false;
      if (!link.open[1 - side]) this.links.delete(key);
    }
  }

  /**
   * Pulls blobs from `peer` as the adapter does over HTTP: a blob the peer is itself pulling is
   * served once it is there (the blob route waits so); the pull stops at the first one the peer lacks.
   */
  fetchBlobs(
    from: number,
    peer: NodeId,
    hashes: string[],
    done: (found: Array<[string, Buffer]>, ok: boolean) => void,
  ): void {
    const target = this.ids.get(peer);
    const fail = () => this.scheduler.after(this.config.pullTimeoutMs, () => done([], false));
    if (target === undefined || !this.reachable(from, target) || this.host.incarnation(target) === undefined)
      return void fail();
    const serve = () => {
      if (!this.reachable(from, target) || this.host.incarnation(target) === undefined) return void fail();
      const found: Array<[string, Buffer]> = [];
      let ok = true;
      for (const hash of hashes) {
        const bytes = this.host.blob(target, hash);
        if (!bytes) {
          ok = false;
          break;
        }
        found.push([hash, bytes]);
      }
      const bytes = found.reduce((sum, [, data]) => sum + data.length, 0);
      const onWire = this.transmit(target, from, bytes);
      this.scheduler.at(onWire + this.delay(target, from), () => {
        if (!this.reachable(from, target)) return void fail();
        done(found, ok);
      });
    };
    this.scheduler.after(this.delay(from, target), () => {
      if (!this.reachable(from, target) || this.host.incarnation(target) === undefined) return void fail();
      this.host.whenBlobs(target, hashes, serve);
    });
  }

  private arrive(link: Link, from: number, to: number, packet: Packet): void {
    const side = link.ends.indexOf(to);
    if (!link.open[side] || this.host.incarnation(to) !== link.incarnations[side]) {
      this.figures.dropped.closed += 1;
      return;
    }
    if (!this.reachable(from, to)) {
      this.figures.dropped.partition += 1;
      return;
    }
    this.figures.delivered[packet.type] = (this.figures.delivered[packet.type] ?? 0) + 1;
    this.host.deliver(to, { type: 'message', from: this.host.nodeId(from), message: decode(packet.text) });
  }

  private linkDown(link: Link, node: number, peer: number): void {
    const side = link.ends.indexOf(node);
    if (this.host.incarnation(node) !== link.incarnations[side]) return;
    link.open[side] = false;
    // A newer link between the pair already replaced this one in the node's view.
    if (this.links.has(this.pair(node, peer))) return;
    this.host.deliver(node, { type: 'link_down', peer: this.host.nodeId(peer) });
  }

  /** When the last byte of `bytes` leaves `from` towards `to`, queued behind earlier messages. */
  private transmit(from: number, to: number, bytes: number): number {
    const key = this.directed(from, to);
    const start = Math.max(this.scheduler.now, this.busyUntil.get(key) ?? 0);
    const end = start + bytes / (this.slow.get(key) ?? this.config.bytesPerMs);
    this.busyUntil.set(key, end);
    return end;
  }

  private delay(from: number, to: number): number {
    return (
      Math.max(0.1, (this.latency[from] as number[])[to] as number) + this.prng.float() * this.config.jitterMs
    );
  }

  private packet(message: PeerMessage): Packet {
    return { type: message.type, text: JSON.stringify(message) };
  }

  private pair(a: number, b: number): number {
    return a < b ? a * this.size + b : b * this.size + a;
  }

  private directed(from: number, to: number): number {
    return from * this.size + to;
  }
}

function decode(text: string): PeerMessage {
  return parsePeerMessage(JSON.parse(text));
}

/** What a peer says of itself, through JSON and `parseHello` as on a real link. */
function hello(member: MemberInfo): MemberInfo {
  const text = JSON.stringify({ type: 'hello', member, proof: '0'.repeat(64) });
  return deepFreeze(parseHello(JSON.parse(text)).member);
}

/** What a peer says of itself in its hello is kept as its member row: frozen, any mutation of it throws. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
