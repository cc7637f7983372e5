import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Commit } from '../core/commit.js';
import { fail, StrataError } from '../core/errors.js';
import type { CommitId, NodeId, VersionId } from '../core/ids.js';
import { BlobStore, type StagedBlob } from '../log/blob-store.js';
import { CommitLog } from '../log/commit-log.js';
import { DataDirLock } from '../log/data-dir-lock.js';
import { NodeDatabase } from '../log/database.js';
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
}

export interface StoreOptions {
  dataDir: string;
  clock: Clock;
  inlineBytesMax?: number;
  /** Text beyond this many bytes of an object is not indexed for search (default 1 MiB). */
  searchIndexBytesMax?: number;
  /** A search ranks at most this many matches, the newest (default 20,000; see search-query.ts). */
  searchRankedMatchesMax?: number;
  /** Told how long each group-commit sync took and how many commits it made durable. */
  onSync?(seconds: number, commits: number): void;
}

/**
 * The node's store: log, blobs and derived state behind one write path (group commit) and
 * snapshot reads. Emits `durable` with the results of each batch once it is fsync'd.
 */
export class Store extends EventEmitter<{ durable: [WriteResult[]] }> {
  readonly nodeId: NodeId;
  readonly blobs: BlobStore;
  /** Search over every version (DESIGN §4); queries run against a snapshot. */
  readonly searches: SearchQueries;
  private readonly lock: DataDirLock;
  private readonly database: NodeDatabase;
  private readonly log: CommitLog;
  private readonly queries: Queries;
  private readonly writer: Writer;
  private durablePos: number;
  /** Set when a sync failed: the node then refuses writes until it is restarted. */
  private failure: Error | undefined;

  constructor(private readonly options: StoreOptions) {
    super();
    // One listener per live change-feed stream; the HTTP layer bounds streams, not the emitter.
    this.setMaxListeners(0);
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.lock = new DataDirLock(options.dataDir);
    try {
      this.database = new NodeDatabase(join(options.dataDir, 'strata.db'));
    } catch (error) {
      this.lock.release();
      throw error;
    }
    const db = this.database.db;
    this.nodeId = this.loadNodeId();
    this.log = new CommitLog(db);
    this.blobs = new BlobStore(join(options.dataDir, 'blobs'), db, {
      inlineBytesMax: options.inlineBytesMax ?? 64 * 1024,
    });
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
    const events: WriterEvents = {
      durable: (results, syncSeconds) => {
        options.onSync?.(syncSeconds, results.length);
        for (const result of results) if (result.pos > this.durablePos) this.durablePos = result.pos;
        if (results.length > 0) this.emit('durable', results);
      },
      failed: (error) => {
        this.failure ??= error;
      },
    };
    this.writer = new Writer(this.database, path, events);
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
      return await this.writer.submit(request);
    } finally {
      for (const op of request.ops) if (op.kind === 'put') await this.blobs.release(op.blob);
    }
  }

  /** Stores a blob that no commit names yet (uploaded ahead of its commit); resolves once durable. */
  async putBlob(blob: StagedBlob): Promise<void> {
    try {
      await this.writer.putBlob(blob);
    } finally {
      await this.blobs.release(blob);
    }
  }

  /** A blob already in the store, to be named by a new put without uploading it again. */
  existingBlob(hash: string): StagedBlob | undefined {
    const stored = this.blobs.get(hash);
    return stored ? { hash: stored.hash, size: stored.size } : undefined;
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
    this.database.close();
    this.lock.release();
  }

  private loadNodeId(): NodeId {
    const existing = this.database.getMeta('node_id');
    if (existing) return existing as NodeId;
    const created = randomBytes(8).toString('hex') as NodeId;
    this.database.setMeta('node_id', created);
    return created;
  }
}

export { StrataError };
