import type { Clock } from '../core/clock.js';
import { type Commit, commitId, encodeCommit, type Op } from '../core/commit.js';
import { sha256 } from '../core/hash.js';
import { HybridClock, hlcWall } from '../core/hlc.js';
import type { BlobId, CommitId, Hlc, NodeId, VersionId } from '../core/ids.js';
import { resolve } from '../store/winner.js';
import type { Prng } from './prng.js';
import type { SimStorage } from './storage.js';

export interface WorkloadShape {
  buckets: string[];
  /** Keys per bucket: few keys make concurrent writes to one key (conflicts) common. */
  keysPerBucket: number;
  /** Share of blobs too large to ride inline, so that receivers must fetch them. */
  largeBlobShare: number;
  /** Share of writes effective in the future (scheduled, as releases are). */
  futureShare: number;
  /** Blobs at most this large ride inline (the store's inlineBytesMax, scaled down). */
  inlineBytesMax: number;
}

export const defaultWorkload: WorkloadShape = {
  buckets: ['app', 'data'],
  keysPerBucket: 4,
  largeBlobShare: 0.2,
  futureShare: 0.1,
  inlineBytesMax: 256,
};

/** A local commit as the write path returns it: durable only once its fsync completes. */
export interface LocalWrite {
  id: CommitId;
  body: string;
  commit: Commit;
}

/**
 * Makes local commits exactly as the real write path (`write-path.ts` applyOne) does: seq after the
 * last one in the log, an HLC from a hybrid clock over the node's (skewed) clock that has observed
 * every commit in the log, and for each put or delete the parents a read at the write's own
 * effective time returns now (winner and conflicts). Blobs are stored before the commit names them.
 */
export class LocalWriter {
  private readonly hlc: HybridClock;

  constructor(
    private readonly self: NodeId,
    private readonly storage: SimStorage,
    clock: Clock,
    private readonly shape: WorkloadShape,
  ) {
    this.hlc = new HybridClock(self, clock);
    // After a restart, keep issuing timestamps above everything in the log (as WritePath does).
    for (const entry of storage.entries()) this.hlc.observe(entry.commit.hlc);
  }

  /** A commit applied from a peer advances the clock past it (WritePath.applyRemote). */
  observe(hlc: Hlc): void {
    this.hlc.observe(hlc);
  }

  /** A write to `keys` (bucket, key pairs); or a retraction when `retract` finds a version to withdraw. */
  write(prng: Prng, keys: Array<[string, string]>): LocalWrite {
    const hlc = this.hlc.tick();
    const txTime = hlcWall(hlc);
    const ops: Op[] = [];
    const retract = prng.chance(0.05) ? this.retractable(prng) : undefined;
    if (retract) {
      const target = this.storage.version(retract);
      ops.push({
        kind: 'retract',
        bucket: target?.bucket as string,
        key: target?.key as string,
        parents: [],
        effectiveAt: txTime,
        target: retract,
      });
    }
    for (const [bucket, key] of retract ? [] : keys) {
      const effectiveAt = prng.chance(this.shape.futureShare) ? txTime + prng.int(50, 3_000) : txTime;
      const { winner, conflicts } = resolve(this.storage.versionsOf(bucket, key), {
        at: effectiveAt,
        hlcBefore: '~',
      });
      const parents = winner ? [winner.version, ...conflicts.map((conflict) => conflict.version)] : [];
      if (winner?.kind === 'put' && prng.chance(0.15)) {
        ops.push({ kind: 'delete', bucket, key, parents, effectiveAt });
        continue;
      }
      const bytes = this.blobBytes(prng);
      const blob = sha256(bytes) as BlobId;
      this.storage.putBlob(blob, bytes);
      const put: Op = {
        kind: 'put',
        bucket,
        key,
        parents,
        blob,
        contentType: 'application/octet-stream',
        size: bytes.length,
        effectiveAt,
      };
      const refs = prng.chance(0.1) ? this.someVersions(prng, bucket, key) : [];
      if (refs.length > 0) put.refs = refs;
      ops.push(put);
    }
    const commit: Commit = { origin: this.self, seq: this.storage.lastSeqOf(this.self) + 1, hlc, ops };
    const body = encodeCommit(commit);
    const id = commitId(commit);
    this.storage.appendLocal(body, id);
    return { id, body, commit };
  }

  private blobBytes(prng: Prng): Buffer {
    const reuse = prng.chance(0.05) ? this.someBlob(prng) : undefined;
    if (reuse) return reuse;
    if (prng.chance(this.shape.largeBlobShare))
      return prng.bytes(prng.int(this.shape.inlineBytesMax + 1, this.shape.inlineBytesMax * 8));
    return prng.bytes(prng.int(1, this.shape.inlineBytesMax));
  }

  /** An existing blob's bytes: the same content written again under another key. */
  private someBlob(prng: Prng): Buffer | undefined {
    const entries = this.storage.entries();
    if (entries.length === 0) return undefined;
    const op = prng.pick(prng.pick(entries).commit.ops);
    return op.blob === undefined ? undefined : this.storage.blob(op.blob);
  }

  /** Versions of other keys that this put depends on (as a route table refs what it routes). */
  private someVersions(prng: Prng, bucket: string, key: string): VersionId[] {
    const others = [...this.storage.allVersions()].filter(
      (version) => version.bucket !== bucket || version.key !== key,
    );
    return prng.sample(others, prng.int(1, 2)).map((version) => version.version);
  }

  /** A version that is not itself a retraction and not yet retracted (WritePath.planRetract). */
  private retractable(prng: Prng): VersionId | undefined {
    const candidates = [...this.storage.allVersions()].filter(
      (version) => version.kind !== 'retract' && !this.storage.isRetracted(version.version),
    );
    return candidates.length === 0 ? undefined : prng.pick(candidates).version;
  }
}

/** Every (bucket, key) of the workload. */
export function keySpace(shape: WorkloadShape): Array<[string, string]> {
  return shape.buckets.flatMap((bucket) =>
    Array.from({ length: shape.keysPerBucket }, (_, index) => [bucket, `key-${index}`] as [string, string]),
  );
}
