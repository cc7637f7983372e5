import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Commit } from '../core/commit.js';
import type { Envelope } from '../core/envelope.js';
import { fail, StrataError } from '../core/errors.js';
import type { CommitId, NodeId, VersionId } from '../core/ids.js';
import { BlobStore, type StagedBlob, unlessDamaged } from '../log/blob-store.js';
import { CommitLog } from '../log/commit-log.js';
import { DataDirLock } from '../log/data-dir-lock.js';
import { NodeDatabase } from '../log/database.js';
import type { CheckpointReport } from '../log/database-worker.js';
import { SearchMerger } from '../search/search-merger.js';
import { SearchQueries } from '../search/search-query.js';
import { computeDigest } from './digest.js';
import { Queries, Snapshot } from './snapshot.js';
import { WritePath } from './write-path.js';
import { Writer, type WriterEvents } from './writer.js';

/** One write as a client asks for it; the store turns it into an Op with parents. */
export type WriteOp =
  | {
      kind: 'put';
      bucket: string;
      key: string;
      blob: StagedBlob;
      contentType: string;
      ifMatch?: VersionId;
      /** If-Match: * — only if a live value exists. */
      ifExists?: boolean;
      ifNoneMatch?: boolean;
      effectiveAt?: number;
      refs?: VersionId[];
    }
  | {
      kind: 'delete';
      bucket: string;
      key: string;
      ifMatch?: VersionId;
      ifExists?: boolean;
      effectiveAt?: number;
    }
  | { kind: 'retract'; target: VersionId };

export interface WriteRequest {
  ops: WriteOp[];
  message?: string;
  author?: string;
}

export interface WriteResult {
  commit: CommitId;
  pos: number;
  hlc: Commit['hlc'];
  versions: VersionId[];
  /** The buckets the commit's ops write to, each once. */
  buckets: string[];
  origin: NodeId;
  seq: number;
  /** The commit's canonical encoding, as sent to peers. */
  body: string;
  /** Made here (a client's write), not applied from a peer. */
  local: boolean;
}

/** What the writer queues: a client's write, or a commit from a peer. */
export type WriteJob =
  | { kind: 'local'; request: WriteRequest }
  | {
      kind: 'remote';
      envelope: Envelope;
      /** Called when the commit is applied, before it is durable (see ClusterService). */
      onApplied?: (result: WriteResult) => void;
    };

export interface StoreOptions {
  dataDir: string;
  clock: Clock;
  inlineBytesMax?: number;
  /** Text beyond this many bytes of an object is not indexed for search (default 1 MiB). */
  searchIndexBytesMax?: number;
  /** A search ranks at most this many matches, the newest (default 10,000; see search-query.ts). */
  searchRankedMatchesMax?: number;
  /** Told how long each group-commit sync took and how many commits it made durable. */
  onSync?(seconds: number, commits: number): void;
  /** Told of each WAL checkpoint (on the checkpoint worker) that found the WAL changed. */
  onCheckpoint?(report: CheckpointReport): void;
  /** Told when a WAL checkpoint failed; the next one tries again. */
  onCheckpointError?(error: Error): void;
  /** Told how long each step of idle search merging took (SearchMerger). */
  onSearchMerge?(seconds: number): void;
  /** Told when a search merge step failed; merging starts again after the next write. */
  onSearchMergeError?(error: Error): void;
  /** How long no write must have come before idle work (search merging) runs (default 1 s). */
  idleAfterMs?: number;
}

/**
 * The node's store: log, blobs and derived state behind one write path (group commit) and
 * snapshot reads. Emits `durable` with the results of each batch once it is fsync'd.
 */
export class Store extends EventEmitter<{ durable: [WriteResult[]] }> {
  readonly nodeId: NodeId;
  /** Greater than at any earlier opening of this store (see nextIncarnation). */
  readonly incarnation: number;
  readonly blobs: BlobStore;
  /** Search over every version (DESIGN §4); queries run against a snapshot. */
  readonly searches: SearchQueries;
  private readonly lock: DataDirLock;
  private readonly database: NodeDatabase;
  private readonly log: CommitLog;
  private readonly queries: Queries;
  private readonly writer: Writer;
  private readonly inlineBytesMax: number;
  private durablePos: number;
  /** Origin → highest durable seq: the version vector peers reconcile against. */
  private durableRevision: Record<string, number>;
  /** Set when a sync failed: the node then refuses writes until it is restarted. */
  private failure: Error | undefined;
  /** Set when the node stops taking writes of its own (it is leaving its cluster): why. */
  private closedToWrites: string | undefined;
  /** Local writes submitted and not yet settled. */
  private readonly writesInFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: StoreOptions) {
    super();
    // One listener per live change-feed stream; the HTTP layer bounds streams, not the emitter.
    this.setMaxListeners(0);
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.lock = new DataDirLock(options.dataDir);
    try {
      this.database = new NodeDatabase(join(options.dataDir, 'strata.db'), {
        onCheckpoint: options.onCheckpoint,
        onCheckpointError: options.onCheckpointError,
      });
    } catch (error) {
      this.lock.release();
      throw error;
    }
    const db = this.database.db;
    this.nodeId = this.loadNodeId();
    this.incarnation = this.nextIncarnation(options.clock.now());
    this.log = new CommitLog(db);
    this.inlineBytesMax = options.inlineBytesMax ?? 64 * 1024;
    this.blobs = new BlobStore(join(options.dataDir, 'blobs'), db, { inlineBytesMax: this.inlineBytesMax });
    // The write path also creates the derived and search tables that reads need.
    const path = new WritePath(db, {
      blobs: this.blobs,
      nodeId: this.nodeId,
      clock: options.clock,
      searchIndexBytesMax: options.searchIndexBytesMax ?? 1024 * 1024,
    });
    this.queries = new Queries(db);
    this.searches = new SearchQueries(db, options.searchRankedMatchesMax);
    this.durablePos = (db.prepare('SELECT MAX(pos) FROM commits').pluck().get() as number | null) ?? 0;
    this.durableRevision = this.log.revision(this.durablePos);
    const events: WriterEvents = {
      durable: (results, syncSeconds) => {
        options.onSync?.(syncSeconds, results.length);
        for (const result of results) {
          if (result.pos > this.durablePos) this.durablePos = result.pos;
          if (result.seq > (this.durableRevision[result.origin] ?? 0))
            this.durableRevision[result.origin] = result.seq;
        }
        if (results.length > 0) this.emit('durable', results);
      },
      failed: (error) => {
        this.failure ??= error;
      },
    };
    const merger = new SearchMerger(db, {
      onStep: options.onSearchMerge,
      onError: options.onSearchMergeError,
    });
    this.writer = new Writer(this.database, path, events, {
      idleWork: merger,
      ...(options.idleAfterMs !== undefined ? { idleAfterMs: options.idleAfterMs } : {}),
    });
  }

  /** Why the store refuses writes, if it does. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** A consistent view at the current durable watermark. */
  snapshot(now = this.options.clock.now()): Snapshot {
    return new Snapshot(this.queries, this.durablePos, now);
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /** Resolves once the commit is durable. Refused writes reject with a StrataError and change nothing. */
  async write(request: WriteRequest): Promise<WriteResult> {
    try {
      if (this.failure) {
        fail(
          'STRATA_UNAVAILABLE',
          `writes are refused since the disk failed a sync (${this.failure.message}); restart the node`,
        );
      }
      if (this.closedToWrites !== undefined) fail('STRATA_UNAVAILABLE', this.closedToWrites);
      const written = this.writer.submit({ kind: 'local', request });
      this.writesInFlight.add(written);
      try {
        return await written;
      } finally {
        this.writesInFlight.delete(written);
      }
    } finally {
      for (const op of request.ops) if (op.kind === 'put') await this.blobs.release(op.blob);
    }
  }

  /**
   * Refuses every local write from now on (503 with `reason`; commits from peers still apply), and
   * resolves once the writes already submitted have settled: after it, this node's own revision
   * no longer moves.
   */
  async closeToWrites(reason: string): Promise<void> {
    this.closedToWrites = reason;
    await Promise.allSettled([...this.writesInFlight]);
  }

  /**
   * Applies a commit received from a peer; resolves once durable. Refused (STRATA_*) when its id
   * does not match, its seq does not follow, or it names a version or blob this node lacks.
   */
  async applyRemote(envelope: Envelope, onApplied?: (result: WriteResult) => void): Promise<WriteResult> {
    if (this.failure) fail('STRATA_UNAVAILABLE', `the disk failed a sync (${this.failure.message})`);
    return this.writer.submit(
      onApplied ? { kind: 'remote', envelope, onApplied } : { kind: 'remote', envelope },
    );
  }

  /** Origin → highest durable seq. */
  revision(): Record<string, number> {
    return { ...this.durableRevision };
  }

  hasCommit(id: string): boolean {
    return this.log.has(id);
  }

  /** A durable commit as peers receive it, with blobs stored inline carried inline. */
  envelope(id: string): Envelope | undefined {
    const logged = this.log.get(id);
    if (!logged || logged.pos > this.durablePos) return undefined;
    return this.toEnvelope(logged.id, logged.body, logged.commit);
  }

  /** Durable commits a node at `revision` lacks, in log order (causal), bounded by count and bytes. */
  missingFrom(
    revision: Record<string, number>,
    limits: { commitsMax: number; bytesMax: number },
  ): { envelopes: Envelope[]; more: boolean } {
    const rows = this.log.missingFrom(revision, this.durableRevision, this.durablePos, limits.commitsMax + 1);
    const envelopes: Envelope[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (envelopes.length === limits.commitsMax || (envelopes.length > 0 && bytes >= limits.bytesMax)) break;
      const envelope = this.toEnvelope(row.id, row.body);
      bytes += envelopeBytes(envelope);
      envelopes.push(envelope);
    }
    return { envelopes, more: envelopes.length < rows.length };
  }

  /** The envelope of a commit from its encoding (a write result's `body`). */
  envelopeOf(id: CommitId, body: string): Envelope {
    return this.toEnvelope(id, body);
  }

  private toEnvelope(id: CommitId, body: string, decoded?: Commit): Envelope {
    const commit = decoded ?? (JSON.parse(body) as Commit);
    const envelope: Envelope = { id, body };
    for (const op of commit.ops) {
      // Only blobs stored inline ride along; file blobs are pulled by hash and streamed.
      if (op.kind !== 'put' || op.blob === undefined || (op.size ?? 0) > this.inlineBytesMax) continue;
      // A damaged copy rides along with nothing: the commit still replicates, and the peer pulls
      // the blob by hash (from a node whose copy is whole).
      const hash = op.blob;
      const data = unlessDamaged(() => this.blobs.get(hash)?.data);
      if (data && data.length <= this.inlineBytesMax) {
        envelope.blobs ??= {};
        envelope.blobs[op.blob] = data.toString('base64');
      }
    }
    return envelope;
  }

  /** Stores a blob that no commit names yet (uploaded ahead of its commit); resolves once durable. */
  async putBlob(blob: StagedBlob): Promise<void> {
    try {
      await this.writer.putBlob(blob);
    } finally {
      await this.blobs.release(blob);
    }
  }

  /** A blob already in the store (not a damaged copy), to be named by a new put without uploading it again. */
  existingBlob(hash: string): StagedBlob | undefined {
    return this.blobs.held(hash);
  }

  commit(id: string) {
    return this.log.get(id);
  }

  /** Rebuilds every derived table from the log in one transaction. */
  async reindex(): Promise<{ commits: number; versions: number }> {
    this.queries.versionCache.clear();
    const counts = await this.writer.reindex();
    this.queries.versionCache.clear();
    return counts;
  }

  /**
   * Merges the search index's segments now until nothing is left to merge, instead of waiting for
   * the node to be idle (SearchMerger). Resolves with the number of merge statements run.
   */
  mergeSearchIndex(): Promise<number> {
    return this.writer.finishIdleWork();
  }

  digest(): string {
    return computeDigest(this.database.db);
  }

  /** Size of the log on disk: the database and its WAL. */
  logBytes(): number {
    const row = this.database.db
      .prepare('SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()')
      .get() as {
      bytes: number;
    };
    return row.bytes;
  }

  async close(): Promise<void> {
    await this.writer.close();
    await this.database.close();
    this.lock.release();
  }

  /**
   * Counts this opening of the store: a number greater than at any earlier one (membership ranks
   * restarts by it). Written while the store opens, before idle work may hold the write lock.
   */
  private nextIncarnation(now: number): number {
    const previous = Number(this.database.getMeta('incarnation') ?? 0);
    const next = Math.max(previous + 1, now);
    this.database.setMeta('incarnation', String(next));
    return next;
  }

  private loadNodeId(): NodeId {
    const existing = this.database.getMeta('node_id');
    if (existing) return existing as NodeId;
    const created = randomBytes(8).toString('hex') as NodeId;
    this.database.setMeta('node_id', created);
    return created;
  }
}

function envelopeBytes(envelope: Envelope): number {
  let bytes = envelope.body.length + 100;
  for (const data of Object.values(envelope.blobs ?? {})) bytes += data.length + 70;
  return bytes;
}

export { StrataError };
