import type { Envelope } from '../../src/cluster/messages.js';
import type { ReplicaStorage } from '../../src/cluster/protocol.js';
import type { VersionVector } from '../../src/cluster/version-vector.js';
import { type Commit, commitId, decodeCommit, encodeCommit, type Op } from '../../src/core/commit.js';
import { sha256 } from '../../src/core/hash.js';
import { formatHlc } from '../../src/core/hlc.js';
import { type BlobId, type CommitId, type NodeId, type VersionId, versionId } from '../../src/core/ids.js';

/** Unit tests of the cluster protocol: real commits, and a store in memory that refuses what the log would. */
export const start = 1_700_000_000_000;

export interface Built {
  id: CommitId;
  commit: Commit;
  envelope: Envelope;
}

/** A real commit (decodeCommit accepts it), one op: a put when it names a blob, else a delete or retract. */
export function build(
  origin: NodeId,
  seq: number,
  options: {
    parents?: VersionId[];
    refs?: VersionId[];
    target?: VersionId;
    blob?: Buffer;
    inline?: boolean;
    wall?: number;
    key?: string;
  } = {},
): Built {
  const op: Op = {
    kind: options.target ? 'retract' : options.blob ? 'put' : 'delete',
    bucket: 'b',
    key: options.key ?? `${origin.slice(0, 2)}-${seq}`,
    parents: options.parents ?? [],
    effectiveAt: 0,
  };
  if (options.blob) {
    op.blob = sha256(options.blob) as BlobId;
    op.contentType = 'application/octet-stream';
    op.size = options.blob.length;
  }
  if (options.refs) op.refs = options.refs;
  if (options.target) op.target = options.target;
  const commit: Commit = {
    origin,
    seq,
    hlc: formatHlc({ wall: options.wall ?? start, counter: seq, node: origin }),
    ops: [op],
  };
  const id = commitId(commit);
  const envelope: Envelope = { id, body: encodeCommit(commit) };
  if (options.blob && options.inline)
    envelope.blobs = { [op.blob as string]: options.blob.toString('base64') };
  return { id, commit: decodeCommit(envelope.body, id), envelope };
}

/**
 * A node's store in memory. It refuses, like the real log, a commit whose seq does not follow or
 * that names a version or blob it does not hold: in these tests a refusal means the protocol
 * handed a commit out too early.
 */
export class MemoryStorage implements ReplicaStorage {
  readonly log: Built[] = [];
  private readonly byId = new Map<CommitId, Built>();
  private readonly vector: VersionVector = {};
  readonly blobs = new Set<string>();

  revision(): VersionVector {
    return { ...this.vector };
  }
  hasCommit(id: CommitId): boolean {
    return this.byId.has(id);
  }
  hasBlob(hash: string): boolean {
    return this.blobs.has(hash);
  }
  envelope(id: CommitId): Envelope | undefined {
    return this.byId.get(id)?.envelope;
  }
  missingFrom(
    revision: VersionVector,
    limits: { commitsMax: number; bytesMax: number },
  ): { envelopes: Envelope[]; more: boolean } {
    const lacking = this.log.filter((built) => built.commit.seq > (revision[built.commit.origin] ?? 0));
    const envelopes: Envelope[] = [];
    let bytes = 0;
    for (const built of lacking) {
      if (envelopes.length === limits.commitsMax || (envelopes.length > 0 && bytes >= limits.bytesMax)) break;
      envelopes.push(built.envelope);
      bytes += built.envelope.body.length;
    }
    return { envelopes, more: envelopes.length < lacking.length };
  }

  add(envelope: Envelope): void {
    const commit = decodeCommit(envelope.body, envelope.id);
    const previous = this.vector[commit.origin] ?? 0;
    if (commit.seq !== previous + 1)
      throw new Error(`${commit.origin}#${commit.seq} does not follow ${previous}: handed out too early`);
    for (const op of commit.ops) {
      for (const version of [...op.parents, ...(op.refs ?? []), ...(op.target ? [op.target] : [])]) {
        const id = version.slice(0, 64) as CommitId;
        if (!this.byId.has(id)) throw new Error(`${commit.origin}#${commit.seq} names ${id}, not held here`);
      }
      if (op.blob && !this.blobs.has(op.blob) && envelope.blobs?.[op.blob] === undefined)
        throw new Error(`${commit.origin}#${commit.seq} names blob ${op.blob}, not held here`);
    }
    for (const hash of Object.keys(envelope.blobs ?? {})) this.blobs.add(hash);
    const built = { id: envelope.id, commit, envelope };
    this.log.push(built);
    this.byId.set(envelope.id, built);
    this.vector[commit.origin] = commit.seq;
  }

  /** The latest version of a key here, for a write that supersedes it. */
  latest(key: string): VersionId | undefined {
    const entry = this.log.findLast((built) => built.commit.ops[0]?.key === key);
    return entry ? versionId(entry.id, 0) : undefined;
  }
}

/** Delivery with the rest of the node faked; it applies what is handed out only when told to (`settle`). */
