import type { ReplicaStorage } from '../cluster/protocol.js';
import type { VersionVector } from '../cluster/version-vector.js';
import { type Commit, decodeCommit } from '../core/commit.js';
import type { Envelope } from '../core/envelope.js';
import { sha256 } from '../core/hash.js';
import { type CommitId, type Hlc, type NodeId, type VersionId, versionId } from '../core/ids.js';
import type { VersionNode } from '../store/winner.js';

/** One version as the derived state holds it (what the winner rule and the digest read). */
export interface SimVersion extends VersionNode {
  commit: CommitId;
  opIndex: number;
  bucket: string;
  key: string;
  blob?: string;
  refs?: VersionId[];
}

export interface LogEntry {
  id: CommitId;
  body: string;
  commit: Commit;
  /** Written at this node (acknowledged when durable) rather than applied from a peer. */
  local: boolean;
}

export interface SimStorageOptions {
  self: NodeId;
  /** Blobs up to this size ride inline in envelopes, as the real store's `inlineBytesMax`. */
  inlineBytesMax: number;
  /** Starts a simulated fsync; `done` runs when it completes (unless the node crashed meanwhile). */
  fsync(done: () => void): void;
  /** Log entries that just became durable, in log order. */
  durable(entries: LogEntry[]): void;
}

/** A store refusing what a real one would refuse: the protocol handed out something it must not. */
export class StorageViolation extends Error {}

interface StoredBlob {
  bytes: Buffer;
  /** Log index of the commit that carried it inline, while that commit is not durable yet. */
  carriedBy?: number;
}

/**
 * A node's disk in memory: the commit log with a durable prefix (group commit: one fsync covers
 * everything appended before it started), blobs, and the versions derived from the log. It checks
 * every commit like the real write path (`write-path.ts` applyRemote, `commit-log.ts` append) and
 * throws a StorageViolation instead of refusing quietly, because in the simulator a refusal can only
 * mean the protocol handed out a commit too early or twice. A crash keeps only the durable prefix.
 */
export class SimStorage implements ReplicaStorage {
  protected readonly log: LogEntry[] = [];
  private readonly index = new Map<CommitId, number>();
  private readonly lastSeq = new Map<string, number>();
  private readonly blobs = new Map<string, StoredBlob>();
  private readonly versions = new Map<VersionId, SimVersion>();
  private readonly byKey = new Map<string, SimVersion[]>();
  private readonly retracted = new Set<VersionId>();
  private durableCount = 0;
  private durableRevision: VersionVector = {};
  private syncing = false;
  /** Bumped by a crash: an fsync started before it never completes. */
  private epoch = 0;

  constructor(private readonly options: SimStorageOptions) {}

  revision(): VersionVector {
    return { ...this.durableRevision };
  }

  hasCommit(id: CommitId): boolean {
    return this.index.has(id);
  }

  hasBlob(hash: string): boolean {
    return this.blobs.has(hash);
  }

  blob(hash: string): Buffer | undefined {
    return this.blobs.get(hash)?.bytes;
  }

  envelope(id: CommitId): Envelope | undefined {
    const position = this.index.get(id);
    if (position === undefined || position >= this.durableCount) return undefined;
    return this.toEnvelope(this.log[position] as LogEntry);
  }

  missingFrom(
    revision: VersionVector,
    limits: { commitsMax: number; bytesMax: number },
  ): { envelopes: Envelope[]; more: boolean } {
    const envelopes: Envelope[] = [];
    let bytes = 0;
    for (let position = 0; position < this.durableCount; position += 1) {
      const entry = this.log[position] as LogEntry;
      if (entry.commit.seq <= (revision[entry.commit.origin] ?? 0)) continue;
      if (envelopes.length === limits.commitsMax || (envelopes.length > 0 && bytes >= limits.bytesMax))
        return { envelopes, more: true };
      const envelope = this.toEnvelope(entry);
      bytes +=
        envelope.body.length + Object.values(envelope.blobs ?? {}).reduce((sum, b) => sum + b.length, 0);
      envelopes.push(envelope);
    }
    return { envelopes, more: false };
  }

  lastSeqOf(origin: NodeId): number {
    return this.lastSeq.get(origin) ?? 0;
  }

  /** The whole log (durable or not), in log order. */
  entries(): readonly LogEntry[] {
    return this.log;
  }

  /** Every version derived from the log. */
  allVersions(): Iterable<SimVersion> {
    return this.versions.values();
  }

  versionsOf(bucket: string, key: string): readonly SimVersion[] {
    return this.byKey.get(slot(bucket, key)) ?? [];
  }

  version(id: VersionId): SimVersion | undefined {
    return this.versions.get(id);
  }

  isRetracted(id: VersionId): boolean {
    return this.retracted.has(id);
  }

  /** Every log entry is durable and no fsync is running. */
  settled(): boolean {
    return this.durableCount === this.log.length && !this.syncing;
  }

  /** A blob uploaded ahead of its commit, or pulled from a peer: durable by itself. */
  putBlob(hash: string, bytes: Buffer): void {
    if (sha256(bytes) !== hash) throw new StorageViolation(`blob ${hash} does not hash to its name`);
    const known = this.blobs.get(hash);
    if (known) delete known.carriedBy;
    else this.blobs.set(hash, { bytes });
  }

  /** A commit written here; the caller made it like the real write path. */
  appendLocal(body: string, id: CommitId): void {
    const commit = decodeCommit(body, id);
    if (commit.origin !== this.options.self)
      throw new StorageViolation(`local commit ${id} has origin ${commit.origin}`);
    this.check(commit, id, {});
    this.append({ id, body, commit, local: true }, {});
  }

  /** A commit from a peer, handed out by the protocol with `apply`. */
  applyRemote(envelope: Envelope): void {
    let commit: Commit;
    try {
      commit = decodeCommit(envelope.body, envelope.id);
    } catch (error) {
      throw new StorageViolation(`apply of ${envelope.id}: ${(error as Error).message}`);
    }
    if (commit.origin === this.options.self)
      throw new StorageViolation(`apply of ${envelope.id}: it claims to come from this node`);
    this.check(commit, envelope.id, envelope.blobs ?? {});
    this.append({ id: envelope.id, body: envelope.body, commit, local: false }, envelope.blobs ?? {});
  }

  /** Power loss: everything after the durable prefix is gone. Returns the entries lost. */
  crash(): LogEntry[] {
    this.epoch += 1;
    this.syncing = false;
    const lost = this.log.splice(this.durableCount);
    for (const [hash, blob] of this.blobs) if (blob.carriedBy !== undefined) this.blobs.delete(hash);
    this.index.clear();
    this.lastSeq.clear();
    this.versions.clear();
    this.byKey.clear();
    this.retracted.clear();
    for (const [position, entry] of this.log.entries()) this.derive(entry, position);
    return lost;
  }

  private check(commit: Commit, id: CommitId, inline: Record<string, string>): void {
    const where = `commit ${id.slice(0, 12)} (${commit.origin}#${commit.seq})`;
    if (this.index.has(id)) throw new StorageViolation(`${where} is already in the log: applied twice`);
    const previous = this.lastSeqOf(commit.origin);
    if (commit.seq !== previous + 1)
      throw new StorageViolation(`${where} does not follow seq ${previous} of its origin`);
    for (const [index, op] of commit.ops.entries()) {
      const named = [...op.parents, ...(op.refs ?? []), ...(op.target ? [op.target] : [])];
      for (const version of named)
        if (!this.versions.has(version))
          throw new StorageViolation(`${where} op ${index} names ${version}, which this node does not hold`);
      if (op.kind === 'retract') {
        const target = this.versions.get(op.target as VersionId);
        if (target && (target.bucket !== op.bucket || target.key !== op.key || target.kind === 'retract'))
          throw new StorageViolation(`${where} op ${index} retracts a version of another key`);
      }
      if (op.kind !== 'put' || op.blob === undefined) continue;
      const bytes = inline[op.blob];
      if (bytes === undefined) {
        if (!this.blobs.has(op.blob))
          throw new StorageViolation(
            `${where} op ${index} names blob ${op.blob}, which this node does not hold`,
          );
      } else {
        const decoded = Buffer.from(bytes, 'base64');
        if (decoded.length !== op.size || sha256(decoded) !== op.blob)
          throw new StorageViolation(`${where} op ${index}: inline bytes do not hash to ${op.blob}`);
      }
    }
  }

  private append(entry: LogEntry, inline: Record<string, string>): void {
    const position = this.log.length;
    this.log.push(entry);
    for (const [hash, bytes] of Object.entries(inline))
      if (!this.blobs.has(hash))
        this.blobs.set(hash, { bytes: Buffer.from(bytes, 'base64'), carriedBy: position });
    this.derive(entry, position);
    this.startSync();
  }

  private derive(entry: LogEntry, position: number): void {
    this.index.set(entry.id, position);
    this.lastSeq.set(entry.commit.origin, entry.commit.seq);
    for (const [opIndex, op] of entry.commit.ops.entries()) {
      const version: SimVersion = {
        version: versionId(entry.id, opIndex),
        commit: entry.id,
        opIndex,
        bucket: op.bucket,
        key: op.key,
        kind: op.kind,
        hlc: entry.commit.hlc as Hlc,
        effectiveAt: op.effectiveAt,
        parents: op.parents,
      };
      if (op.blob !== undefined) version.blob = op.blob;
      if (op.refs !== undefined) version.refs = op.refs;
      if (op.target !== undefined) {
        version.target = op.target;
        this.retracted.add(op.target);
      }
      this.versions.set(version.version, version);
      const key = slot(op.bucket, op.key);
      const list = this.byKey.get(key);
      if (list) list.push(version);
      else this.byKey.set(key, [version]);
    }
  }

  /** Group commit: one fsync covers what was appended before it started; what comes later waits for the next. */
  private startSync(): void {
    if (this.syncing) return;
    this.syncing = true;
    const upTo = this.log.length;
    const epoch = this.epoch;
    this.options.fsync(() => {
      if (epoch !== this.epoch) return;
      this.syncing = false;
      const entries = this.log.slice(this.durableCount, upTo);
      for (let position = this.durableCount; position < upTo; position += 1) {
        const { commit } = this.log[position] as LogEntry;
        this.durableRevision[commit.origin] = commit.seq;
      }
      for (const blob of this.blobs.values())
        if (blob.carriedBy !== undefined && blob.carriedBy < upTo) delete blob.carriedBy;
      this.durableCount = upTo;
      if (this.log.length > upTo) this.startSync();
      this.options.durable(entries);
    });
  }

  private toEnvelope(entry: LogEntry): Envelope {
    const envelope: Envelope = { id: entry.id, body: entry.body };
    for (const op of entry.commit.ops) {
      if (op.kind !== 'put' || op.blob === undefined) continue;
      const bytes = this.blobs.get(op.blob)?.bytes;
      if (bytes && bytes.length <= this.options.inlineBytesMax) {
        envelope.blobs ??= {};
        envelope.blobs[op.blob] = bytes.toString('base64');
      }
    }
    return envelope;
  }
}

function slot(bucket: string, key: string): string {
  return `${bucket}\u0000${key}`;
}
