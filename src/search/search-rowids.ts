import type { Statement } from 'better-sqlite3';
import { hlcWall, parseHlc } from '../core/hlc.js';
import type { Db } from '../log/database.js';
import { contentTableNames } from './schema.js';
import { pairsText } from './word-pairs.js';

/**
 * The rowid of a version in the search tables (search_text, search_code, search_diff, search_pairs, search_docs):
 * its transaction time in ms in the high bits, a slot in the low `searchSlotBits`. Within one ms,
 * slots follow (hlc, op index), the order in which versions would have been numbered by a node that
 * applied every commit in transaction time. So rowid order is transaction-time order on every node,
 * whatever order commits were applied in (replication applies other nodes' commits late):
 * a from/to range is a rowid range, and "the newest N matches" and ties broken by rowid are the
 * same on every node that holds the same versions.
 *
 * 21 bits: 2,097,152 versions in one ms, more than a node can stamp in one ms (the HLC counter holds
 * 1,000,000 commits a ms, and at 2^21 slots ms up to 2^42 − 1 = May 2109 fit SQLite's 63-bit rowid).
 * Rowids are above 2^53, so they travel through JavaScript as bigint or as decimal text.
 */
export const searchSlotBits = 21;

/** Transaction times (ms) from/to, inclusive, as an inclusive rowid range; undefined when empty. */
export function rowidRange(
  from: number | undefined,
  to: number | undefined,
  slotBits = searchSlotBits,
): { low: bigint; high: bigint } | undefined {
  if (to !== undefined && (to < 0 || (from !== undefined && from > to))) return undefined;
  const slotMax = (1n << BigInt(slotBits)) - 1n;
  const low = from === undefined ? 0n : msBase(Math.ceil(from), slotBits);
  const high = msBase(to === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(to), slotBits) + slotMax;
  return low <= high ? { low, high } : undefined;
}

/**
 * The first rowid of a ms. Times past the last ms that fits are kept in that ms (in order, as
 * slots are): ranges reaching past 2109 are then coarse, which the exact hlc check of a query fixes.
 */
function msBase(ms: number, slotBits: number): bigint {
  const wallMax = 2 ** (63 - slotBits) - 1;
  const wall = Math.min(Math.max(ms, 0), wallMax);
  return BigInt(wall) << BigInt(slotBits);
}

/** What orders versions within one ms. */
export interface SlotOrder {
  hlc: string;
  opIndex: number;
}

interface IndexedSlot {
  rowid: bigint;
  hlc: string;
  op_index: bigint;
}

/**
 * Hands out search rowids. A version gets the first free slot after the versions of its ms that
 * precede it, starting from its HLC counter (so versions of one ms arriving in any order mostly
 * find room); when none is free, the versions after it in that ms move up to make room. That is
 * rare (two nodes writing in the same ms) and bounded by the versions of one ms.
 */
export class SearchRowids {
  private readonly lastOfMs: Statement;
  private readonly slotsOfMs: Statement;
  private readonly slotsUpTo: Statement;
  private readonly moves: Statement[];
  private readonly textAt: Statement;
  private readonly deletePairs: Statement;
  private readonly insertPairs: Statement;
  private readonly slotMax: bigint;
  private readonly slotBits: bigint;

  constructor(db: Db, slotBits = searchSlotBits) {
    this.slotBits = BigInt(slotBits);
    this.slotMax = (1n << this.slotBits) - 1n;
    const slotsOfMs = `SELECT d.search_rowid AS rowid, v.hlc, v.op_index FROM search_docs d
      JOIN versions v ON v.cursor = d.cursor
      WHERE d.search_rowid BETWEEN ? AND ? ORDER BY d.search_rowid DESC`;
    this.slotsOfMs = db.prepare(slotsOfMs).safeIntegers(true);
    this.lastOfMs = db.prepare(`${slotsOfMs} LIMIT 1`).safeIntegers(true);
    this.slotsUpTo = db
      .prepare(
        'SELECT search_rowid FROM search_docs WHERE search_rowid BETWEEN ? AND ? ORDER BY search_rowid',
      )
      .pluck()
      .safeIntegers(true);
    this.moves = [
      ...contentTableNames.map((table) => `UPDATE ${table} SET rowid = @to WHERE rowid = @from`),
      'UPDATE search_docs SET search_rowid = @to WHERE search_rowid = @from',
    ].map((sql) => db.prepare(sql));
    this.textAt = db.prepare('SELECT body, fields FROM search_text WHERE rowid = ?');
    this.deletePairs = db.prepare(
      "INSERT INTO search_pairs (search_pairs, rowid, body, fields) VALUES ('delete', ?, ?, ?)",
    );
    this.insertPairs = db.prepare('INSERT INTO search_pairs (rowid, body, fields) VALUES (?, ?, ?)');
  }

  /** Indexes the word pairs of a text row's `body` and `fields` at `rowid` (word-pairs.ts). */
  addPairs(rowid: bigint, body: string, fields: string): void {
    this.insertPairs.run(rowid, pairsText(body), pairsText(fields));
  }

  /** A free rowid for a version about to be indexed (search_docs must not hold it yet). */
  allocate(version: SlotOrder): bigint {
    const base = msBase(hlcWall(version.hlc as never), Number(this.slotBits));
    const top = base + this.slotMax;
    const { before, after } = this.neighbours(version, base, top);
    const next = after.length > 0 ? (after[after.length - 1] as bigint) : top + 1n;
    if (next - before >= 2n) {
      const counter = BigInt(Math.min(parseHlc(version.hlc)?.counter ?? 0, Number(this.slotMax)));
      const wanted = base + counter;
      return wanted <= before ? before + 1n : wanted >= next ? next - 1n : wanted;
    }
    const highest = after[0] ?? before;
    if (highest < top) {
      // Half the room above moves in between: the versions that follow in this ms (most often the
      // rest of the same commit) then find free slots without moving anything again.
      const shift = (top - highest + 1n) / 2n;
      for (const rowid of after) this.move(rowid, rowid + shift);
      return before + 1n;
    }
    return this.pack(base, top, before, after);
  }

  /**
   * The rowid of the version of the ms just before this one (or the one before the ms), and those
   * of the versions after it, newest first: most often there are none.
   */
  private neighbours(version: SlotOrder, base: bigint, top: bigint): { before: bigint; after: bigint[] } {
    const last = this.lastOfMs.get(base, top) as IndexedSlot | undefined;
    if (last === undefined || compare(last, version) < 0)
      return { before: last?.rowid ?? base - 1n, after: [] };
    const after: bigint[] = [];
    for (const slot of this.slotsOfMs.iterate(base, top) as Iterable<IndexedSlot>) {
      const order = compare(slot, version);
      if (order === 0) throw new Error(`version ${version.hlc}/${version.opIndex} is indexed twice`);
      if (order < 0) return { before: slot.rowid, after };
      after.push(slot.rowid);
    }
    return { before: base - 1n, after };
  }

  /**
   * Packs the versions of a ms that is used up to its last slot: those before the new one from the
   * first slot up, those after it down from the last, leaving the free slots in between.
   */
  private pack(base: bigint, top: bigint, before: bigint, after: bigint[]): bigint {
    let low = base;
    // Ascending to lower or equal slots, then descending to higher or equal ones: every target is free.
    for (const rowid of this.slotsUpTo.all(base, before) as bigint[]) {
      if (rowid !== low) this.move(rowid, low);
      low += 1n;
    }
    let high = top;
    for (const rowid of after) {
      if (rowid !== high) this.move(rowid, high);
      high -= 1n;
    }
    if (low > high)
      throw new Error(`no free search rowid in the ms of rowid ${base}: all ${this.slotMax + 1n} are used`);
    return low;
  }

  private move(from: bigint, to: bigint): void {
    // search_pairs keeps no content to move: its row is made again from search_text's.
    const text = this.textAt.get(from) as { body: string; fields: string } | undefined;
    const pairs = text && [pairsText(text.body), pairsText(text.fields)];
    if (pairs) this.deletePairs.run(from, ...pairs);
    for (const statement of this.moves) statement.run({ from, to });
    if (pairs) this.insertPairs.run(to, ...pairs);
  }
}

function compare(slot: IndexedSlot, version: SlotOrder): number {
  if (slot.hlc !== version.hlc) return slot.hlc < version.hlc ? -1 : 1;
  return Number(slot.op_index) - version.opIndex;
}
