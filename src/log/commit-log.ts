import { type Commit, decodeCommit, encodeCommit, parseCanonicalCommit } from '../core/commit.js';
import { fail } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Db } from './database.js';

export interface LoggedCommit {
  pos: number;
  id: CommitId;
  commit: Commit;
  /** The canonical encoding: what travels to peers, and what `id` hashes. */
  body: string;
}

/** A commit's row as it is sent to a peer: verified, but not decoded. */
export interface CommitRow {
  pos: number;
  id: CommitId;
  body: string;
}

/**
 * The append-only commit log. Ids are checked when a commit is written and again when it is
 * read back (STYLE §13), so a corrupted row is caught before anything is derived from it.
 */
export class CommitLog {
  private readonly insert;
  private readonly byId;
  private readonly byPos;
  private readonly fromPos;
  private readonly maxSeq;
  private readonly exists;
  private readonly revisionQuery;
  private readonly originAfter;

  constructor(db: Db) {
    this.insert = db.prepare('INSERT INTO commits (id, origin, seq, hlc, body) VALUES (?, ?, ?, ?, ?)');
    this.byId = db.prepare('SELECT pos, id, body FROM commits WHERE id = ?');
    this.byPos = db.prepare('SELECT pos, id, body FROM commits WHERE pos = ?');
    this.fromPos = db.prepare('SELECT pos, id, body FROM commits WHERE pos > ? ORDER BY pos LIMIT ?');
    this.maxSeq = db.prepare('SELECT MAX(seq) AS seq FROM commits WHERE origin = ?').pluck();
    this.exists = db.prepare('SELECT 1 FROM commits WHERE id = ?').pluck();
    this.revisionQuery = db.prepare(
      'SELECT origin, MAX(seq) AS seq FROM commits WHERE pos <= ? GROUP BY origin',
    );
    this.originAfter = db.prepare(
      'SELECT pos, id, body FROM commits WHERE origin = ? AND seq > ? AND pos <= ? ORDER BY seq LIMIT ?',
    );
  }

  has(id: string): boolean {
    return this.exists.get(id) !== undefined;
  }

  /** Origin → highest seq among commits at positions up to `pos` (seqs have no gaps, see append). A scan: read once at start. */
  revision(pos: number): Record<string, number> {
    const vector: Record<string, number> = {};
    for (const row of this.revisionQuery.all(pos) as Array<{ origin: string; seq: number }>)
      vector[row.origin] = row.seq;
    return vector;
  }

  /**
   * Commits at positions up to `pos` that a node at `revision` lacks, in log order: that order is
   * causal (a commit was appended only after everything it depends on), so the receiver can apply
   * them as they come. At most `limit` of them.
   */
  missingFrom(
    revision: Record<string, number>,
    ours: Record<string, number>,
    pos: number,
    limit: number,
  ): CommitRow[] {
    const rows: CommitRow[] = [];
    for (const [origin, seq] of Object.entries(ours)) {
      const known = revision[origin] ?? 0;
      if (seq > known) rows.push(...(this.originAfter.all(origin, known, pos, limit) as CommitRow[]));
    }
    rows.sort((a, b) => a.pos - b.pos);
    return rows.slice(0, limit);
  }

  /**
   * Appends a commit and returns its id and position. The caller holds the write transaction.
   * `decoded` is a commit from a peer that `decodeCommit` has just produced from this body and id.
   */
  append(commit: Commit, decoded?: { id: CommitId; body: string }): LoggedCommit {
    const body = decoded?.body ?? encodeCommit(commit);
    const id = decoded?.id ?? (sha256(body) as CommitId);
    // Verify before writing what every reader will verify after (STYLE §13): a commit that could not
    // be read back must never reach the log. The id was just hashed from this body, so only the
    // parse, shape and canonical form are left to check. (A decoded commit was verified by that decode.)
    if (!decoded) parseCanonicalCommit(body);
    const previous = this.lastSeq(commit.origin);
    if (commit.seq !== previous + 1) {
      fail('STRATA_CONFLICT', `commit seq ${commit.seq} from ${commit.origin} does not follow ${previous}`);
    }
    const result = this.insert.run(id, commit.origin, commit.seq, commit.hlc, body);
    return { pos: Number(result.lastInsertRowid), id, commit, body };
  }

  get(id: string): LoggedCommit | undefined {
    return this.decode(this.byId.get(id) as Row | undefined);
  }

  at(pos: number): LoggedCommit | undefined {
    return this.decode(this.byPos.get(pos) as Row | undefined);
  }

  /** Commits after `pos` in log order, at most `limit`. */
  after(pos: number, limit: number): LoggedCommit[] {
    return (this.fromPos.all(pos, limit) as Row[]).map((row) => this.decode(row) as LoggedCommit);
  }

  lastSeq(origin: NodeId): number {
    return (this.maxSeq.get(origin) as number | null) ?? 0;
  }

  private decode(row: Row | undefined): LoggedCommit | undefined {
    if (!row) return undefined;
    // decodeCommit re-hashes the stored body: a mismatch here is corruption, not bad input.
    try {
      return { pos: row.pos, id: row.id as CommitId, commit: decodeCommit(row.body, row.id), body: row.body };
    } catch (error) {
      throw new Error(`log corruption at position ${row.pos}: ${(error as Error).message}`);
    }
  }
}

interface Row {
  pos: number;
  id: string;
  body: string;
}
