import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import WebSocket from 'ws';
import { StrataError } from '../core/errors.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Store, WriteResult } from '../store/store.js';
import { LinkAuth } from './link-auth.js';
import type { Hello } from './messages.js';
import { linkMessageBytesMax, PeerLink, type RefusalReason } from './peer-link.js';
import type { ClusterEvent, ClusterOutput, ClusterTiming, Self } from './protocol.js';
import { type MemberStatus, Replica } from './replica.js';

export interface ClusterServiceOptions {
  store: Store;
  self: Self;
  /** Without a key the node runs alone and refuses every peer. */
  clusterKey?: string;
  join: string[];
  timing?: Partial<ClusterTiming>;
  objectBytesMax: number;
  serving(): { meanResponseMs: number; errorRate: number };
  log: { info(object: object, message: string): void; warn(object: object, message: string): void };
}

/** A blob pull that has not finished by then is abandoned (the commit waits; anti-entropy retries). */
const blobPullTimeoutMs = 10 * 60 * 1000;
/**
 * A peer's pull of a blob this node is itself pulling waits this long for it: a commit that waits
 * only for its blobs is pushed on before they arrive (Plumtree `push`), so its receivers ask early.
 */
const arrivingBlobWaitMs = 60_000;
/** After `leave`, time for the announcement to reach the neighbours before the links close. */
const leaveFlushMs = 300;
/** How long a leaving node waits for a peer to hold all its commits before it goes anyway. */
const leaveHandOffMs = 10_000;
/** How long after starting without --join a node that was in a cluster may have no link before it says so. */
const aloneWarningMs = 15_000;

/** Counts on peer links in each direction. */
export interface Traffic {
  sent: number;
  received: number;
}

export interface ClusterCounters {
  refused: Record<RefusalReason, number>;
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  blobsPulled: number;
  blobPullsFailed: number;
}

/**
 * The thin adapter around the cluster protocol (STYLE §3): it owns the WebSocket links, the tick
 * timer, HTTP blob pulls and the store, and feeds what happens to `Replica.step`, carrying out what
 * comes back. No protocol decision is taken here.
 */
export class ClusterService extends EventEmitter<{ event: [ClusterEvent & { at: string }] }> {
  readonly replica: Replica;
  readonly counters: ClusterCounters = {
    refused: { unauthenticated: 0, malformed: 0, timeout: 0, self: 0, backlog: 0 },
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    blobsPulled: 0,
    blobPullsFailed: 0,
  };
  private readonly auth: LinkAuth | undefined;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly open = new Set<PeerLink>();
  /**
   * Why the last dial of each URL failed (and since when it has been failing, for status), and why
   * each refused peer was refused: a failure is
   * logged when its reason changes, not at every retry (once a second, for as long as it lasts).
   */
  private readonly dialTrouble = new Map<string, { reason: string; since: number }>();
  private readonly refusedPeers = new Map<string, string>();
  /** Set once a peer was found holding more of this node's own commits than it has (checkOwnHistory). */
  private staleHistory = false;
  /** Set once checkAlone has looked. */
  private aloneWarned = false;
  /** Blob hash → settles when this node's pull of it ends (whether or not it arrived). */
  private readonly arriving = new Map<string, { promise: Promise<void>; resolve(): void }>();
  /** Hashes whose damaged copies are being brought again from peers. */
  private readonly healing = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onDurable = (results: WriteResult[]) => {
    for (const result of results) {
      if (!result.local) continue;
      this.step({ type: 'committed', envelope: this.options.store.envelopeOf(result.commit, result.body) });
    }
  };

  constructor(private readonly options: ClusterServiceOptions) {
    super();
    this.setMaxListeners(0);
    this.auth = options.clusterKey ? new LinkAuth(options.clusterKey, Date.now) : undefined;
    const store = options.store;
    this.replica = new Replica({
      self: options.self,
      storage: {
        revision: () => store.revision(),
        hasCommit: (id) => store.hasCommit(id),
        hasBlob: (hash) => store.blobs.has(hash),
        envelope: (id) => store.envelope(id),
        missingFrom: (revision, limits) => store.missingFrom(revision, limits),
      },
      now: Date.now,
      random: Math.random,
      serving: options.serving,
      ...(options.timing ? { timing: options.timing } : {}),
    });
  }

  get enabled(): boolean {
    return this.auth !== undefined;
  }

  start(): void {
    if (!this.auth) return;
    this.options.store.on('durable', this.onDurable);
    this.options.store.blobs.onDamage((hash) => void this.heal(hash));
    const startedAt = Date.now();
    this.timer = setInterval(() => {
      this.step({ type: 'tick' });
      this.checkOwnHistory();
      this.checkAlone(startedAt);
    }, this.replica.timing.tickIntervalMs);
    if (this.options.join.length > 0) this.step({ type: 'join', urls: this.options.join });
  }

  status(): MemberStatus[] {
    return this.replica.status();
  }

  /** URLs this node dials (seeds and known members) without a link, each with why and since when. */
  unreachable(): Array<{ url: string; reason: string; since: number }> {
    return [...this.dialTrouble].map(([url, trouble]) => ({ url, ...trouble }));
  }

  /** Headers that authenticate this node to a peer (links and pulls). */
  peerHeaders(): Record<string, string> {
    if (!this.auth) throw new StrataError('STRATA_FORBIDDEN', 'this node has no cluster key');
    return { ...this.auth.dial(this.options.self.id, this.options.self.name) };
  }

  /** Checks a peer's request headers (HTTP pulls); throws STRATA_UNAUTHORIZED. */
  verifyPeer(headers: IncomingHttpHeaders): NodeId {
    if (!this.auth) {
      this.counters.refused.unauthenticated += 1;
      throw new StrataError('STRATA_FORBIDDEN', 'this node runs without a cluster key and takes no peers');
    }
    try {
      return this.auth.verifyDial(headers).peer;
    } catch (error) {
      this.counters.refused.unauthenticated += 1;
      throw error;
    }
  }

  /**
   * Resolves once this node's own pull of `hash` has ended, or after `arrivingBlobWaitMs`; at once
   * when no pull of it is under way. The blob route calls it before answering that a blob is missing.
   */
  async blobArrival(hash: string): Promise<void> {
    const arriving = this.arriving.get(hash);
    if (!arriving) return;
    const cancel = new AbortController();
    await Promise.race([
      arriving.promise,
      delay(arrivingBlobWaitMs, undefined, { signal: cancel.signal }).catch(() => undefined),
    ]);
    cancel.abort();
  }

  /** An incoming link: its upgrade headers are checked here, and the hello answers the dialer's nonce. */
  accept(socket: WebSocket, headers: IncomingHttpHeaders): void {
    const auth = this.auth;
    let dialer: { peer: NodeId; nonce: string };
    try {
      if (!auth) throw new StrataError('STRATA_FORBIDDEN', 'this node has no cluster key');
      dialer = auth.verifyDial(headers);
    } catch (error) {
      this.counters.refused.unauthenticated += 1;
      const claimed = {
        peer: String(headers['strata-peer-id'] ?? '').slice(0, 32),
        name: String(headers['strata-peer-name'] ?? '').slice(0, 64),
      };
      const reason = (error as Error).message;
      const seen = `${claimed.peer}/${claimed.name}`;
      if (this.refusedPeers.get(seen) !== reason) {
        if (this.refusedPeers.size >= 1000) this.refusedPeers.clear();
        this.refusedPeers.set(seen, reason);
        this.options.log.warn(
          { ...claimed, reason },
          'refused a peer link (logged again only if the reason changes)',
        );
      }
      socket.close(4401, reason.slice(0, 120));
      return;
    }
    const link = new PeerLink(socket, dialer.peer, this.linkEvents, (hello) =>
      hello.member.id === dialer.peer ? undefined : 'hello names another node than the upgrade did',
    );
    this.open.add(link);
    link.send({
      type: 'hello',
      member: this.replica.membership.info(),
      proof: auth.accept(this.options.self.id, dialer.nonce),
      batches: true,
    });
  }

  /**
   * Leaves the cluster for good: refuses further writes of its own, waits (up to
   * `leaveHandOffMs`) until an alive peer holds every commit this node wrote, as the peers'
   * gossiped revisions say, then announces the departure and closes the links. Returns how many of
   * its commits no peer was known to hold when it went (0 unless the wait ran out).
   */
  async leave(): Promise<{ unreplicated: number }> {
    const selfId = this.options.self.id;
    await this.options.store.closeToWrites(
      'this node is leaving its cluster and takes no more writes: write to another member',
    );
    const own = this.options.store.revision()[selfId] ?? 0;
    const heldBy = (members: MemberStatus[]) =>
      Math.max(0, ...members.map((member) => member.revision[selfId] ?? 0));
    const others = () => this.replica.status().filter((member) => !member.self);
    const peers = () => others().filter((member) => member.state === 'alive');
    const held = () => heldBy(peers());
    const deadline = Date.now() + leaveHandOffMs;
    // With no peer alive there is no one to hand the commits to: waiting would change nothing.
    while (held() < own && peers().length > 0 && Date.now() < deadline && !this.closed) await delay(50);
    // What any peer was last known to hold, alive or not: a suspect or dead one still holds it.
    const unreplicated = Math.max(0, own - heldBy(others()));
    if (unreplicated > 0) {
      this.options.log.warn(
        { unreplicated, own },
        'left with commits no peer was known to hold: keep this data directory until they are elsewhere',
      );
    }
    this.options.log.info({ node: selfId }, 'cluster: left');
    this.step({ type: 'leave' });
    await delay(leaveFlushMs);
    await this.close();
    return { unreplicated };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.options.store.off('durable', this.onDurable);
    for (const link of this.open) link.close(1001, 'shutting down');
    this.open.clear();
    // Peers' pulls waiting for a blob are answered now (as missing, unless it came).
    for (const arrival of this.arriving.values()) arrival.resolve();
    this.arriving.clear();
    this.links.clear();
  }

  private readonly linkEvents = {
    hello: (link: PeerLink, hello: Hello) => this.onHello(link, hello),
    message: (link: PeerLink, message: Parameters<PeerLink['send']>[0]) => {
      if (link.peer === undefined || this.links.get(link.peer) !== link || message.type === 'hello') return;
      this.step({ type: 'message', from: link.peer, message });
    },
    refused: (_link: PeerLink, reason: RefusalReason, detail: string) => {
      this.counters.refused[reason] += 1;
      this.options.log.warn({ reason, detail }, 'dropped a peer link');
    },
    closed: (link: PeerLink) => {
      this.open.delete(link);
      this.counters.bytesSent += link.bytesSent;
      this.counters.bytesReceived += link.bytesReceived;
      this.counters.framesSent += link.framesSent;
      this.counters.framesReceived += link.framesReceived;
      if (link.peer !== undefined && this.links.get(link.peer) === link) {
        this.links.delete(link.peer);
        this.step({ type: 'link_down', peer: link.peer });
      }
    },
  };

  private onHello(link: PeerLink, hello: Hello): void {
    const peer = hello.member.id;
    if (peer === this.options.self.id) {
      link.refuse('self', 'a link to itself');
      return;
    }
    const existing = this.links.get(peer);
    if (existing) {
      // Two links to one peer (both dialed at once): both sides keep the one the lower id dialed.
      if (existing.dialer <= link.dialer) {
        link.close(1000, 'duplicate link');
        return;
      }
      this.links.set(peer, link);
      existing.close(1000, 'duplicate link');
      return;
    }
    this.links.set(peer, link);
    // Linked, whichever side dialed: what kept this node from dialing that URL is over.
    if (this.dialTrouble.delete(hello.member.url))
      this.options.log.info({ url: hello.member.url }, 'linked to a peer that could not be reached');
    this.step({ type: 'link_up', peer: hello.member });
  }

  /** Runs inside the writer's batch (GroupCommit's `applied` hook), which must not throw. */
  private appliedRemote(id: CommitId): void {
    try {
      this.step({ type: 'applied', id });
    } catch (error) {
      this.options.log.warn(
        { commit: id, reason: (error as Error).message },
        'could not forward an applied commit',
      );
    }
  }

  private step(input: Parameters<Replica['step']>[0]): void {
    if (this.closed) return;
    for (const output of this.replica.step(input)) this.run(output);
  }

  private run(output: ClusterOutput): void {
    switch (output.type) {
      case 'send':
        this.links.get(output.to)?.send(output.message);
        break;
      case 'connect':
        this.dial(output.url);
        break;
      case 'disconnect': {
        const link = this.links.get(output.peer);
        if (link) {
          this.links.delete(output.peer);
          link.close(1000, 'dropped by the overlay');
        }
        break;
      }
      case 'apply':
        // A peer's commit is forwarded once applied, without waiting for this node's sync: its
        // origin made it durable before broadcasting it, so no crash here can unmake it, and what
        // it depends on is applied here before it. (Local commits wait for their sync; a peer's commit
        // that waits only for its blobs was pushed to the eager peers on receipt, Plumtree `push`.)
        this.options.store
          .applyRemote(output.envelope, () => this.appliedRemote(output.envelope.id))
          .catch((error: unknown) => {
            this.options.log.warn(
              { commit: output.envelope.id, reason: (error as Error).message },
              'could not apply a commit from a peer',
            );
            this.step({ type: 'apply_failed', id: output.envelope.id, reason: (error as Error).message });
          });
        break;
      case 'fetch_blobs':
        void this.pullBlobs(output.from, output.hashes);
        break;
      case 'event': {
        const event = { ...output.event, at: new Date().toISOString() };
        // A skewed clock is the operator's to fix (NTP): a warning, where the rest is news.
        if (output.event.type === 'clock_skew') this.options.log.warn(event, 'cluster: clock_skew');
        else this.options.log.info(event, `cluster: ${output.event.type}`);
        if (output.event.type === 'new_neighbor') this.checkNameTaken(output.event.member, output.event.name);
        this.emit('event', event);
        break;
      }
      default: {
        const unreachable: never = output;
        throw new Error(`unknown output ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private dial(url: string): void {
    if (!this.auth || this.closed) return;
    let nonce: string;
    let socket: WebSocket;
    try {
      const headers = this.auth.dial(this.options.self.id, this.options.self.name);
      nonce = headers['strata-cluster-nonce'];
      socket = new WebSocket(`${url.replace(/^http/, 'ws').replace(/\/+$/, '')}/v1/cluster/link`, {
        headers: { ...headers },
        maxPayload: linkMessageBytesMax,
        handshakeTimeout: this.replica.timing.connectTimeoutMs,
        // RFC 6455 masks what a client sends so that a hostile page cannot choose the bytes a
        // proxy between browser and server sees. A peer is no browser, and its link is
        // authenticated: an all-zero mask, which ws skips on both ends, spares an XOR pass over
        // every frame the dialer sends, once to mask it and once to unmask it.
        generateMask: (mask: Buffer) => mask.fill(0),
      });
    } catch (error) {
      this.options.log.warn({ url, reason: (error as Error).message }, 'cannot dial a peer');
      return;
    }
    const auth = this.auth;
    const link = new PeerLink(socket, this.options.self.id, this.linkEvents, (hello) => {
      if (!auth.verifyAccept(hello.member.id, nonce, hello.proof))
        return 'the peer does not hold the cluster key';
      if (this.dialTrouble.delete(url))
        this.options.log.info({ url }, 'linked to a peer that could not be reached');
      return undefined;
    });
    this.open.add(link);
    // One reason per dial, the first: the socket's own error after a refusal ("closed before the
    // connection was established") would hide why the peer refused.
    let reported = false;
    let answered = false;
    const failed = (reason: string) => {
      if (reported) return;
      reported = true;
      this.dialFailed(url, reason);
    };
    socket.on('error', (error: Error & { code?: string }) => {
      if (!answered) failed(error.code ? `${error.code} (${error.message})` : error.message);
    });
    socket.once('close', (code: number, reason: Buffer) => {
      if (link.info !== undefined) return;
      // 4401: the peer checked the upgrade and refused it, and says why (a wrong cluster key).
      if (code >= 4000) failed(`the peer refused the link: ${reason.toString()}`);
      this.step({ type: 'connect_failed', url });
    });
    socket.on('open', () =>
      link.send({
        type: 'hello',
        member: this.replica.membership.info(),
        proof: '0'.repeat(64),
        batches: true,
      }),
    );
    // A peer that refuses before upgrading (403: it has no cluster key) says why in its body.
    socket.on('unexpected-response', (_request, response) => {
      answered = true;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 1024) body += chunk;
      });
      response.once('end', () => {
        let reason = `HTTP ${response.statusCode}: the answer is not a Strata node's`;
        try {
          const message = (JSON.parse(body) as { error: { message: unknown } }).error.message;
          if (typeof message === 'string') reason = `HTTP ${response.statusCode}: ${message.slice(0, 200)}`;
        } catch {}
        failed(`the peer refused the link: ${reason}`);
      });
      const unread = `the peer refused the link: HTTP ${response.statusCode} (its answer could not be read)`;
      response.once('error', () => failed(unread));
      setTimeout(() => {
        failed(unread);
        socket.terminate();
      }, 1_000).unref();
      response.once('end', () => socket.terminate());
    });
  }

  /**
   * A peer holding commits of this node's own origin past this node's log means its data directory
   * is older than its history: restored from a backup, or copied to start another node. A write
   * here would reuse a seq its peers already hold and be refused by all of them as a fork, so the
   * node takes no more writes (503) and says so once. Its commits are never lost: the peers hold
   * them. A fresh data directory starts a node with a new id that pulls everything.
   */
  private checkOwnHistory(): void {
    if (this.staleHistory) return;
    const selfId = this.options.self.id;
    const own = this.options.store.revision()[selfId] ?? 0;
    for (const member of this.replica.status()) {
      const held = member.revision[selfId] ?? 0;
      if (member.self || held <= own) continue;
      this.staleHistory = true;
      const reason =
        `peer ${member.name} holds this node's commits up to seq ${held}, past its own log (seq ${own}): ` +
        'this data directory is older than the node it belonged to (restored from a backup, or copied); ' +
        'it takes no writes, which its peers would refuse as forks. Start it on a fresh data directory ' +
        'to rejoin as a new node (the commits are safe on the peers)';
      this.options.log.warn({ peer: member.id, held, own }, reason);
      void this.options.store.closeToWrites(reason);
      return;
    }
  }

  /**
   * Names are for people reading status, events and logs; two live members with one name make a
   * `dead_neighbor` for it ambiguous. Nothing depends on names being unique, so it is a warning.
   */
  private checkNameTaken(member: string, name: string): void {
    const twin = this.replica
      .status()
      .find((other) => other.id !== member && other.name === name && other.state !== 'dead');
    if (!twin) return;
    this.options.log.warn(
      { member, twin: twin.id, name },
      `cluster: members ${twin.id} and ${member} share the node name ${name}; status and events tell ` +
        'them apart by id only: give each node its own --node-name',
    );
  }

  /**
   * A node started without `--join` links only with peers that dial it. After a plain restart its
   * peers do; after a `leave` they never will. A node that has replicated from others before and
   * still has no link `aloneWarningMs` after starting says so, once.
   */
  private checkAlone(startedAt: number): void {
    if (this.aloneWarned || this.options.join.length > 0 || Date.now() - startedAt < aloneWarningMs) return;
    this.aloneWarned = true;
    if (this.links.size > 0) return;
    const others = Object.keys(this.options.store.revision()).filter(
      (origin) => origin !== this.options.self.id,
    );
    if (others.length === 0) return;
    this.options.log.warn(
      { origins: others.length },
      'no peer has linked to this node, which holds commits of other nodes: start it with --join URL to rejoin its cluster (peers do not dial a node that left)',
    );
  }

  /** A dial of `url` failed: logged when the reason is new for that URL (dials are retried every few seconds). */
  private dialFailed(url: string, reason: string): void {
    const known = this.dialTrouble.get(url);
    if (this.closed || known?.reason === reason) return;
    if (this.dialTrouble.size >= 1000) this.dialTrouble.clear();
    this.dialTrouble.set(url, { reason, since: known?.since ?? Date.now() });
    this.options.log.warn(
      { url, reason },
      'cannot link to a peer; retrying (logged again only if the reason changes)',
    );
  }

  /** Pulls blobs by hash from the peer that sent the commit naming them, streaming each to disk. */
  private async pullBlobs(from: NodeId, hashes: string[]): Promise<void> {
    const url = this.replica.membership.members.get(from)?.info.url;
    const store = this.options.store;
    let ok = url !== undefined;
    // Peers' pulls of these blobs wait until this pull has ended (the blob route's `blobArrival`).
    const mine = new Map<string, () => void>();
    for (const hash of hashes) {
      if (this.arriving.has(hash)) continue;
      // Not Promise.withResolvers: Node 20 lacks it.
      let resolve = () => {};
      const promise = new Promise<void>((settle) => {
        resolve = settle;
      });
      const arrival = { promise, resolve };
      this.arriving.set(hash, arrival);
      mine.set(hash, () => {
        if (this.arriving.get(hash) === arrival) this.arriving.delete(hash);
        arrival.resolve();
      });
    }
    for (const hash of hashes) {
      if (url !== undefined && ok && !store.blobs.has(hash)) ok = await this.pullBlob(url, from, hash);
      mine.get(hash)?.();
    }
    this.step({ type: 'blobs_fetched', hashes, ok });
  }

  /**
   * Brings the bytes of a blob whose copy here was found damaged (and set aside) from the first
   * alive peer that has them; reads answer STRATA_DAMAGED until then.
   */
  private async heal(hash: string): Promise<void> {
    if (this.closed || this.healing.has(hash)) return;
    this.healing.add(hash);
    try {
      for (const [id, view] of this.replica.membership.members) {
        if (view.state !== 'alive' || id === this.options.self.id) continue;
        if (this.options.store.blobs.held(hash)) return;
        if (await this.pullBlob(view.info.url, id, hash)) {
          // A warning, like the damage: a disk that loses bytes is the operator's to look at.
          this.options.log.warn({ blob: hash, from: id }, 'a damaged blob was brought again from a peer');
          return;
        }
      }
      this.options.log.warn({ blob: hash }, 'no peer could send a damaged blob; upload its bytes again');
    } finally {
      this.healing.delete(hash);
    }
  }

  /** One blob from the peer at `url`, streamed to disk and fsync'd; false when it could not be had. */
  private async pullBlob(url: string, from: NodeId, hash: string): Promise<boolean> {
    const store = this.options.store;
    try {
      const response = await request(`${url}/v1/cluster/blobs/${hash}`, {
        headers: this.peerHeaders(),
        bodyTimeout: blobPullTimeoutMs,
        // The peer may itself be pulling the blob, and answers once it has it.
        headersTimeout: this.replica.timing.connectTimeoutMs + arrivingBlobWaitMs,
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new Error(`status ${response.statusCode}`);
      }
      const staged = await store.blobs.ingest(response.body as Readable, this.options.objectBytesMax);
      if (staged.hash !== hash) {
        await store.blobs.release(staged);
        throw new Error(`the bytes hash to ${staged.hash}`);
      }
      await store.putBlob(staged);
      this.counters.blobsPulled += 1;
      return true;
    } catch (error) {
      this.counters.blobPullsFailed += 1;
      this.options.log.warn({ from, hash, reason: (error as Error).message }, 'could not pull a blob');
      return false;
    }
  }

  /** Bytes and frames on peer links since start, closed links included. */
  linkTraffic(): { bytes: Traffic; frames: Traffic } {
    const { bytesSent, bytesReceived, framesSent, framesReceived } = this.counters;
    const bytes = { sent: bytesSent, received: bytesReceived };
    const frames = { sent: framesSent, received: framesReceived };
    for (const link of this.open) {
      bytes.sent += link.bytesSent;
      bytes.received += link.bytesReceived;
      frames.sent += link.framesSent;
      frames.received += link.framesReceived;
    }
    return { bytes, frames };
  }

  /** For tests: the commit ids this node is still waiting to apply. */
  backlog(): { pending: number; applying: number } {
    return {
      pending: this.replica.delivery.pendingCount(),
      applying: this.replica.delivery.scheduledCount(),
    };
  }
}
