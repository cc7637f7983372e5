import type { Clock } from '../core/clock.js';
import type { Commit, Op } from '../core/commit.js';
import { decodeEnvelope, type Envelope } from '../core/envelope.js';
import { fail } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { HybridClock, hlcWall } from '../core/hlc.js';
import type { BlobId, NodeId, VersionId } from '../core/ids.js';
import type { BlobStore, StagedBlob } from '../log/blob-store.js';
import { CommitLog } from '../log/commit-log.js';
import type { Db } from '../log/database.js';
import { SearchIndex } from '../search/search-index.js';
import { Deriver } from './derived.js';
import { Queries, Snapshot } from './snapshot.js';
import type { WriteJob, WriteRequest, WriteResult } from './store.js';
import { resolve } from './winner.js';

export interface WritePathOptions {
  /** Registers the blobs a commit names, and gives the search index their bytes. */
  blobs: BlobStore;
  nodeId: NodeId;
  clock: Clock;
  searchIndexBytesMax: number;
}

const allPositions = Number.MAX_SAFE_INTEGER;
const everything = '~';

/**
 * Everything a write does inside its transaction: checks preconditions, computes parents, assigns
 * seq and HLC, appends the commit and derives versions and the search index, all in the batch's
 * transaction.
 */
export class WritePath {
  private readonly log: CommitLog;
  private readonly deriver: Deriver;
  private readonly queries: Queries;
  private readonly search: SearchIndex;
  private readonly blobs: BlobStore;
  private readonly hlc: HybridClock;
  private readonly applyOneInTransaction;
  private readonly applyBatchInTransaction;
  private seq: number;

  constructor(
    private readonly db: Db,
    private readonly options: WritePathOptions,
  ) {
    this.log = new CommitLog(db);
    this.deriver = new Deriver(db);
    this.queries = new Queries(db);
    this.blobs = options.blobs;
    this.search = new SearchIndex(db, this.blobs, (bucket, key) => this.allVersionsOf(bucket, key), {
      indexBytesMax: options.searchIndexBytesMax,
    });
    this.deriver.listen((row) => this.search.versionApplied(row));
    this.hlc = new HybridClock(options.nodeId, options.clock);
    const lastHlc = db.prepare('SELECT MAX(hlc) FROM commits').pluck().get() as string | null;
    // After a restart on a clock that went backwards, keep issuing increasing timestamps.
    if (lastHlc) this.hlc.observe(lastHlc as Commit['hlc']);
    this.seq = this.log.lastSeq(options.nodeId);
    this.applyOneInTransaction = db.transaction((job: WriteJob) =>
      job.kind === 'local' ? this.applyOne(job.request) : this.applyRemote(job.envelope),
    );
    this.applyBatchInTransaction = db.transaction((batch: WriteJob[], savepointEach: boolean) =>
      batch.map((job) => {
        try {
          // No write needs a savepoint of its own (one per request cost a fifth of the write path's
          // throughput, and a peer's commit spilled its savepoint's journal to a temporary file):
          // applyOne and applyRemote refuse a write only before its first change to the database.
          if (savepointEach) return this.applyOneInTransaction(job);
          return job.kind === 'local' ? this.applyOne(job.request) : this.applyRemote(job.envelope);
        } catch (error) {
          // Some errors (a full disk, an I/O error) roll the whole transaction back: the batch is
          // over, and no later write of it may run outside a transaction.
          if (!this.db.inTransaction) throw error;
          if (error instanceof BatchAborted && !savepointEach) throw error;
          const cause = error instanceof BatchAborted ? error.cause : error;
          return cause instanceof Error ? cause : new Error(String(cause));
        }
      }),
    );
  }

  /**
   * One transaction for the batch; a refused request leaves nothing and fails alone. A client's
   * write and a peer's commit are each checked in full before they write. If one fails after it
   * began (the database refusing an insert), the batch is rolled back and applied again with a
   * savepoint per request, so that only that request fails.
   */
  applyBatch(batch: WriteJob[]): Array<WriteResult | Error> {
    try {
      return this.applyBatchInTransaction(batch, false);
    } catch (error) {
      this.seq = this.log.lastSeq(this.options.nodeId);
      if (!(error instanceof BatchAborted)) throw error;
    }
    try {
      return this.applyBatchInTransaction(batch, true);
    } catch (error) {
      this.seq = this.log.lastSeq(this.options.nodeId);
      throw error;
    }
  }

  /** Records a blob uploaded ahead of its commit. */
  registerBlob(blob: StagedBlob): void {
    this.blobs.register(blob);
  }

  /** Rebuilds every derived table (versions, search) from the log in one transaction. */
  reindex(): { commits: number; versions: number } {
    let commits = 0;
    let versions = 0;
    this.db.transaction(() => {
      this.db.exec('DELETE FROM versions');
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
      // A delete that won over a concurrent write leaves that write as a conflict: deleting again
      // takes both as parents and resolves it (a put conflicting is deleted too).
      if (op.kind === 'delete' && !live && conflicts.length === 0)
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
    const commit: Commit = { origin: this.options.nodeId, seq: this.seq + 1, hlc, ops };
    if (request.message !== undefined) commit.message = request.message;
    if (request.author !== undefined) commit.author = request.author;
    // The append checks the encoding before its single insert, so a refusal there writes nothing;
    // the blob rows follow in the same transaction.
    const logged = this.log.append(commit);
    let versions: VersionId[];
    try {
      for (const op of request.ops) if (op.kind === 'put') this.blobs.register(op.blob);
      versions = this.deriver.apply(logged.id, logged.pos, commit);
    } catch (error) {
      throw new BatchAborted(error);
    }
    this.seq = commit.seq;
    return {
      commit: logged.id,
      pos: logged.pos,
      hlc,
      versions,
      buckets: bucketsOf(commit),
      origin: commit.origin,
      seq: commit.seq,
      body: logged.body,
      local: true,
    };
  }

  /**
   * A commit from a peer. Its id, shape, seq and dependencies are checked again here, inside the
   * transaction, whatever the protocol already checked (STYLE §13): the log must never hold a commit
   * whose parents, refs, retraction target or blobs this node lacks (causal visibility, DESIGN §5).
   * The id check is the one delivery made on this envelope object, if it made one (decodeEnvelope).
   */
  private applyRemote(envelope: Envelope): WriteResult {
    const commit = decodeEnvelope(envelope);
    if (commit.origin === this.options.nodeId) {
      fail('STRATA_CONFLICT', `commit ${envelope.id} claims to come from this node, which never wrote it`);
    }
    const blobs: StagedBlob[] = [];
    for (const [index, op] of commit.ops.entries()) {
      const named = [...op.parents, ...(op.refs ?? []), ...(op.target ? [op.target] : [])];
      for (const version of named) {
        if (!this.queries.versionById(version, allPositions))
          fail('STRATA_UNKNOWN_VERSION', `op ${index} names ${version}, which this node does not hold yet`, {
            missing: [version],
          });
      }
      if (op.kind === 'retract') {
        const target = this.queries.versionById(op.target as VersionId, allPositions);
        if (target && (target.bucket !== op.bucket || target.key !== op.key || target.kind === 'retract'))
          fail(
            'STRATA_BAD_REQUEST',
            `op ${index} retracts ${op.target}, which is not a version of ${op.bucket}/${op.key}`,
          );
      }
      if (op.kind === 'put') {
        const blob = this.remoteBlob(
          op.blob as BlobId,
          op.size ?? 0,
          envelope.blobs?.[op.blob as string],
          index,
        );
        if (blob) blobs.push(blob);
      }
    }
    // The first write: it checks the seq before it inserts, and a refused insert changes nothing.
    const logged = this.log.append(commit, envelope);
    let versions: VersionId[];
    try {
      for (const blob of blobs) this.blobs.register(blob);
      versions = this.deriver.apply(logged.id, logged.pos, commit);
    } catch (error) {
      throw new BatchAborted(error);
    }
    this.hlc.observe(commit.hlc);
    return {
      commit: logged.id,
      pos: logged.pos,
      hlc: commit.hlc,
      versions,
      buckets: bucketsOf(commit),
      origin: commit.origin,
      seq: commit.seq,
      body: logged.body,
      local: false,
    };
  }

  /** The inline blob an op of a peer's commit carries, checked; none when this node already holds it. */
  private remoteBlob(
    hash: BlobId,
    size: number,
    inline: string | undefined,
    index: number,
  ): StagedBlob | undefined {
    if (inline === undefined) {
      if (!this.blobs.has(hash))
        fail('STRATA_UNKNOWN_BLOB', `op ${index} names blob ${hash}, which this node does not hold yet`);
      return undefined;
    }
    const bytes = Buffer.from(inline, 'base64');
    if (bytes.length !== size || sha256(bytes) !== hash)
      fail('STRATA_BAD_REQUEST', `op ${index}: the inline bytes of blob ${hash} do not hash to it`);
    return { hash, size, inline: bytes };
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
}

function bucketsOf(commit: Commit): string[] {
  return [...new Set(commit.ops.map((op) => op.bucket))];
}

/** A failure after a write began writing: without savepoints it aborts the whole batch. */
class BatchAborted extends Error {
  constructor(cause: unknown) {
    super('write batch aborted', { cause });
  }
}
