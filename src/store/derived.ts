import type { Commit } from '../core/commit.js';
import type { BlobId, CommitId, Hlc, NodeId, VersionId } from '../core/ids.js';
import { versionId } from '../core/ids.js';
import type { Db } from '../log/database.js';
import type { VersionNode } from './winner.js';

/**
 * Derived tables: everything here is rebuilt from the log by `reindex` (DESIGN §1.1).
 * `cursor` is the order in which versions were applied on this node; the change feed counts in it.
 * `pos` is the log position of the version's commit; reads compare it with the durable watermark.
 */
export const derivedSchema = `
CREATE TABLE IF NOT EXISTS versions (
  cursor INTEGER PRIMARY KEY,
  version TEXT NOT NULL,
  pos INTEGER NOT NULL,
  commit_id TEXT NOT NULL,
  op_index INTEGER NOT NULL,
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  kind TEXT NOT NULL,
  origin TEXT NOT NULL,
  hlc TEXT NOT NULL,
  effective_at INTEGER NOT NULL,
  blob TEXT,
  content_type TEXT,
  size INTEGER,
  parents TEXT NOT NULL,
  refs TEXT,
  target TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS versions_by_key ON versions (bucket, key);
-- One bucket's change feed: an index keeps the rowid (the cursor) after its columns, so this one
-- lists a bucket's versions in cursor order from any cursor, without reading or sorting the rest.
CREATE INDEX IF NOT EXISTS versions_by_bucket ON versions (bucket);
-- Versions are found by (commit position, op index), not by their hash-like id: positions grow, so
-- this index is appended to, where an index on the id would take a random page per write.
CREATE INDEX IF NOT EXISTS versions_by_pos ON versions (pos, op_index);
CREATE INDEX IF NOT EXISTS versions_by_target ON versions (target) WHERE target IS NOT NULL;
`;

export interface VersionRow extends VersionNode {
  cursor: number;
  pos: number;
  commit: CommitId;
  opIndex: number;
  bucket: string;
  key: string;
  origin: NodeId;
  blob?: BlobId;
  contentType?: string;
  size?: number;
  refs?: VersionId[];
}

/** Writes the derived rows of one commit. The caller holds the transaction that appended it. */
/** Told of every version as it is derived, inside the same transaction (the search index is one). */
export type VersionListener = (row: VersionRow) => void;

export class Deriver {
  private readonly insert;
  private readonly listeners: VersionListener[] = [];

  constructor(db: Db) {
    db.exec(derivedSchema);
    this.insert = db.prepare(
      `INSERT INTO versions (version, pos, commit_id, op_index, bucket, key, kind, origin, hlc, effective_at,
         blob, content_type, size, parents, refs, target)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  listen(listener: VersionListener): void {
    this.listeners.push(listener);
  }

  apply(id: CommitId, pos: number, commit: Commit): VersionId[] {
    return commit.ops.map((op, index) => {
      const version = versionId(id, index);
      const result = this.insert.run(
        version,
        pos,
        id,
        index,
        op.bucket,
        op.key,
        op.kind,
        commit.origin,
        commit.hlc,
        op.effectiveAt,
        op.blob ?? null,
        op.contentType ?? null,
        op.size ?? null,
        JSON.stringify(op.parents),
        op.refs ? JSON.stringify(op.refs) : null,
        op.target ?? null,
      );
      if (this.listeners.length > 0) {
        const row: VersionRow = {
          cursor: Number(result.lastInsertRowid),
          pos,
          commit: id,
          opIndex: index,
          version,
          bucket: op.bucket,
          key: op.key,
          kind: op.kind,
          origin: commit.origin,
          hlc: commit.hlc,
          effectiveAt: op.effectiveAt,
          parents: op.parents,
        };
        if (op.blob !== undefined) row.blob = op.blob;
        if (op.contentType !== undefined) row.contentType = op.contentType;
        if (op.size !== undefined) row.size = op.size;
        if (op.refs !== undefined) row.refs = op.refs;
        if (op.target !== undefined) row.target = op.target;
        for (const listener of this.listeners) listener(row);
      }
      return version;
    });
  }
}

export interface RawVersionRow {
  cursor: number;
  version: string;
  pos: number;
  commit_id: string;
  op_index: number;
  bucket: string;
  key: string;
  kind: string;
  origin: string;
  hlc: string;
  effective_at: number;
  blob: string | null;
  content_type: string | null;
  size: number | null;
  parents: string;
  refs: string | null;
  target: string | null;
}

export function toVersionRow(raw: RawVersionRow): VersionRow {
  const row: VersionRow = {
    cursor: raw.cursor,
    version: raw.version as VersionId,
    pos: raw.pos,
    commit: raw.commit_id as CommitId,
    opIndex: raw.op_index,
    bucket: raw.bucket,
    key: raw.key,
    kind: raw.kind as VersionRow['kind'],
    origin: raw.origin as NodeId,
    hlc: raw.hlc as Hlc,
    effectiveAt: raw.effective_at,
    parents: JSON.parse(raw.parents) as VersionId[],
  };
  if (raw.blob !== null) row.blob = raw.blob as BlobId;
  if (raw.content_type !== null) row.contentType = raw.content_type;
  if (raw.size !== null) row.size = raw.size;
  if (raw.refs !== null) row.refs = JSON.parse(raw.refs) as VersionId[];
  if (raw.target !== null) row.target = raw.target as VersionId;
  return row;
}
