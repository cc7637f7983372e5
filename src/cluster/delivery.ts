import type { Commit } from '../core/commit.js';
import { decodeEnvelope } from '../core/envelope.js';
import { hlcWall } from '../core/hlc.js';
import type { CommitId, NodeId } from '../core/ids.js';
import { Lru } from '../core/lru.js';
import type { Envelope } from './messages.js';
import type { ClusterOutput, ClusterTiming, ReplicaStorage } from './protocol.js';
import { isAheadOf, mergeVectors, seqOf, type VersionVector } from './version-vector.js';

/** How a commit reached this node: it is forwarded on only if it came by the broadcast. */
export type Source = { kind: 'gossip'; round: number } | { kind: 'sync' };

interface Received {
  envelope: Envelope;
  commit: Commit;
  from: NodeId;
  source: Source;
  receivedAt: number;
  /** Pushed on to eager peers while it still waited for its blobs (`forwardEarly`). */
  forwarded?: boolean;
}

interface Pending extends Received {
  /** Dependency keys still missing: `seq:<origin>:<seq>`, `commit:<id>`, `blob:<hash>`. */
  missing: Set<string>;
}

export interface DeliveryHooks {
  emit(output: ClusterOutput): void;
  now(): number;
  random(): number;
  linkedPeers(): NodeId[];
}

/** Replication delays older than this no longer count in the gossiped figure. */
const delayWindowMs = 10_000;
const delaySamplesMax = 1000;
/** Two sync batches' worth: enough to cover the broadcast copies still in flight. */
const bySyncRemembered = 2000;
/**
 * Commits applied or written here lately, kept in memory: duplicates and announcements name them
 * far more often than older ones, and a hit spares a lookup in the store (about 8 s at 500 commits/s).
 */
const recentRemembered = 4096;

/**
 * Causal delivery and anti-entropy (DESIGN §5). A commit is handed to the store (`apply`) only once
 * the previous commit of its origin and every commit its parents, refs and retraction target name
 * are applied or handed out before it, and every blob it names is here; until then it waits, and
 * what it lacks is fetched from the peer that sent it (which applied it, so has it all).
 * Anti-entropy exchanges version vectors with a random neighbour and pulls what is missing, oldest
 * first, one bounded batch at a time: the next batch is asked for only when the last is applied.
 */
export class Delivery {
  /** The durable revision plus everything handed out for applying. */
  private known: VersionVector;
  private readonly scheduled = new Map<CommitId, Received>();
  private readonly pending = new Map<CommitId, Pending>();
  private readonly waiting = new Map<string, Set<CommitId>>();
  /** Blobs carried inline by commits handed out but not yet applied. */
  private readonly inlineBlobs = new Map<string, number>();
  private readonly fetching = new Set<string>();
  /** Sync requests in flight, by peer: when sent. */
  private readonly syncs = new Map<NodeId, number>();
  /** After a batch that said `more`: the commits whose application clears the way for the next one. */
  private readonly followUps = new Map<NodeId, Set<CommitId>>();
  private nextAntiEntropyAt = 0;
  /** Recent commits that arrived through anti-entropy first (bounded; the broadcast copy follows soon). */
  private readonly bySync = new Lru<CommitId, true>(bySyncRemembered);
  private readonly recent = new Lru<CommitId, true>(recentRemembered);
  private readonly delays: Array<{ at: number; ms: number }> = [];
  readonly counters = {
    applied: 0,
    applyFailed: 0,
    invalid: 0,
    pendingDropped: 0,
    syncRequests: 0,
    syncBatchesReceived: 0,
    commitsPulled: 0,
  };

  constructor(
    private readonly selfId: NodeId,
    private readonly storage: ReplicaStorage,
    private readonly timing: ClusterTiming,
    private readonly hooks: DeliveryHooks,
  ) {
    this.known = storage.revision();
  }

  /** Received in any way: applied, handed out, or waiting. */
  seen(id: CommitId): boolean {
    return (
      this.recent.has(id) || this.scheduled.has(id) || this.pending.has(id) || this.storage.hasCommit(id)
    );
  }

  /** A commit written on this node: it is in the store (peers send it back only as a duplicate). */
  committed(id: CommitId): void {
    this.recent.set(id, true);
  }

  cameBySync(id: CommitId): boolean {
    return this.bySync.get(id) === true;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  scheduledCount(): number {
    return this.scheduled.size;
  }

  /** Mean replication delay of the commits from other nodes applied in the last 10 s. */
  replicationDelayMs(): number {
    const since = this.hooks.now() - delayWindowMs;
    let total = 0;
    let count = 0;
    for (const sample of this.delays) {
      if (sample.at < since) continue;
      total += sample.ms;
      count += 1;
    }
    return count === 0 ? 0 : total / count;
  }

  /**
   * A commit from `from`. Returns the decoded commit when it is new here (it may still wait for
   * dependencies), undefined for a duplicate or an invalid one. `unseen` says the caller has just
   * found it not `seen` (the broadcast checks first), which spares a second lookup in the store.
   */
  receive(envelope: Envelope, from: NodeId, source: Source, unseen = false): Commit | undefined {
    if (!unseen && this.seen(envelope.id)) return undefined;
    let commit: Commit;
    try {
      commit = decodeEnvelope(envelope);
    } catch {
      // Its id does not match its content, or it is not a commit at all: refused.
      this.counters.invalid += 1;
      return undefined;
    }
    if (commit.origin === this.selfId || commit.seq <= seqOf(this.known, commit.origin)) {
      // Our own commits come back to us only as duplicates; another commit claiming an (origin,
      // seq) we already hold is a fork, and refused.
      this.counters.invalid += 1;
      return undefined;
    }
    const received: Received = { envelope, commit, from, source, receivedAt: this.hooks.now() };
    if (source.kind === 'sync') this.bySync.set(envelope.id, true);
    const missing = this.missingFor(received);
    if (missing.size === 0) {
      this.schedule(received);
      return commit;
    }
    if (this.pending.size >= this.timing.pendingCommitsMax) {
      this.counters.pendingDropped += 1;
      return undefined;
    }
    this.pending.set(envelope.id, { ...received, missing });
    const blobs: string[] = [];
    let needsCommits = false;
    for (const key of missing) {
      let waiters = this.waiting.get(key);
      if (!waiters) {
        waiters = new Set();
        this.waiting.set(key, waiters);
      }
      waiters.add(envelope.id);
      if (key.startsWith('blob:')) {
        const hash = key.slice(5);
        if (!this.fetching.has(hash)) {
          this.fetching.add(hash);
          blobs.push(hash);
        }
      } else {
        needsCommits = true;
      }
    }
    if (blobs.length > 0) this.hooks.emit({ type: 'fetch_blobs', from, hashes: blobs });
    // From a sync batch, what it waits for is in the same batch or the next one (asked for when
    // this batch is applied); from the broadcast, an anti-entropy round with the sender brings it.
    if (needsCommits && source.kind === 'gossip') this.requestSync(from);
    return commit;
  }

  /**
   * A broadcast commit that waits only for its blobs may be pushed on at once: its sender applied
   * it, so everything else it names is here, and the blobs are being pulled (a peer's pull from this
   * node waits for them). Returns true, and marks it forwarded, when that is the case for `id`.
   */
  forwardEarly(id: CommitId): boolean {
    const entry = this.pending.get(id);
    if (!entry || entry.forwarded || entry.source.kind !== 'gossip') return false;
    for (const key of entry.missing) if (!key.startsWith('blob:')) return false;
    entry.forwarded = true;
    return true;
  }

  /** A commit handed out is applied by the store (before its sync). Returns what was received, for forwarding. */
  applied(id: CommitId): Received | undefined {
    const entry = this.scheduled.get(id);
    if (!entry) return undefined;
    this.scheduled.delete(id);
    this.recent.set(id, true);
    this.releaseInline(entry);
    this.counters.applied += 1;
    const now = this.hooks.now();
    this.delays.push({ at: now, ms: Math.max(0, now - hlcWall(entry.commit.hlc)) });
    if (this.delays.length > delaySamplesMax) this.delays.splice(0, this.delays.length - delaySamplesMax);
    this.settleFollowUp(entry.from, id);
    return entry;
  }

  applyFailed(id: CommitId): void {
    const entry = this.scheduled.get(id);
    if (!entry) return;
    this.scheduled.delete(id);
    this.releaseInline(entry);
    this.counters.applyFailed += 1;
    // What was handed out after it and depends on it fails too; recount from the store.
    this.known = this.storage.revision();
    for (const other of this.scheduled.values()) {
      if (other.commit.seq > seqOf(this.known, other.commit.origin))
        this.known[other.commit.origin] = other.commit.seq;
    }
    this.settleFollowUp(entry.from, id);
  }

  blobsFetched(hashes: string[], ok: boolean): void {
    for (const hash of hashes) {
      this.fetching.delete(hash);
      if (ok) this.resolve(`blob:${hash}`);
      else this.dropWaiters(`blob:${hash}`);
    }
  }

  onSync(from: NodeId, revision: VersionVector): void {
    const { envelopes, more } = this.storage.missingFrom(revision, {
      commitsMax: this.timing.syncBatchCommitsMax,
      bytesMax: this.timing.syncBatchBytesMax,
    });
    this.hooks.emit({
      type: 'send',
      to: from,
      message: { type: 'sync_batch', envelopes, more, revision: this.storage.revision() },
    });
    // Push-pull: the asker holds something we lack, so ask back.
    if (isAheadOf(revision, this.current())) this.requestSync(from);
  }

  onSyncBatch(from: NodeId, envelopes: Envelope[], more: boolean): void {
    this.syncs.delete(from);
    this.counters.syncBatchesReceived += 1;
    const waitFor = new Set<CommitId>();
    for (const envelope of envelopes) {
      if (this.receive(envelope, from, { kind: 'sync' })) {
        this.counters.commitsPulled += 1;
        // Handed out or still waiting (for a blob, say): either way the next batch waits for it.
        if (this.scheduled.has(envelope.id) || this.pending.has(envelope.id)) waitFor.add(envelope.id);
      }
    }
    if (!more) return;
    if (waitFor.size === 0) this.requestSync(from);
    else this.followUps.set(from, waitFor);
  }

  linkDown(peer: NodeId): void {
    this.syncs.delete(peer);
    this.followUps.delete(peer);
  }

  /** A new link: reconcile with it at once (a joining node catches up without waiting for a round). */
  linkUp(peer: NodeId): void {
    this.requestSync(peer);
  }

  tick(): void {
    const now = this.hooks.now();
    for (const [peer, sentAt] of this.syncs)
      if (now - sentAt > this.timing.syncTimeoutMs) this.syncs.delete(peer);
    for (const [id, entry] of this.pending) {
      if (now - entry.receivedAt <= this.timing.pendingTtlMs) continue;
      this.forget(id, entry);
      this.counters.pendingDropped += 1;
    }
    if (now < this.nextAntiEntropyAt) return;
    this.nextAntiEntropyAt = now + this.timing.antiEntropyIntervalMs;
    const peers = this.hooks
      .linkedPeers()
      .filter((peer) => !this.syncs.has(peer) && !this.followUps.has(peer));
    const peer = peers[Math.floor(this.hooks.random() * peers.length)];
    if (peer !== undefined) this.requestSync(peer);
  }

  checkInvariants(): void {
    for (const [id, entry] of this.pending) {
      if (entry.missing.size === 0) throw new Error(`invariant: ${id} waits for nothing`);
      if (this.scheduled.has(id)) throw new Error(`invariant: ${id} both waits and is handed out`);
    }
    for (const [key, waiters] of this.waiting) {
      for (const id of waiters)
        if (!this.pending.get(id)?.missing.has(key))
          throw new Error(`invariant: stale waiter ${id} on ${key}`);
    }
  }

  private requestSync(peer: NodeId): void {
    if (this.syncs.has(peer) || this.followUps.has(peer)) return;
    this.syncs.set(peer, this.hooks.now());
    this.counters.syncRequests += 1;
    this.hooks.emit({ type: 'send', to: peer, message: { type: 'sync', revision: this.current() } });
  }

  /** What this node holds or is applying: `known` covers remote commits, the store also its own. */
  private current(): VersionVector {
    return mergeVectors(this.storage.revision(), this.known);
  }

  private settleFollowUp(peer: NodeId, id: CommitId): void {
    const waitFor = this.followUps.get(peer);
    if (!waitFor?.delete(id) || waitFor.size > 0) return;
    this.followUps.delete(peer);
    if (this.hooks.linkedPeers().includes(peer)) this.requestSync(peer);
  }

  private missingFor(entry: Received): Set<string> {
    const { commit, envelope } = entry;
    const missing = new Set<string>();
    if (commit.seq > seqOf(this.known, commit.origin) + 1)
      missing.add(`seq:${commit.origin}:${commit.seq - 1}`);
    for (const op of commit.ops) {
      const named = [...op.parents, ...(op.refs ?? []), ...(op.target ? [op.target] : [])];
      for (const version of named) {
        const id = version.slice(0, version.indexOf('.')) as CommitId;
        if (!this.recent.has(id) && !this.scheduled.has(id) && !this.storage.hasCommit(id))
          missing.add(`commit:${id}`);
      }
      if (
        op.blob !== undefined &&
        envelope.blobs?.[op.blob] === undefined &&
        !this.inlineBlobs.has(op.blob)
      ) {
        if (!this.storage.hasBlob(op.blob)) missing.add(`blob:${op.blob}`);
      }
    }
    return missing;
  }

  private schedule(first: Received): void {
    const work = [first];
    for (let entry = work.pop(); entry; entry = work.pop()) {
      const { commit, envelope } = entry;
      this.scheduled.set(envelope.id, entry);
      if (commit.seq > seqOf(this.known, commit.origin)) this.known[commit.origin] = commit.seq;
      for (const hash of Object.keys(envelope.blobs ?? {}))
        this.inlineBlobs.set(hash, (this.inlineBlobs.get(hash) ?? 0) + 1);
      this.hooks.emit({ type: 'apply', envelope, commit, from: entry.from });
      const unblocked = [
        `seq:${commit.origin}:${commit.seq}`,
        `commit:${envelope.id}`,
        ...Object.keys(envelope.blobs ?? {}).map((hash) => `blob:${hash}`),
      ].flatMap((key) => this.unblock(key));
      // Deepest first keeps the order causal: each unblocked commit is handed out after what it waited for.
      work.push(...unblocked.reverse());
    }
  }

  private resolve(key: string): void {
    for (const entry of this.unblock(key)) this.schedule(entry);
  }

  /** Removes `key` from the commits waiting on it; returns those that now wait for nothing. */
  private unblock(key: string): Received[] {
    const waiters = this.waiting.get(key);
    if (!waiters) return [];
    this.waiting.delete(key);
    const ready: Received[] = [];
    for (const id of waiters) {
      const entry = this.pending.get(id);
      if (!entry) continue;
      entry.missing.delete(key);
      if (entry.missing.size === 0) {
        this.pending.delete(id);
        ready.push(entry);
      }
    }
    return ready;
  }

  private dropWaiters(key: string): void {
    for (const id of this.waiting.get(key) ?? []) {
      const entry = this.pending.get(id);
      if (entry) this.forget(id, entry);
    }
    this.waiting.delete(key);
  }

  private forget(id: CommitId, entry: Pending): void {
    this.pending.delete(id);
    this.settleFollowUp(entry.from, id);
    for (const key of entry.missing) {
      const waiters = this.waiting.get(key);
      waiters?.delete(id);
      if (waiters?.size === 0) this.waiting.delete(key);
    }
  }

  private releaseInline(entry: Received): void {
    for (const hash of Object.keys(entry.envelope.blobs ?? {})) {
      const count = (this.inlineBlobs.get(hash) ?? 1) - 1;
      if (count > 0) this.inlineBlobs.set(hash, count);
      else this.inlineBlobs.delete(hash);
    }
  }
}
