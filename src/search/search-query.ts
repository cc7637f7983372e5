import type { Statement } from 'better-sqlite3';
import { fail } from '../core/errors.js';
import { hlcUpperBound, hlcWall } from '../core/hlc.js';
import { Lru } from '../core/lru.js';
import type { Db } from '../log/database.js';
import type { Snapshot } from '../store/snapshot.js';
import { fieldToken, pairSeparator } from './documents.js';
import { identifierTerms } from './identifiers.js';

export type SearchKind = 'text' | 'code' | 'diff';

export interface SearchRequest {
  q?: string;
  kind: SearchKind;
  /** Identifier defined / referenced (code). */
  def?: string;
  ref?: string;
  bucket?: string;
  prefix?: string;
  versions: 'current' | 'all';
  /** Transaction-time range, epoch ms, inclusive. */
  from?: number;
  to?: number;
  /** With versions=current: what was current at this effective time (default now). */
  at?: number;
  limit: number;
  cursor?: string;
}

/** Which buckets a reader may see hits from. */
export type BucketFilter = { kind: 'all' } | { kind: 'user' } | { kind: 'only'; buckets: string[] };

export interface SearchHit {
  bucket: string;
  key: string;
  version: string;
  commit: string;
  txTime: number;
  effectiveAt: number;
  score: number;
  snippet: string;
  /** The object is larger than the index limit: only its beginning was searched. */
  truncated?: boolean;
  /** Diff hits: the added and removed lines that contain a searched term. */
  lines?: { added: string[]; removed: string[] };
}

export interface SearchResult {
  hits: SearchHit[];
  cursor?: string;
  /** Set when the terms matched more versions than are ranked: only the newest this many were. */
  rankedWithin?: number;
}

export interface RecentChange {
  bucket: string;
  key: string;
  version: string;
  kind: string;
  txTime: number;
  effectiveAt: number;
}

const tables: Record<SearchKind, { table: string; columns: string[] }> = {
  text: { table: 'search_text', columns: ['body', 'fields'] },
  code: { table: 'search_code', columns: ['defined', 'referenced'] },
  diff: { table: 'search_diff', columns: ['added', 'removed'] },
};
/** Snippet markers: plain characters that survive JSON and terminals. */
const markOpen = '«';
const markClose = '»';
/** Rows read per round when filters run after the match (current versions, at=): bounded work per request. */
const roundsMax = 20;
/**
 * Matches ranked at most per query, by default: bm25 costs about 1 µs per match, so 20,000 keeps
 * the ranking within ~20 ms. Beyond that the newest matches are ranked (versions are most often
 * wanted recent).
 */
export const rankedMatchesMaxDefault = 20_000;
/** Rows scanned at most by `recent`, so a bucket-filtered call on a busy store stays cheap. */
const recentScanMax = 100_000;

/**
 * Queries of the search index (DESIGN §4). A query runs in one snapshot: only versions at log
 * positions up to the snapshot's are seen.
 */
export class SearchQueries {
  /** Statements by SQL text: the shapes of queries are few, and preparing costs more than a rare-term search. */
  private readonly statements = new Lru<string, Statement>(64);

  constructor(
    private readonly db: Db,
    private readonly rankedMatchesMax = rankedMatchesMaxDefault,
  ) {}

  private statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  search(snapshot: Snapshot, request: SearchRequest, visible: BucketFilter): SearchResult {
    const match = matchExpression(request);
    this.checkSyntax(request.kind, match);
    const { table } = tables[request.kind];
    const conditions = [`${table} MATCH @match`, 'v.pos <= @pos'];
    const parameters: Record<string, unknown> = { match, pos: snapshot.pos };

    // Ranked by bm25() rather than the `rank` column when a rowid range applies: with `ORDER BY
    // rank` FTS5 scores every match of the whole table before the range applies.
    let ranged = request.from !== undefined || request.to !== undefined;
    // A transaction-time range becomes a cursor (rowid) range FTS5 can skip by; the exact check
    // on hlc follows, so commits applied out of time order are still filtered right.
    if (request.from !== undefined || request.to !== undefined) {
      const range = this.cursorRange(request.from, request.to);
      if (!range) return { hits: [] };
      conditions.push('f.rowid BETWEEN @low AND @high');
      Object.assign(parameters, range);
      if (request.from !== undefined) {
        conditions.push('v.hlc >= @hlcFrom');
        parameters.hlcFrom = hlcUpperBound(request.from - 1);
      }
      if (request.to !== undefined) {
        conditions.push('v.hlc < @hlcTo');
        parameters.hlcTo = hlcUpperBound(request.to);
      }
    }
    // Scoring costs per match: a term found in hundreds of thousands of versions is ranked among
    // its newest `rankedMatchesMax` matches only (said in the answer), which keeps the p99 bounded.
    const newest = this.newestRanked(
      table,
      match,
      parameters.low as number | undefined,
      parameters.high as number | undefined,
    );
    if (newest !== undefined) {
      conditions.push('f.rowid >= @newest');
      parameters.newest = newest;
      ranged = true;
    }
    if (request.bucket !== undefined) {
      conditions.push('v.bucket = @bucket');
      parameters.bucket = request.bucket;
    }
    if (request.prefix) {
      conditions.push('substr(v.key, 1, @prefixLength) = @prefix');
      Object.assign(parameters, { prefix: request.prefix, prefixLength: request.prefix.length });
    }
    if (visible.kind === 'user') conditions.push("substr(v.bucket, 1, 1) <> '_'");
    if (visible.kind === 'only') {
      if (visible.buckets.length === 0) return { hits: [] };
      conditions.push(`v.bucket IN (SELECT value FROM json_each(@visible))`);
      parameters.visible = JSON.stringify(visible.buckets);
    }
    const at = request.at ?? snapshot.now;
    if (request.versions === 'current') {
      // Current = the key's winner at `at`. search_keys holds the winner over all effective times;
      // it is the winner now unless the key has versions effective later: those are checked below.
      conditions.push('(k.winner = f.rowid OR k.effective_max > @at)', 'v.effective_at <= @at');
      parameters.at = at;
    }
    const sql = `
      SELECT f.rowid AS cursor, -bm25(${table}) AS score,
             snippet(${table}, -1, '${markOpen}', '${markClose}', '…', 16) AS snippet,
             ${request.kind === 'diff' ? 'f.added AS added, f.removed AS removed,' : ''}
             v.version, v.commit_id, v.bucket, v.key, v.hlc, v.effective_at, k.winner, k.effective_max, d.truncated
      FROM ${table} f
      JOIN versions v ON v.cursor = f.rowid
      JOIN search_keys k ON k.bucket = v.bucket AND k.key = v.key
      LEFT JOIN search_docs d ON d.cursor = f.rowid
      WHERE ${conditions.join(' AND ')}
      ORDER BY ${ranged ? `bm25(${table}), f.rowid` : 'f.rank'}
      LIMIT @batch OFFSET @offset`;
    const statement = this.statement(sql);
    const terms = searchedTerms(request);
    const capped = newest !== undefined ? { rankedWithin: this.rankedMatchesMax } : {};
    const hits: SearchHit[] = [];
    let offset = decodeCursor(request.cursor);
    // With versions=all every row is a hit: read one page. Otherwise read ahead for rows the
    // current-version check may drop.
    const batch = request.versions === 'all' ? request.limit + 1 : Math.max(request.limit * 2, 50);
    for (let round = 0; round < roundsMax && hits.length < request.limit; round += 1) {
      const rows = statement.all({ ...parameters, batch, offset }) as HitRow[];
      let used = 0;
      for (const row of rows) {
        used += 1;
        offset += 1;
        if (
          request.versions === 'current' &&
          row.winner !== row.cursor &&
          !this.isWinnerAt(snapshot, row, at)
        )
          continue;
        hits.push(toHit(row, request.kind, terms));
        if (hits.length === request.limit) break;
      }
      // Every match has been read: no further page.
      if (rows.length < batch && used === rows.length) return { hits, ...capped };
    }
    return { hits, cursor: encodeCursor(offset), ...capped };
  }

  /** Keys changed most recently first, newest version of each. */
  recent(
    snapshot: Snapshot,
    options: { bucket?: string; since?: number; until?: number; limit: number },
    visible: BucketFilter,
  ): RecentChange[] {
    const statement = this.db.prepare(
      `SELECT cursor, version, bucket, key, kind, hlc, effective_at FROM versions
       WHERE pos <= ? AND cursor < ? ${options.bucket !== undefined ? 'AND bucket = ?' : ''}
       ORDER BY cursor DESC LIMIT 1000`,
    );
    const seen = new Set<string>();
    const changes: RecentChange[] = [];
    const sinceBound = options.since === undefined ? undefined : hlcUpperBound(options.since - 1);
    const untilBound = options.until === undefined ? undefined : hlcUpperBound(options.until);
    let before = Number.MAX_SAFE_INTEGER;
    for (let scanned = 0; scanned < recentScanMax && changes.length < options.limit; ) {
      const args: unknown[] = [snapshot.pos, before];
      if (options.bucket !== undefined) args.push(options.bucket);
      const rows = statement.all(...args) as Array<HitRow & { kind: string }>;
      for (const row of rows) {
        scanned += 1;
        before = row.cursor;
        if (sinceBound !== undefined && row.hlc < sinceBound) return changes;
        if (untilBound !== undefined && row.hlc >= untilBound) continue;
        if (!isVisible(row.bucket, visible)) continue;
        const slot = `${row.bucket}\u0000${row.key}`;
        if (seen.has(slot)) continue;
        seen.add(slot);
        changes.push({
          bucket: row.bucket,
          key: row.key,
          version: row.version,
          kind: row.kind,
          txTime: hlcWall(row.hlc as never),
          effectiveAt: row.effective_at,
        });
        if (changes.length === options.limit) return changes;
      }
      if (rows.length < 1000) return changes;
    }
    return changes;
  }

  /** The lowest rowid among the newest `rankedMatchesMax` matches, when there are more matches than that. */
  private newestRanked(
    table: string,
    match: string,
    low = 0,
    high = Number.MAX_SAFE_INTEGER,
  ): number | undefined {
    // Two rows from the N-th newest on: a second one means there are more than N matches.
    const rows = this.statement(
      `SELECT rowid FROM ${table} WHERE ${table} MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid DESC LIMIT 2 OFFSET ${this.rankedMatchesMax - 1}`,
    ).all(match, low, high) as Array<{ rowid: number }>;
    return rows.length === 2 ? (rows[0] as { rowid: number }).rowid : undefined;
  }

  private isWinnerAt(snapshot: Snapshot, row: HitRow, at: number): boolean {
    const { winner } = snapshot.read(row.bucket, row.key, { at });
    return winner?.version === row.version;
  }

  private cursorRange(
    from: number | undefined,
    to: number | undefined,
  ): { low: number; high: number } | undefined {
    const low =
      from === undefined
        ? 0
        : (this.db
            .prepare('SELECT cursor FROM versions WHERE hlc >= ? ORDER BY hlc LIMIT 1')
            .pluck()
            .get(hlcUpperBound(from - 1)) as number | undefined);
    const high =
      to === undefined
        ? Number.MAX_SAFE_INTEGER
        : (this.db
            .prepare('SELECT cursor FROM versions WHERE hlc < ? ORDER BY hlc DESC LIMIT 1')
            .pluck()
            .get(hlcUpperBound(to)) as number | undefined);
    if (low === undefined || high === undefined || low > high) return undefined;
    return { low, high };
  }

  /** FTS5 reports syntax errors when a statement runs; run a tiny one first to report them as 400. */
  private checkSyntax(kind: SearchKind, match: string): void {
    const { table } = tables[kind];
    try {
      this.statement(`SELECT rowid FROM ${table} WHERE ${table} MATCH ? LIMIT 1`).all(match);
    } catch (error) {
      const message = (error as Error).message.replace(/^fts5: /, '');
      fail('STRATA_BAD_QUERY', `the query is not valid FTS5 syntax: ${message}`, { query: match });
    }
  }
}

interface HitRow {
  cursor: number;
  score: number;
  snippet: string;
  added?: string;
  removed?: string;
  version: string;
  commit_id: string;
  bucket: string;
  key: string;
  hlc: string;
  effective_at: number;
  winner: number | null;
  effective_max: number;
  truncated: number | null;
}

function toHit(row: HitRow, kind: SearchKind, terms: string[]): SearchHit {
  const hit: SearchHit = {
    bucket: row.bucket,
    key: row.key,
    version: row.version,
    commit: row.commit_id,
    txTime: hlcWall(row.hlc as never),
    effectiveAt: row.effective_at,
    score: row.score,
    // The filler between JSON field pairs is an index artefact: show it as a separator.
    snippet: row.snippet
      .split(pairSeparator)
      .map((part) => part.trim())
      .filter((part, index, parts) => part !== '' || (index > 0 && index < parts.length - 1))
      .join(' · '),
  };
  if (row.truncated) hit.truncated = true;
  if (kind === 'diff') {
    const matching = (text: string | undefined) =>
      (text ?? '')
        .split('\n')
        .filter(
          (line) =>
            line.length > 0 &&
            (terms.length === 0 || terms.some((term) => line.toLowerCase().includes(term))),
        );
    hit.lines = { added: matching(row.added), removed: matching(row.removed) };
  }
  return hit;
}

function isVisible(bucket: string, visible: BucketFilter): boolean {
  if (visible.kind === 'all') return true;
  if (visible.kind === 'user') return !bucket.startsWith('_');
  return visible.buckets.includes(bucket);
}

/**
 * The FTS5 expression of a request. `q` is passed through (FTS5 syntax), except that a `name:value`
 * word whose name is not a column of the kind's table is read as a JSON field query and becomes the
 * phrase `fields:"name value"` (see documents.ts).
 */
export function matchExpression(request: SearchRequest): string {
  const parts: string[] = [];
  const { columns } = tables[request.kind];
  if (request.q !== undefined && request.q.trim() !== '') {
    parts.push(`(${request.kind === 'text' ? rewriteFieldTerms(request.q, columns) : request.q})`);
  }
  if (request.def !== undefined) parts.push(`defined : ${identifierPhrase(request.def, 'def')}`);
  if (request.ref !== undefined) parts.push(`referenced : ${identifierPhrase(request.ref, 'ref')}`);
  if (parts.length === 0) fail('STRATA_BAD_QUERY', 'give q=, or def=/ref= with kind=code');
  return parts.join(' AND ');
}

function identifierPhrase(name: string, what: string): string {
  const [whole] = identifierTerms(name);
  if (!whole) fail('STRATA_BAD_QUERY', `${what}= must be an identifier`);
  return `"${whole}"`;
}

function rewriteFieldTerms(q: string, columns: string[]): string {
  // Split into quoted strings and the rest; only unquoted words are rewritten.
  return q
    .split(/("(?:[^"]|"")*")/)
    .map((piece) =>
      piece.startsWith('"')
        ? piece
        : piece.replace(
            /(^|[\s(])([\p{L}\p{N}_]+):([\p{L}\p{N}_]+)(?=$|[\s)])/gu,
            (whole, lead: string, name: string, value: string) => {
              if (columns.includes(name)) return whole;
              const field = fieldToken(name);
              return field ? `${lead}fields:"${field} ${value.toLowerCase()}"` : whole;
            },
          ),
    )
    .join('');
}

/** Lower-case words of the request, to pick the changed lines worth showing in diff hits. */
function searchedTerms(request: SearchRequest): string[] {
  const reserved = new Set(['and', 'or', 'not', 'near']);
  return (request.q ?? '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}_]+/u)
    .filter((term) => term.length > 1 && !reserved.has(term));
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { offset: unknown };
    if (Number.isSafeInteger(offset) && (offset as number) >= 0) return offset as number;
  } catch {
    // fall through
  }
  fail('STRATA_BAD_REQUEST', 'cursor is not one returned by a previous search');
}
