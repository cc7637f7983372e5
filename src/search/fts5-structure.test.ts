import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { fts5Segments } from './fts5-structure.js';

/** The structure record read against what FTS5 itself lists in the table's `_idx` (one row a leaf page that starts a term). */
describe('fts5Segments', () => {
  function table(transactions: number, rowsEach: number): Database.Database {
    const db = new Database(':memory:');
    db.exec("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61')");
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    for (let n = 0; n < transactions; n++) {
      db.transaction(() => {
        for (let row = 0; row < rowsEach; row++)
          insert.run(`word${(n * rowsEach + row) % 5000} common text ${n}`);
      })();
    }
    return db;
  }

  it('finds every segment FTS5 lists, on each level', () => {
    const db = table(37, 200);
    const levels = fts5Segments(db, 't');
    const listed = db.prepare('SELECT COUNT(DISTINCT segid) FROM t_idx').pluck().get() as number;
    expect(levels.flat()).toHaveLength(listed);
    // 37 transactions, each a segment on level 0, merged four at a time into the levels above.
    expect(levels.length).toBeGreaterThan(1);
    expect(listed).toBeGreaterThan(2);
    for (const pages of levels.flat()) expect(pages).toBeGreaterThan(0);
  });

  it('sees one segment after optimize, and none in an empty table', () => {
    const db = table(20, 200);
    db.exec("INSERT INTO t (t) VALUES ('optimize')");
    expect(fts5Segments(db, 't').flat()).toHaveLength(1);
    const empty = new Database(':memory:');
    empty.exec('CREATE VIRTUAL TABLE e USING fts5(body)');
    expect(fts5Segments(empty, 'e').flat()).toHaveLength(0);
  });

  it('counts the leaf pages of a segment', () => {
    const db = table(1, 3000);
    const segments = fts5Segments(db, 't').flat();
    expect(segments).toHaveLength(1);
    // `_idx.pgno` holds a leaf page's number shifted left once (the low bit flags a doclist index).
    const lastLeaf = db.prepare('SELECT MAX(pgno >> 1) FROM t_idx').pluck().get() as number;
    expect(lastLeaf).toBeGreaterThan(5);
    expect(segments[0]).toBe(lastLeaf);
  });
});
