import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Commit, Op } from '../core/commit.js';
import { fail, StrataError } from '../core/errors.js';
import { HybridClock, hlcWall } from '../core/hlc.js';
import type { CommitId, NodeId, VersionId } from '../core/ids.js';
import { BlobStore, type StagedBlob } from '../log/blob-store.js';
import { CommitLog } from '../log/commit-log.js';
import { NodeDatabase } from '../log/database.js';
import { GroupCommit } from '../log/group-commit.js';
import { SearchIndex } from '../search/search-index.js';
import { SearchQueries } from '../search/search-query.js';
import { Deriver } from './derived.js';
import { computeDigest } from './digest.js';
import { Queries, Snapshot } from './snapshot.js';
import { resolve } from './winner.js';

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
  /** Told how long each group-commit sync took and how many commits it made durable. */
  onSync?(seconds: number, commits: number): void;
}

const allPositions = Number.MAX_SAFE_INTEGER;
const everything = '~';

/**
 * The node's store: log, blobs and derived state behind one write path (group commit) and
 * snapshot reads. Emits `durable` with the results of each batch once it is fsync'd.
 */
export class Store extends EventEmitter<{ durable: [WriteResult[]] }> {
  readonly nodeId: NodeId;
  readonly blobs: BlobStore;
  private readonly database: NodeDatabase;
  private readonly log: CommitLog;
  private readonly deriver: Deriver;
  private readonly queries: Queries;
  private readonly search: SearchIndex;
  /** Search over every version (DESIGN §4); queries run against a snapshot. */
  readonly searches: SearchQueries;
  private readonly hlc: HybridClock;
  private readonly writer: GroupCommit<WriteRequest, WriteResult>;
  private readonly applyBatch;
  private seq: number;
  private durablePos: number;
  private syncSeconds = 0;
  /** Set when a sync failed: the node then refuses writes until it is restarted. */
  private failure: Error | undefined;

  constructor(private readonly options: StoreOptions) {
    super();
    // One listener per live change-feed stream; the HTTP layer bounds streams, not the emitter.
    this.setMaxListeners(0);
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.database = new NodeDatabase(join(options.dataDir, 'strata.db'));
    const db = this.database.db;
    this.nodeId = this.loadNodeId();
    this.log = new CommitLog(db);
    this.deriver = new Deriver(db);
    this.queries = new Queries(db);
    this.blobs = new BlobStore(join(options.dataDir, 'blobs'), db, {
      inlineBytesMax: options.inlineBytesMax ?? 64 * 1024,
    });
    this.search = new SearchIndex(db, this.blobs, (bucket, key) => this.allVersionsOf(bucket, key), {
      indexBytesMax: options.searchIndexBytesMax ?? 1024 * 1024,
    });
    this.deriver.listen((row) => this.search.versionApplied(row));
    this.searches = new SearchQueries(db);
    this.hlc = new HybridClock(this.nodeId, options.clock);
    const lastHlc = db.prepare('SELECT MAX(hlc) FROM commits').pluck().get() as string | null;
    // After a restart on a clock that went backwards, keep issuing increasing timestamps.
    if (lastHlc) this.hlc.observe(lastHlc as Commit['hlc']);
    this.seq = this.log.lastSeq(this.nodeId);
    this.durablePos = (db.prepare('SELECT MAX(pos) FROM commits').pluck().get() as number | null) ?? 0;

    const applyOne = db.transaction((request: WriteRequest) => this.applyOne(request));
    this.applyBatch = db.transaction((batch: WriteRequest[]) =>
      batch.map((request) => {
        try {
          return applyOne(request);
        } catch (error) {
          return error instanceof Error ? error : new Error(String(error));
        }
      }),
    );
    this.writer = new GroupCommit<WriteRequest, WriteResult>({
      apply: (batch) => {
        try {
          return this.applyBatch(batch);
        } catch (error) {
          this.seq = this.log.lastSeq(this.nodeId);
          throw error;
        }
      },
      sync: async (alone) => {
        // A batch applied before an earlier sync failed may depend on writes the disk dropped:
        // it is refused, never acknowledged.
        if (this.failure) throw this.failure;
        const started = process.hrtime.bigint();
        try {
          await this.database.sync(alone);
        } catch (error) {
          // After a failed fsync the kernel may have dropped the dirty pages: what the WAL holds is
          // unknown. Refuse every further write; a restart recovers from what is really on disk.
          this.failure = error as Error;
          throw error;
        }
        this.syncSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      },
      durable: (results) => {
        options.onSync?.(this.syncSeconds, results.length);
        for (const result of results) if (result.pos > this.durablePos) this.durablePos = result.pos;
        if (results.length > 0) this.emit('durable', results);
      },
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
      return await this.writer.submit(request);
    } finally {
      for (const op of request.ops) if (op.kind === 'put') await this.blobs.release(op.blob);
    }
  }

  /** Stores a blob that no commit names yet (uploaded ahead of its commit); resolves once durable. */
  async putBlob(blob: StagedBlob): Promise<void> {
    try {
      this.blobs.register(blob);
      await this.database.sync();
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
  reindex(): { commits: number; versions: number } {
    const db = this.database.db;
    let commits = 0;
    let versions = 0;
    this.queries.versionCache.clear();
    db.transaction(() => {
      db.exec('DELETE FROM versions');
      this.search.clear();
      let pos = 0;
      for (;;) {
        const page = this.log.after(pos, 1000);
        if (page.length === 0) break;
        for (const entry of page) {
          versions += this.deriver.apply(entry.id, entry.pos, entry.commit).length;
          commits += 1;
          pos = entry.pos;
        }
      }
    })();
    return { commits, versions };
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
  }

  private applyOne(request: WriteRequest): WriteResult {
    const hlc = this.hlc.tick();
    const txTime = hlcWall(hlc);
    const ops: Op[] = [];
    const touched = new Set<string>();
    const retracted = new Set<VersionId>();
    for (const [index, op] of request.ops.entries()) {
      if (op.kind === 'retract') {
        if (retracted.has(op.target))
          fail('STRATA_CONFLICT', `op ${index} retracts ${op.target} a second time in one commit`);
        retracted.add(op.target);
        ops.push(this.planRetract(op.target, txTime));
        continue;
      }
      const slot = `${op.bucket}\u0000${op.key}`;
      if (touched.has(slot)) {
        fail('STRATA_BAD_REQUEST', `op ${index} writes ${op.bucket}/${op.key} a second time in one commit`);
      }
      touched.add(slot);
      const effectiveAt = op.effectiveAt ?? txTime;
      const { winner, conflicts } = resolve(this.allVersionsOf(op.bucket, op.key), {
        at: effectiveAt,
        hlcBefore: everything,
      });
      const live = winner !== undefined && winner.kind === 'put';
      if (op.ifMatch !== undefined && winner?.version !== op.ifMatch) {
        fail(
          'STRATA_PRECONDITION_FAILED',
          `If-Match ${op.ifMatch} is not the current version of ${op.bucket}/${op.key} (current: ${winner?.version ?? 'none'})`,
          { current: winner?.version ?? null },
        );
      }
      if (op.ifExists && !live) {
        fail('STRATA_PRECONDITION_FAILED', `${op.bucket}/${op.key} has no value (If-Match: *)`, {
          current: null,
        });
      }
      if (op.kind === 'put' && op.ifNoneMatch && live) {
        fail('STRATA_PRECONDITION_FAILED', `${op.bucket}/${op.key} already has a value (If-None-Match: *)`, {
          current: winner.version,
        });
      }
      if (op.kind === 'delete' && !live)
        fail('STRATA_NOT_FOUND', `${op.bucket}/${op.key} has no value to delete`);
      const parents =
        op.ifMatch !== undefined
          ? [op.ifMatch]
          : winner
            ? [winner.version, ...conflicts.map((c) => c.version)]
            : [];
      if (op.kind === 'put') {
        const put: Op = {
          kind: 'put',
          bucket: op.bucket,
          key: op.key,
          parents,
          blob: op.blob.hash,
          contentType: op.contentType,
          size: op.blob.size,
          effectiveAt,
        };
        if (op.refs && op.refs.length > 0) put.refs = op.refs;
        ops.push(put);
      } else {
        ops.push({ kind: 'delete', bucket: op.bucket, key: op.key, parents, effectiveAt });
      }
    }
    const commit: Commit = { origin: this.nodeId, seq: this.seq + 1, hlc, ops };
    if (request.message !== undefined) commit.message = request.message;
    if (request.author !== undefined) commit.author = request.author;
    for (const op of request.ops) if (op.kind === 'put') this.blobs.register(op.blob);
    const logged = this.log.append(commit);
    const versions = this.deriver.apply(logged.id, logged.pos, commit);
    this.seq = commit.seq;
    return { commit: logged.id, pos: logged.pos, hlc, versions };
  }

  private planRetract(target: VersionId, txTime: number): Op {
    const row = this.queries.versionById(target, allPositions);
    if (!row)
      fail('STRATA_UNKNOWN_VERSION', `cannot retract ${target}: no such version`, { missing: [target] });
    if (row.kind === 'retract')
      fail('STRATA_BAD_REQUEST', `${target} is itself a retraction; retract the version it withdrew instead`);
    if (this.queries.retractionsOf.get(target, allPositions))
      fail('STRATA_CONFLICT', `${target} is already retracted`);
    return { kind: 'retract', bucket: row.bucket, key: row.key, parents: [], effectiveAt: txTime, target };
  }

  private allVersionsOf(bucket: string, key: string) {
    return new Snapshot(this.queries, allPositions, 0).versionsOf(bucket, key);
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
