import type { Statement } from 'better-sqlite3';
import { fail } from '../core/errors.js';
import { hlcUpperBound, hlcWall } from '../core/hlc.js';
import { Lru } from '../core/lru.js';
import type { Db } from '../log/database.js';
import type { Snapshot } from '../store/snapshot.js';
import { fieldToken, pairSeparator } from './documents.js';
import { prepareExpression } from './fts5-expression.js';
import { identifierTerms } from './identifiers.js';
import { type ContentTable, prefixIndexLengths } from './schema.js';
import { rowidRange } from './search-rowids.js';
import { phrasePairExpression, wordsOf } from './word-pairs.js';

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
  /** With versions=all: the version has been withdrawn (a retraction), as its history says. */
  retracted?: true;
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

/** The content table each kind searches. */
const tables: Record<SearchKind, ContentTable> = {
  text: 'search_text',
  code: 'search_code',
  diff: 'search_diff',
};
/** Snippet markers: plain characters that survive JSON and terminals. */
const markOpen = '«';
const markClose = '»';
/** Rows read per round when filters run after the match (current versions, at=): bounded work per request. */
const roundsMax = 20;
/**
 * Matches ranked at most per query, by default: bm25 costs about 1 µs per match after a count of
 * the term's rows, so 10,000 keeps a common term within the p99 goal at 1M versions (DESIGN,
 * "Ranking fewer matches"). Beyond that the newest matches are ranked (versions are most often
 * wanted recent). `strata serve --search-ranked-max` sets it.
 */
export const rankedMatchesMaxDefault = 10_000;
/** Bounds of `--search-ranked-max`: a full page (1,000 hits) can always be ranked; work stays bounded. */
export const rankedMatchesMaxRange = { min: 1_000, max: 1_000_000 } as const;
/**
 * Rows ranked per row a page needs when filters run after the ranking (current versions, bucket,
 * prefix). About a third of all versions are current ones (the benchmark's corpus has 2.9 versions
 * per key), but code objects change more often than texts, and a round that falls short scores
 * every match again: at 1M versions, `def=renderTexture` took two rounds (64–99 ms) at four times,
 * one (no slower than other identifiers) at sixteen. Keeping 16 rows instead of 4 costs little:
 * the ranked rows are joined only until a page is full.
 */
const filteredRankedPerRow = 16;
/** Each further round (the current-version check dropped rows) ranks this many times more. */
const rankedGrowth = 4;
/**
 * Matches per hit up to which a page's snippets come from one walk over the matches rather than a
 * lookup per hit (see withSnippets): a walk costs ~0.12 µs per match of a word, a lookup ~50 µs.
 */
const snippetWalkMatchesPerHit = 400;
/** Rows scanned at most by `recent`, so a bucket-filtered call on a busy store stays cheap. */
const recentScanMax = 100_000;
/**
 * Rows `recent` reads per statement: a few per change asked for (a key changed several times in a
 * row takes one), at most 1,000.
 */
const recentRowsPerChange = 4;
const recentPageRowsMin = 64;
const recentPageRowsMax = 1000;
/** Sorts after every HLC string: the start of a newest-first scan. */
const everything = '~';

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
    // FTS5 reads a NUL as the end of the query, and would then report a different fault.
    for (const [name, value] of [
      ['q', request.q],
      ['def', request.def],
      ['ref', request.ref],
    ] as const) {
      if (value?.includes('\u0000'))
        fail('STRATA_BAD_QUERY', `${name} must not contain a NUL character (%00)`);
    }
    try {
      return this.run(snapshot, request, visible);
    } catch (error) {
      if (error instanceof ExpressionError) this.refuse(request, error.message);
      throw error;
    }
  }

  private run(snapshot: Snapshot, request: SearchRequest, visible: BucketFilter): SearchResult {
    const phrase = matchExpression(request);
    // A two-word phrase is one term of the pair table (word-pairs.ts); snippets still come from the text.
    const pair =
      request.kind === 'text' && !request.def && !request.ref ? phrasePairExpression(request.q) : undefined;
    const match = pair ?? phrase;
    // A cursor holds the log position and the time of the first page: later pages rank the same
    // versions, so a write made meanwhile neither repeats hits nor pushes one past the reader.
    const resumed = decodeCursor(request.cursor, snapshot.pos);
    let offset = resumed.offset;
    const pos = resumed.pos ?? snapshot.pos;
    const textTable = tables[request.kind];
    const table = pair ? 'search_pairs' : textTable;
    // Search rowids are ordered by transaction time on every node (search-rowids.ts): a from/to
    // range is a rowid range FTS5 itself skips by.
    const range = rowidRange(request.from, request.to);
    // Scoring costs per match: a term found in hundreds of thousands of versions is ranked among
    // its newest `rankedMatchesMax` matches only (said in the answer), which keeps the p99 bounded.
    // Counting them is a walk of the doclist, cheaper than keeping every match for the ranking,
    // except for expressions FTS5 evaluates at a high cost per row: those are counted and ranked
    // in one pass. Counting also reports a malformed query, even with an empty range.
    const onePass = range !== undefined && pair === undefined && costlyToEvaluate(match, textTable);
    let matched: Matched | undefined = onePass
      ? undefined
      : this.newestMatches(table, match, range ?? { low: 1n, high: 0n });
    if (!range || matched?.count === 0) return { hits: [] };
    const conditions = ['v.pos <= @pos'];
    const parameters: Record<string, unknown> = { match, pos, high: range.high };
    // Exact already, unless a range reaches past the last ms that rowids hold (2109).
    if (request.from !== undefined) {
      conditions.push('v.hlc >= @hlcFrom');
      parameters.hlcFrom = hlcUpperBound(request.from - 1);
    }
    if (request.to !== undefined) {
      conditions.push('v.hlc < @hlcTo');
      parameters.hlcTo = hlcUpperBound(request.to);
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
    const at = request.at ?? resumed.at ?? snapshot.now;
    if (request.versions === 'current') {
      // Current = the key's winner at `at`. search_keys holds the winner over all effective times;
      // it is the winner now unless the key has versions effective later: those are checked below.
      conditions.push('(k.winner = v.cursor OR k.effective_max > @at)', 'v.effective_at <= @at');
      parameters.at = at;
    }
    Object.assign(parameters, { low: matched?.low ?? range.low, newest: this.rankedMatchesMax + 1 });
    const statement = this.statement(rankedSql(table, conditions, onePass));
    // Rows the filters may drop: all of them pass with versions=all and no bucket filters, else
    // rank a few times what the page's hits need at first, more if that was not enough.
    const filtered =
      request.versions === 'current' ||
      request.bucket !== undefined ||
      Boolean(request.prefix) ||
      visible.kind !== 'all';
    const rankedPerRow = filtered ? filteredRankedPerRow : 1;
    const rows: HitRow[] = [];
    let ranked = 0;
    let complete = false;
    // With versions=all every row is a hit: read one page. Otherwise read ahead for rows the
    // current-version check may drop.
    const batch = request.versions === 'all' ? request.limit + 1 : Math.max(request.limit * 2, 50);
    for (let round = 0; round < roundsMax && rows.length < request.limit; round += 1) {
      const wanted = Math.max(ranked * rankedGrowth, (offset + request.limit + 1) * rankedPerRow);
      ranked = Math.min(matched?.count ?? wanted, wanted);
      let page = this.evaluate(() => statement.all({ ...parameters, ranked, batch, offset }) as HitRow[]);
      if (!matched) {
        // One pass: every row carries the count, and an empty page comes as one row without a hit.
        const matches = page[0]?.matches ?? 0;
        matched = {
          count: Math.min(matches, this.rankedMatchesMax),
          capped: matches > this.rankedMatchesMax,
        };
        page = page.filter((row) => row.rowid !== null);
      }
      let used = 0;
      for (const row of page) {
        used += 1;
        offset += 1;
        if (
          request.versions === 'current' &&
          row.winner !== row.cursor &&
          !this.isWinnerAt(snapshot, row, at)
        )
          continue;
        rows.push(row);
        if (rows.length === request.limit) break;
      }
      // The rows read are the first of all matches that pass the filters, however many were ranked;
      // fewer than a batch means that every match has been read, or that more must be ranked.
      if (page.length < batch && used === page.length) {
        if (ranked >= matched.count) {
          complete = true;
          break;
        }
        ranked = matched.count;
      }
    }
    const count = matched?.count ?? 0;
    const capped = matched?.capped ? { rankedWithin: this.rankedMatchesMax } : {};
    // For a pair, look each hit up: a walk would evaluate the phrase over the whole rowid span.
    const snippetMatches = pair ? Number.POSITIVE_INFINITY : count;
    const hits = this.withSnippets(
      textTable,
      phrase,
      request.kind,
      rows,
      snippetMatches,
      searchedTerms(request.q),
    );
    // A withdrawn version is still text of the past (versions=all finds it), marked as history marks it.
    if (request.versions === 'all' && hits.length > 0) {
      const withdrawn = new Set(
        this.statement(
          `SELECT target FROM versions WHERE kind = 'retract' AND pos <= @pos
             AND target IN (SELECT value FROM json_each(@versions))`,
        )
          .pluck()
          .all({ pos, versions: JSON.stringify(hits.map((hit) => hit.version)) }) as string[],
      );
      for (const hit of hits) if (withdrawn.has(hit.version)) hit.retracted = true;
    }
    return complete ? { hits, ...capped } : { hits, cursor: encodeCursor({ offset, pos, at }), ...capped };
  }

  /** Keys changed most recently first (by transaction time, as on every node), newest version of each. */
  recent(
    snapshot: Snapshot,
    options: { bucket?: string; since?: number; until?: number; limit: number },
    visible: BucketFilter,
  ): RecentChange[] {
    // Newest first by (hlc, cursor), the order of versions_by_hlc and versions_by_bucket_hlc:
    // versions with one hlc are the ops of one commit, applied together in op order on every node.
    const statement = this.statement(
      `SELECT cursor, version, bucket, key, kind, hlc, effective_at FROM versions
       WHERE pos <= @pos AND hlc >= @since AND (hlc, cursor) < (@hlc, @cursor)
         ${options.bucket !== undefined ? 'AND bucket = @bucket' : ''}
       ORDER BY hlc DESC, cursor DESC LIMIT @rows`,
    );
    const seen = new Set<string>();
    const changes: RecentChange[] = [];
    const parameters: Record<string, unknown> = {
      pos: snapshot.pos,
      since: options.since === undefined ? '' : hlcUpperBound(options.since - 1),
      hlc: options.until === undefined ? everything : hlcUpperBound(options.until),
      cursor: 0,
      rows: Math.min(recentPageRowsMax, Math.max(options.limit * recentRowsPerChange, recentPageRowsMin)),
    };
    if (options.bucket !== undefined) parameters.bucket = options.bucket;
    for (let scanned = 0; scanned < recentScanMax && changes.length < options.limit; ) {
      const rows = statement.all(parameters) as RecentRow[];
      for (const row of rows) {
        scanned += 1;
        parameters.hlc = row.hlc;
        parameters.cursor = row.cursor;
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
      if (rows.length < (parameters.rows as number)) return changes;
    }
    return changes;
  }

  /**
   * The matches in a rowid range, the newest `rankedMatchesMax` of them when there are more: a walk
   * of the doclist in rowid order, no scoring. The count bounds how many rows the ranking reads.
   */
  private newestMatches(table: string, match: string, range: { low: bigint; high: bigint }): Matched {
    const statement = this.statement(
      `SELECT count(*) AS matches, min(rowid) AS oldest FROM (
         SELECT rowid FROM ${table} WHERE ${table} MATCH @match AND rowid BETWEEN @low AND @high
         ORDER BY rowid DESC LIMIT @limit)`,
    ).safeIntegers(true);
    const row = this.evaluate(
      () =>
        statement.get({ match, ...range, limit: this.rankedMatchesMax + 1 }) as {
          matches: bigint;
          oldest: bigint | null;
        },
    );
    // One more than the cap: the oldest of them is the first match left out.
    if (Number(row.matches) > this.rankedMatchesMax && row.oldest !== null)
      return { low: row.oldest + 1n, count: this.rankedMatchesMax, capped: true };
    return { low: range.low, count: Number(row.matches), capped: false };
  }

  /** Hits of the rows, with snippets (and changed lines) computed for these rows only. */
  private withSnippets(
    table: string,
    match: string,
    kind: SearchKind,
    rows: HitRow[],
    matches: number,
    terms: SearchedTerm[],
  ): SearchHit[] {
    if (rows.length === 0) return [];
    const rowids = rows.map((row) => BigInt(row.rowid));
    // FTS5 finds a hit by rowid at ~50 µs (it sets the query up again for each one), and a walk over
    // the matches between the first and last hit costs per match: ~0.1 µs for a word, far more for
    // a phrase of common words. So the hits are looked up one by one, unless the matches are few, or
    // the query has a prefix, which FTS5 would expand again for each hit (up to a second per page for
    // a 4-letter prefix at 1M versions: only 2- and 3-letter prefixes are indexed). `+rowid` keeps
    // the IN list out of FTS5's plan when walking.
    const walk = matches <= rows.length * snippetWalkMatchesPerHit || match.includes('*');
    const snippets = this.statement(
      `SELECT CAST(rowid AS TEXT) AS rowid,
              snippet(${table}, -1, '${markOpen}', '${markClose}', '…', 16) AS snippet
              ${kind === 'diff' ? ', added, removed' : ''}
       FROM ${table}
       WHERE ${table} MATCH @match
         AND ${walk ? 'rowid BETWEEN @low AND @high AND +rowid' : 'rowid'} IN (SELECT value FROM json_each(@rowids))`,
    ).all({
      match,
      rowids: `[${rowids.join(',')}]`,
      ...(walk
        ? {
            low: rowids.reduce((low, rowid) => (rowid < low ? rowid : low)),
            high: rowids.reduce((high, rowid) => (rowid > high ? rowid : high)),
          }
        : {}),
    }) as SnippetRow[];
    const byRowid = new Map(snippets.map((snippet) => [snippet.rowid, snippet]));
    return rows.map((row) => toHit(row, byRowid.get(row.rowid), kind, terms));
  }

  /** Runs a statement with a MATCH: FTS5 reports a malformed expression only then, as a plain SQLite error. */
  private evaluate<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_ERROR') throw error;
      throw new ExpressionError((error as Error).message.replace(/^fts5: /, ''));
    }
  }

  /**
   * Refuses a request whose expression FTS5 could not parse, in the terms of the query the user
   * typed. The expression puts q in parentheses and may join def=/ref= to it, so FTS5's message
   * can name a parenthesis the user never wrote: q's own expression, checked alone, gives the one
   * to show.
   */
  private refuse(request: SearchRequest, message: string): never {
    const own = ownExpression(request);
    if (own !== undefined) {
      const table = tables[request.kind];
      try {
        this.statement(`SELECT rowid FROM ${table} WHERE ${table} MATCH @match LIMIT 1`).get({ match: own });
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_ERROR')
          message = (error as Error).message.replace(/^fts5: /, '');
      }
    }
    fail(
      'STRATA_BAD_QUERY',
      `the query is not valid FTS5 syntax: ${explainSyntaxError(message, request.q ?? '')}`,
      {
        query: request.q,
      },
    );
  }

  private isWinnerAt(snapshot: Snapshot, row: HitRow, at: number): boolean {
    const { winner } = snapshot.read(row.bucket, row.key, { at });
    return winner?.version === row.version;
  }
}

/** The matches a query ranks: how many, whether there were more, and the lowest rowid among them. */
interface Matched {
  count: number;
  capped: boolean;
  low?: bigint;
}

interface HitRow {
  /** The search rowid, as decimal text: rowids are above 2^53 (search-rowids.ts). Null: no hit. */
  rowid: string;
  /** Matches counted, with the one-pass ranking. */
  matches?: number;
  score: number;
  cursor: number;
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

interface RecentRow {
  cursor: number;
  version: string;
  bucket: string;
  key: string;
  kind: string;
  hlc: string;
  effective_at: number;
}

interface SnippetRow {
  rowid: string;
  snippet: string;
  added?: string;
  removed?: string;
}

/**
 * A snippet as the document reads. One of the `fields` column is made of "name word" pairs with
 * fillers between them (documents.ts): `title Lighthouse 0pair0 «title keeper»`. It is shown as the
 * values it came from, `Lighthouse «keeper»`, words of one value side by side, values apart with ` · `.
 */
function readableSnippet(snippet: string): string {
  if (!snippet.includes(pairSeparator)) return snippet;
  const values: string[][] = [[]];
  for (const part of snippet.split(pairSeparator)) {
    const pair = part.trim();
    // Two fillers in a row (an empty part) end a value.
    if (pair === '') {
      if ((values.at(-1) as string[]).length > 0) values.push([]);
      continue;
    }
    // The field's name is the pair's first word; a mark or an ellipsis before it stays.
    const word = pair.replace(/^([«…]*)[^\s«»…]+\s*/u, '$1');
    if (word !== '' && word !== '«' && word !== '…') (values.at(-1) as string[]).push(word);
  }
  return values
    .map((words) => words.join(' '))
    .filter((value) => value !== '')
    .join(' · ');
}

function toHit(
  row: HitRow,
  text: SnippetRow | undefined,
  kind: SearchKind,
  terms: SearchedTerm[],
): SearchHit {
  const hit: SearchHit = {
    bucket: row.bucket,
    key: row.key,
    version: row.version,
    commit: row.commit_id,
    txTime: hlcWall(row.hlc as never),
    effectiveAt: row.effective_at,
    score: row.score,
    snippet: readableSnippet(text?.snippet ?? ''),
  };
  if (row.truncated) hit.truncated = true;
  if (kind === 'diff') {
    const matching = (lines: string | undefined) =>
      (lines ?? '')
        .split('\n')
        .filter((line) => line.length > 0 && (terms.length === 0 || holdsTerm(line, terms)));
    hit.lines = { added: matching(text?.added), removed: matching(text?.removed) };
  }
  return hit;
}

/**
 * The ranking statement (DESIGN "Ranking inside FTS5 first"). FTS5 ranks the matches on rowid and
 * bm25 alone and keeps the best `ranked` rows; only those are joined to their versions and
 * filtered (`CROSS JOIN` keeps SQLite reading them first: it would otherwise scan search_docs).
 * Ties go to the older version: rowid order is the same on every node, so the answer is too. With `onePass`, the matches are kept, newest first, as they are scored, and counted from
 * what was kept: one evaluation of the expression instead of a count and then the ranking.
 */
function rankedSql(table: string, conditions: string[], onePass: boolean): string {
  const scored = `SELECT rowid AS search_rowid, bm25(${table}) AS bm25 FROM ${table}
    WHERE ${table} MATCH @match AND rowid BETWEEN @low AND @high`;
  const ranked = onePass
    ? `newest AS MATERIALIZED (${scored} ORDER BY rowid DESC LIMIT @newest),
       bounds AS MATERIALIZED (SELECT count(*) AS matches, min(search_rowid) AS oldest FROM newest),
       ranked AS MATERIALIZED (
         SELECT n.search_rowid, n.bm25 FROM newest n, bounds b
         WHERE b.matches < @newest OR n.search_rowid > b.oldest
         ORDER BY n.bm25, n.search_rowid LIMIT @ranked)`
    : `ranked AS MATERIALIZED (${scored} ORDER BY bm25(${table}), rowid LIMIT @ranked)`;
  const page = `SELECT CAST(r.search_rowid AS TEXT) AS rowid, -r.bm25 AS score,
      v.cursor, v.version, v.commit_id, v.bucket, v.key, v.hlc, v.effective_at,
      k.winner, k.effective_max, d.truncated
    FROM ranked r
    CROSS JOIN search_docs d ON d.search_rowid = r.search_rowid
    JOIN versions v ON v.cursor = d.cursor
    JOIN search_keys k ON k.bucket = v.bucket AND k.key = v.key
    WHERE ${conditions.join(' AND ')}
    ORDER BY r.bm25, r.search_rowid
    LIMIT @batch OFFSET @offset`;
  return onePass
    ? `WITH ${ranked}
       SELECT b.matches, p.* FROM bounds b LEFT JOIN (${page}) p ON true
       ORDER BY p.score DESC, CAST(p.rowid AS INTEGER)`
    : `WITH ${ranked} ${page}`;
}

/**
 * Expressions FTS5 evaluates at a cost per row far above a word's: a phrase of several tokens
 * (positions are compared in every row that holds all of them), NEAR, and a prefix longer than the
 * longest the table's prefix index holds (its terms' doclists are merged first). At 1M versions the
 * count alone of the phrase "the year" takes 45 ms.
 */
function costlyToEvaluate(match: string, table: ContentTable): boolean {
  return /"[^"]*[^\p{L}\p{N}"][^"]*"|NEAR\(/u.test(match) || longPrefixes[table].test(match);
}

/** Per table, a prefix query longer than its prefix index holds. */
const longPrefixes = Object.fromEntries(
  Object.entries(prefixIndexLengths).map(([table, lengths]) => [
    table,
    new RegExp(`[\\p{L}\\p{N}]{${Math.max(...lengths) + 1},}\\*`, 'u'),
  ]),
) as Record<ContentTable, RegExp>;

function isVisible(bucket: string, visible: BucketFilter): boolean {
  if (visible.kind === 'all') return true;
  if (visible.kind === 'user') return !bucket.startsWith('_');
  return visible.buckets.includes(bucket);
}

/** FTS5 refused the expression; the message is FTS5's, without its prefix. */
class ExpressionError extends Error {}

/**
 * FTS5's message about q made plainer: where it broke, when that can be told, and what the usual
 * mistake is. The column hint covers a `name:` that is read as a column filter.
 */
export function explainSyntaxError(message: string, q: string): string {
  // An odd count of quotes leaves a phrase open, whatever FTS5 tripped on after it.
  if ((q.match(/"/g) ?? []).length % 2 === 1 || message === 'unterminated string')
    return 'unterminated string: a phrase\'s closing " is missing';
  if (message === 'syntax error near ""')
    return 'the query ends too early: an AND, OR, NOT, NEAR( or ( is missing what should follow it';
  const near = /^syntax error near "(.*)"$/.exec(message)?.[1];
  if (near !== undefined) {
    const at = q.indexOf(near);
    // A token that occurs once is placed; an operator, at its first place where no operand precedes it.
    if (at >= 0 && q.indexOf(near, at + 1) < 0) return `${message}, at character ${at + 1}`;
    const misplaced = misplacedOperator(near, q);
    if (misplaced !== undefined)
      return `${message}, at character ${misplaced + 1} (${near} must follow a word, a phrase or a ))`;
    // FTS5 names what the query became (a column filter put in front of a phrase), not what was typed.
    if (at < 0)
      return 'syntax error: a ^ must start a phrase (^word), and a " must start or end one, not stand inside a word';
    return message;
  }
  const column = /^no such column: (.*)$/.exec(message)?.[1];
  if (column !== undefined)
    return `${message} (${column}: is read as a column filter; a JSON field is queried as name:word, name:prefix* or name:"some words")`;
  if (message.startsWith('unknown special query')) return `${message} (a * must end a word: pre*)`;
  return message;
}

/**
 * Where an operator (AND, OR, NOT) stands with no operand before it: after another operator, an
 * opening parenthesis or nothing. FTS5 parses left to right, so the first such place is the one
 * it refused.
 */
function misplacedOperator(operator: string, q: string): number | undefined {
  if (!['AND', 'OR', 'NOT'].includes(operator)) return undefined;
  let previous: string | undefined;
  for (const token of q.matchAll(/"(?:[^"]|"")*"?|[()]|[^\s()"]+/gu)) {
    if (token[0] === operator && (previous === undefined || ['AND', 'OR', 'NOT', '('].includes(previous)))
      return token.index;
    previous = token[0];
  }
  return undefined;
}

/** q's part of the expression, alone (matchExpression), or undefined without a q. */
function ownExpression(request: SearchRequest): string | undefined {
  if (request.q === undefined || request.q.trim() === '') return undefined;
  // In the text table, plain words are the body's: `fields` holds JSON field names (documents.ts).
  // Its columns are the index's own: every `name:` of a text query is a JSON field (`body:x` finds
  // {"body": "x"}), where code and diff queries name their columns (`defined:`, `added:`).
  return request.kind === 'text'
    ? prepareExpression(rewriteFieldTerms(request.q), 'body')
    : prepareExpression(request.q);
}

/**
 * The FTS5 expression of a request. `q` is passed through (FTS5 syntax), except that a `name:value`
 * term whose name is not a column of the kind's table is read as a JSON field query and becomes a
 * phrase of the `fields` column (rewriteFieldTerms).
 */
export function matchExpression(request: SearchRequest): string {
  const parts: string[] = [];
  const own = ownExpression(request);
  if (own !== undefined) parts.push(`(${own})`);
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

/**
 * A quoted string (left alone), or a `name:value` term: the value unquoted (up to a space, a
 * parenthesis or a colon; it may hold several words, `my-post`) or a quoted string of words, either
 * optionally followed by `*` (the last word a prefix).
 */
const fieldTermPattern =
  /("(?:[^"]|"")*")|(^|[\s(])([\p{L}\p{N}\p{M}_]+):(?:"((?:[^"]|"")*)"|([^\s()"*:]+))(\s*\*)?(?=$|[\s)])/gu;

/**
 * JSON field terms as phrases of the `fields` column, whose words are the field's pairs in order
 * (documents.ts): `title:keeper` → `fields:"title keeper"`, `title:keep*` → `fields:"title keep"*`,
 * `title:"lighthouse keeper"` → `fields:"title lighthouse 0pair0 title keeper"` (the two words
 * next to each other in one value). Every name is a field's, `body` and `fields` too.
 */
function rewriteFieldTerms(q: string): string {
  return q.replace(
    fieldTermPattern,
    (whole, quoted?: string, lead?: string, name?: string, phrase?: string, word?: string, star?: string) => {
      if (quoted !== undefined || name === undefined) return whole;
      const field = fieldToken(name);
      const words = wordsOf(phrase === undefined ? (word as string) : phrase.replaceAll('""', '"'));
      if (!field || words.length === 0) return whole;
      const pairs = words.map((value) => `${field} ${value}`).join(` ${pairSeparator} `);
      return `${lead}fields:"${pairs}"${star ? '*' : ''}`;
    },
  );
}

/** A word of the request, folded as the index folds it; `prefix` when the query ends it with `*`. */
interface SearchedTerm {
  word: string;
  prefix: boolean;
}

/** A word as `unicode61 remove_diacritics 2` folds it (lower case, accents off), near enough to pick lines. */
function fold(word: string): string {
  return word.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * The words of the request, to pick the changed lines worth showing in diff hits: the words the
 * query searches for, cut as the index cuts them (`gl.DEPTH_TEST` is `gl`, `depth`, `test`). The
 * operators (AND, OR, NOT, NEAR: FTS5 knows them in capitals only) and column names (`added:`)
 * are no searched words.
 */
function searchedTerms(q = ''): SearchedTerm[] {
  const terms: SearchedTerm[] = [];
  const add = (text: string, starred: boolean) => {
    const words = wordsOf(text);
    words.forEach((word, index) => {
      terms.push({ word: fold(word), prefix: starred && index === words.length - 1 });
    });
  };
  for (const segment of q.matchAll(/"(?:[^"]|"")*"?|[^"]+/gu)) {
    const part = segment[0];
    const rest = q.slice((segment.index ?? 0) + part.length);
    if (part.startsWith('"')) {
      add(part, /^\s*\*/u.test(rest));
      continue;
    }
    // Column filters (`added:`, `{added removed}:`) and NEAR's name and distance are no words.
    const runs = part
      .replace(/-?\{[^}]*\}\s*:|-?[\p{L}\p{N}_]+\s*:|\bNEAR\s*\(|,\s*\d+\s*\)/gu, ' ')
      .split(/\s+/u);
    runs.forEach((run, index) => {
      if (['AND', 'OR', 'NOT', 'NEAR'].includes(run)) return;
      // `pre*` or `pre *` (a run that is only the star); what follows the last run is a phrase.
      add(run, run.endsWith('*') || (runs[index + 1] ?? '').startsWith('*'));
    });
  }
  return terms;
}

/** Whether a changed line holds a searched word, as a whole word (or a word it begins, for `pre*`). */
function holdsTerm(line: string, terms: SearchedTerm[]): boolean {
  const words = wordsOf(line).map(fold);
  return terms.some((term) =>
    words.some((word) => (term.prefix ? word.startsWith(term.word) : word === term.word)),
  );
}

interface SearchCursor {
  offset: number;
  /** The log position and the time (`at`) the first page was answered at. */
  pos?: number;
  at?: number;
}

function encodeCursor(cursor: Required<SearchCursor>): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** A cursor of an earlier page; its position must be this node's (cursors count per node). */
function decodeCursor(cursor: string | undefined, lastPos: number): SearchCursor {
  if (cursor === undefined || cursor === '') return { offset: 0 };
  let decoded: Record<string, unknown> | undefined;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    // refused below
  }
  const whole = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
  const { offset, pos, at } = decoded ?? {};
  if (!whole(offset) || (pos !== undefined && !whole(pos)) || (at !== undefined && !whole(at)))
    fail('STRATA_BAD_REQUEST', 'cursor is not one returned by a previous search');
  if ((pos as number | undefined) !== undefined && (pos as number) > lastPos) {
    fail(
      'STRATA_BAD_REQUEST',
      "cursor is from another node's search (cursors count per node): start again without it",
    );
  }
  return {
    offset: offset as number,
    ...(pos !== undefined ? { pos: pos as number } : {}),
    ...(at !== undefined ? { at: at as number } : {}),
  };
}
