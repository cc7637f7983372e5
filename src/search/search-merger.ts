import type { Db } from '../log/database.js';
import type { BackgroundRun } from '../log/database-worker.js';
import type { IdleWork } from '../store/writer.js';
import { fts5Tables } from './schema.js';

/**
 * Segments on one level of an FTS5 table that a merge step combines: 2, the least FTS5 allows
 * (`usermerge`), so that once merging is done each level holds at most one segment.
 */
const mergeSegmentsMin = 2;

/**
 * Pages of merged index one step writes, about (FTS5's `merge` command). FTS5 stops only between
 * two terms, so a step that reaches a very common word writes all of its doclist.
 */
const mergeStepPages = 200;

/**
 * Merges the segments of the FTS5 tables while the node is idle (DESIGN "Merging segments while
 * idle"). FTS5 writes each transaction's rows as a new segment and, inside later writes, merges
 * four segments of a level into one of the next; a term's doclist stays spread over the segments,
 * and a query seeks and merges each. Built 250 versions a commit, a 1M-version index answered its
 * median query in 15.6 ms, merged in 11.9 ms.
 *
 * Each step is one `merge` command, run by the writer on the database worker in a transaction of
 * its own, never while a write is applied; the tables are merged one after the other, each until a
 * step finds nothing to merge, and all again after the next write.
 */
export class SearchMerger implements IdleWork {
  /** Tables that may still have segments to merge, the one being merged first. */
  private pending: string[] = [];

  constructor(
    db: Db,
    private readonly events: {
      /** Told how long each step that merged something took. */
      onStep?: ((seconds: number) => void) | undefined;
      onError?: ((error: Error) => void) | undefined;
    } = {},
  ) {
    for (const table of fts5Tables) {
      const current = db.prepare(`SELECT v FROM ${table}_config WHERE k = 'usermerge'`).pluck().get();
      if (current !== mergeSegmentsMin)
        db.exec(`INSERT INTO ${table} (${table}, rank) VALUES ('usermerge', ${mergeSegmentsMin})`);
    }
    // A node may start with segments left to merge (the index was written before it stopped).
    this.written();
  }

  next(): string | undefined {
    const table = this.pending[0];
    return table === undefined ? undefined : mergeStatement(table);
  }

  ran(sql: string, outcome: BackgroundRun | Error): void {
    const table = this.pending[0];
    if (table === undefined || sql !== mergeStatement(table)) return;
    // FTS5 counts a merge that wrote anything as at least two changes; fewer means nothing to merge.
    // A failed step leaves the table until the next write, so a persistent error cannot spin.
    if (outcome instanceof Error) this.events.onError?.(outcome);
    if (outcome instanceof Error || outcome.changes < 2) this.pending.shift();
    else this.events.onStep?.(outcome.seconds);
  }

  written(): void {
    this.pending = [...fts5Tables];
  }
}

function mergeStatement(table: string): string {
  return `INSERT INTO ${table} (${table}, rank) VALUES ('merge', ${mergeStepPages})`;
}
