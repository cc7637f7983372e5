import type { Db } from '../log/database.js';

/**
 * The segments of an FTS5 table, level by level: the leaf pages of each segment, oldest first.
 * Read from the table's structure record (row 10 of `<table>_data`), whose layout FTS5 documents in
 * fts5_index.c: a 4-byte cookie, an optional 4-byte marker of the second version, then varints:
 * levels, segments, write counter, and for each level the segments in an ongoing merge, the
 * segment count and each segment's id, first and last leaf page (and, in the second version, five
 * more fields per segment).
 */
export function fts5Segments(db: Db, table: string): number[][] {
  const record = db.prepare(`SELECT block FROM ${table}_data WHERE id = 10`).pluck().get() as
    | Buffer
    | undefined;
  if (record === undefined) return [];
  let at = 4;
  const secondVersion = record[4] === 0xff && record[5] === 0 && record[6] === 0 && record[7] === 1;
  if (secondVersion) at += 4;
  const read = (): number => {
    const [value, length] = sqliteVarint(record, at);
    at += length;
    return value;
  };
  const levelCount = read();
  read(); // segments on all levels
  read(); // write counter
  const levels: number[][] = [];
  for (let level = 0; level < levelCount; level++) {
    read(); // segments in an ongoing merge
    const segmentCount = read();
    const pages: number[] = [];
    for (let segment = 0; segment < segmentCount; segment++) {
      read(); // segment id
      const first = read();
      const last = read();
      if (secondVersion) for (let field = 0; field < 5; field++) read();
      pages.push(last - first + 1);
    }
    levels.push(pages);
  }
  return levels;
}

/** SQLite's varint: 1 to 9 bytes, big-endian, 7 bits a byte with the top bit set on all but the last (which has 8 bits when it is the 9th). */
function sqliteVarint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  for (let index = 0; index < 8; index++) {
    const byte = bytes[at + index];
    if (byte === undefined) throw new Error('FTS5 structure record ends inside a varint');
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return [value, index + 1];
  }
  return [value * 256 + (bytes[at + 8] ?? 0), 9];
}
