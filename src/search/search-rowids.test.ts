import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Commit } from '../core/commit.js';
import { formatHlc } from '../core/hlc.js';
import type { CommitId, NodeId } from '../core/ids.js';
import { Deriver } from '../store/derived.js';
import { searchSchema } from './schema.js';
import { rowidRange, SearchRowids, searchSlotBits } from './search-rowids.js';
import { pairsText } from './word-pairs.js';

/**
 * Search rowids (search-rowids.ts) with 8 slots per ms instead of 2^21, so that versions of one ms
 * arriving in any order run out of free slots, move up, and get packed.
 */
const slotBits = 3;
const slots = 2 ** slotBits;
const start = Date.UTC(2030, 0, 1);
const nodes = ['00000000000000a1', '00000000000000b2'] as NodeId[];

interface VersionSpec {
  wall: number;
  counter: number;
  node: number;
  ops: number;
}

function database() {
  const db = new Database(':memory:');
  const deriver = new Deriver(db);
  db.exec(searchSchema);
  return { db, deriver };
}

/** Versions of the specs (at most `slots` per ms), each with a word of its own, indexed by priority. */
function indexInOrder(specs: VersionSpec[], priorities: number[]) {
  const { db, deriver } = database();
  const perMs = new Map<number, number>();
  const seen = new Set<string>();
  specs.forEach((spec, index) => {
    const hlc = formatHlc({
      wall: start + spec.wall,
      counter: spec.counter,
      node: nodes[spec.node] as NodeId,
    });
    const used = perMs.get(spec.wall) ?? 0;
    if (seen.has(hlc) || used + spec.ops > slots) return;
    seen.add(hlc);
    perMs.set(spec.wall, used + spec.ops);
    const commit: Commit = {
      origin: nodes[spec.node] as NodeId,
      seq: index + 1,
      hlc: hlc as Commit['hlc'],
      ops: Array.from({ length: spec.ops }, (_, op) => ({
        kind: 'put' as const,
        bucket: 'docs',
        key: `k${index}-${op}`,
        parents: [],
        effectiveAt: start,
      })),
    };
    deriver.apply(`${'0'.repeat(63)}${index % 10}` as CommitId, index + 1, commit);
  });
  const versions = db.prepare('SELECT cursor, hlc, op_index FROM versions').all() as Array<{
    cursor: number;
    hlc: string;
    op_index: number;
  }>;
  const order = versions
    .map((version, index) => ({ version, priority: priorities[index] ?? 0 }))
    .sort((a, b) => a.priority - b.priority)
    .map(({ version }) => version);
  const rowids = new SearchRowids(db, slotBits);
  const insertText = db.prepare('INSERT INTO search_text (rowid, body, fields) VALUES (?, ?, ?)');
  const insertPairs = db.prepare('INSERT INTO search_pairs (rowid, body, fields) VALUES (?, ?, ?)');
  const insertCode = db.prepare('INSERT INTO search_code (rowid, defined, referenced) VALUES (?, ?, ?)');
  const insertDoc = db.prepare(
    'INSERT INTO search_docs (search_rowid, cursor, indexed_bytes, truncated) VALUES (?, ?, 0, 0)',
  );
  for (const version of order) {
    const rowid = rowids.allocate({ hlc: version.hlc, opIndex: version.op_index });
    // As SearchIndex does: each text row with its pairs (here the one pair `word<cursor>_tail`).
    const body = `word${version.cursor} tail`;
    insertText.run(rowid, body, '');
    insertPairs.run(rowid, pairsText(body), '');
    if (version.cursor % 2 === 0) insertCode.run(rowid, `name${version.cursor}`, '');
    insertDoc.run(rowid, version.cursor);
  }
  return { db, versions, rowids };
}

function checkOrder(
  db: Database.Database,
  versions: Array<{ cursor: number; hlc: string; op_index: number }>,
) {
  const indexed = db
    .prepare(
      `SELECT d.search_rowid AS rowid, v.cursor, v.hlc, v.op_index FROM search_docs d
       JOIN versions v ON v.cursor = d.cursor ORDER BY d.search_rowid`,
    )
    .safeIntegers(true)
    .all() as Array<{ rowid: bigint; cursor: bigint; hlc: string; op_index: bigint }>;
  const expected = [...versions].sort((a, b) =>
    a.hlc === b.hlc ? a.op_index - b.op_index : a.hlc < b.hlc ? -1 : 1,
  );
  expect(indexed.map((row) => Number(row.cursor))).toEqual(expected.map((version) => version.cursor));
  const text = db
    .prepare('SELECT rowid FROM search_text WHERE search_text MATCH ?')
    .pluck()
    .safeIntegers(true);
  const code = db
    .prepare('SELECT rowid FROM search_code WHERE search_code MATCH ?')
    .pluck()
    .safeIntegers(true);
  const pairs = db
    .prepare('SELECT rowid FROM search_pairs WHERE search_pairs MATCH ?')
    .pluck()
    .safeIntegers(true);
  for (const row of indexed) {
    // In its own ms, and every table moved along.
    expect(row.rowid >> BigInt(slotBits)).toBe(BigInt(Number(row.hlc.slice(0, 15))));
    expect(text.all(`word${row.cursor}`)).toEqual([row.rowid]);
    expect(pairs.all(`"word${row.cursor}_tail"`)).toEqual([row.rowid]);
    expect(code.all(`name${row.cursor}`)).toEqual(row.cursor % 2n === 0n ? [row.rowid] : []);
  }
}

/** The slots in use, in rowid order. */
function slotsOf(db: Database.Database): number[] {
  const rowids = db
    .prepare('SELECT search_rowid FROM search_docs ORDER BY search_rowid')
    .pluck()
    .safeIntegers(true)
    .all() as bigint[];
  return rowids.map((rowid) => Number(rowid & BigInt(slots - 1)));
}

describe('search rowids', () => {
  it('keep versions in (hlc, op index) order in their ms, whatever order they are indexed in', () => {
    const spec = fc.record({
      wall: fc.nat({ max: 2 }),
      counter: fc.nat({ max: 9 }),
      node: fc.nat({ max: nodes.length - 1 }),
      ops: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(spec, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { minLength: 48, maxLength: 48 }),
        (specs, priorities) => {
          const { db, versions } = indexInOrder(specs, priorities);
          checkOrder(db, versions);
          db.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('moves the versions after a new one up when it finds no free slot, until the ms is full', () => {
    // b2's four versions first, at their counter's slot and after; then a1's, which go before them.
    const specs = [
      { wall: 0, counter: 0, node: 0, ops: 4 },
      { wall: 0, counter: 0, node: 1, ops: 4 },
    ];
    const { db, versions, rowids } = indexInOrder(specs, [4, 5, 6, 7, 0, 1, 2, 3]);
    checkOrder(db, versions);
    expect(slotsOf(db)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const later = { hlc: formatHlc({ wall: start, counter: 1, node: nodes[0] as NodeId }), opIndex: 0 };
    expect(() => rowids.allocate(later)).toThrow(/no free search rowid/);
    db.close();
  });

  it('packs a ms used up to its last slot when a version goes between two neighbours', () => {
    // a commit of two versions at counter 5; the counters 6 and 7 arrive between its two versions.
    const specs = [
      { wall: 0, counter: 5, node: 1, ops: 2 },
      { wall: 0, counter: 6, node: 0, ops: 1 },
      { wall: 0, counter: 7, node: 0, ops: 1 },
    ];
    const { db, versions } = indexInOrder(specs, [0, 3, 1, 2]);
    checkOrder(db, versions);
    expect(slotsOf(db)).toEqual([0, 1, 6, 7]);
    db.close();
  });

  it('turn a transaction-time range into the rowids of its ms, inclusive', () => {
    const ms = (wall: number) => BigInt(wall) << BigInt(searchSlotBits);
    const last = (1n << BigInt(searchSlotBits)) - 1n;
    expect(rowidRange(start, start + 9)).toEqual({ low: ms(start), high: ms(start + 9) + last });
    expect(rowidRange(undefined, start)).toEqual({ low: 0n, high: ms(start) + last });
    expect(rowidRange(start + 1, start)).toBeUndefined();
    expect(rowidRange(undefined, -1)).toBeUndefined();
    // Rowids are 63-bit: the last ms that fits holds every later one.
    expect(rowidRange(start, undefined)?.high).toBe(2n ** 63n - 1n);
    expect(rowidRange(Number.MAX_SAFE_INTEGER, undefined)).toEqual({
      low: 2n ** 63n - 2n ** BigInt(searchSlotBits),
      high: 2n ** 63n - 1n,
    });
  });
});
