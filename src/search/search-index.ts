import { readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { diffLines } from 'diff';
import { isTextLike } from '../core/content-kind.js';
import type { VersionId } from '../core/ids.js';
import { type BlobStore, readPrefix, unlessDamaged } from '../log/blob-store.js';
import type { Db } from '../log/database.js';
import { type RawVersionRow, toVersionRow, type VersionRow } from '../store/derived.js';
import { resolve } from '../store/winner.js';
import { documentKind, indexedDocument } from './documents.js';
import {
  contentColumns,
  contentTableNames,
  createContentTable,
  prefixOption,
  searchSchema,
  searchTables,
} from './schema.js';
import { SearchRowids } from './search-rowids.js';
import { pairsFormat } from './word-pairs.js';

export interface SearchIndexOptions {
  /** Text beyond this many bytes of an object is not indexed; hits say so (`truncated`). */
  indexBytesMax: number;
}

/** Line diffs of texts larger than this are not computed: the diff of two 1 MB files is slow. */
const diffBytesMax = 256 * 1024;
/** A winner computed at the end of time: every version with a finite effective time is a candidate. */
const endOfTime = Number.MAX_SAFE_INTEGER;
/** Versions read per page when the index is rebuilt in place (an older layout found at start-up). */
const rebuildPageRows = 1000;

/**
 * Keeps the FTS5 index in step with the versions table: called for every applied version inside
 * the transaction of its commit, so a search never sees half a commit (DESIGN §4).
 */
export class SearchIndex {
  private readonly insertText;
  private readonly insertCode;
  private readonly insertDiff;
  private readonly insertDoc;
  private readonly upsertKey;
  private readonly hasKey;
  private readonly rowids: SearchRowids;

  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStore,
    private readonly versionsOf: (bucket: string, key: string) => VersionRow[],
    private readonly options: SearchIndexOptions,
  ) {
    // An index of the older layout is replaced in one transaction: a crash leaves the old one, never
    // half of the new one.
    const outdated = hasOutdatedLayout(db);
    if (outdated) db.exec('BEGIN');
    try {
      if (outdated) for (const table of searchTables) db.exec(`DROP TABLE IF EXISTS ${table}`);
      else migratePrefixIndexes(db);
      db.exec(searchSchema);
      this.rowids = new SearchRowids(db);
      this.insertText = db.prepare('INSERT INTO search_text (rowid, body, fields) VALUES (?, ?, ?)');
      this.insertCode = db.prepare('INSERT INTO search_code (rowid, defined, referenced) VALUES (?, ?, ?)');
      this.insertDiff = db.prepare('INSERT INTO search_diff (rowid, added, removed) VALUES (?, ?, ?)');
      this.insertDoc = db.prepare(
        'INSERT INTO search_docs (search_rowid, cursor, indexed_bytes, truncated) VALUES (?, ?, ?, ?)',
      );
      this.hasKey = db.prepare('SELECT 1 FROM search_keys WHERE bucket = ? AND key = ?').pluck();
      this.upsertKey = db.prepare(
        `INSERT INTO search_keys (bucket, key, winner, effective_max) VALUES (?, ?, ?, ?)
         ON CONFLICT (bucket, key) DO UPDATE SET winner = excluded.winner, effective_max = excluded.effective_max`,
      );
      if (outdated) {
        this.indexEveryVersion();
        setPairsFormat(db);
        db.exec('COMMIT');
      } else if (
        db.prepare('SELECT value FROM meta WHERE name = ?').pluck().get(pairsFormatKey) !==
        String(pairsFormat)
      ) {
        db.transaction(() => this.makePairsAgain())();
      }
    } catch (error) {
      if (outdated && db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Pairs made by another `pairsFormat` (or before search_pairs existed) are made again from the
   * text table's rows: FTS5 could not remove them with the pairs made now.
   */
  private makePairsAgain(): void {
    this.db.exec("INSERT INTO search_pairs (search_pairs) VALUES ('delete-all')");
    const page = this.db
      .prepare('SELECT rowid, body, fields FROM search_text WHERE rowid > ? ORDER BY rowid LIMIT ?')
      .safeIntegers();
    for (let after = 0n; ; ) {
      const rows = page.all(after, rebuildPageRows) as Array<{ rowid: bigint; body: string; fields: string }>;
      for (const row of rows) this.rowids.addPairs(row.rowid, row.body, row.fields);
      if (rows.length < rebuildPageRows) break;
      after = (rows[rows.length - 1] as { rowid: bigint }).rowid;
    }
    setPairsFormat(this.db);
  }

  /** Indexes one version (any kind: deletes and retractions change which version is current). */
  versionApplied(row: VersionRow): void {
    const text = row.kind === 'put' && row.blob !== undefined && isTextLike(row.contentType, row.key);
    // Keys that never held text (binary objects) need no entry: only text versions can be hits.
    if (!text && !this.hasKey.get(row.bucket, row.key)) return;
    const versions = this.versionsOf(row.bucket, row.key);
    this.updateKey(row.bucket, row.key, versions);
    if (!text || !row.blob) return;
    const read = this.text(row.blob, row.size ?? 0);
    if (read === undefined) return;
    const kind = documentKind(row.contentType, row.key);
    const document = indexedDocument(read.text, kind);
    const rowid = this.rowids.allocate(row);
    this.insertText.run(rowid, document.body, document.fields);
    this.rowids.addPairs(rowid, document.body, document.fields);
    if (kind === 'javascript' || kind === 'code')
      this.insertCode.run(rowid, document.defined, document.referenced);
    this.insertDoc.run(rowid, row.cursor, Buffer.byteLength(read.text), read.truncated ? 1 : 0);
    const diff = this.diffAgainstParent(row, read, versions);
    if (diff) this.insertDiff.run(rowid, diff.added, diff.removed);
  }

  /** Empties the index; reindex then replays every version through versionApplied. */
  clear(): void {
    for (const table of searchTables) {
      // A contentless table forgets its rows (and bm25's totals with them) by command only.
      if (table === 'search_pairs')
        this.db.exec("INSERT INTO search_pairs (search_pairs) VALUES ('delete-all')");
      else this.db.exec(`DELETE FROM ${table}`);
    }
  }

  /**
   * Indexes every version again, in apply order. Each key's entry is computed from all its versions,
   * so the result is the one incremental indexing reached.
   */
  private indexEveryVersion(): void {
    const page = this.db.prepare('SELECT * FROM versions WHERE cursor > ? ORDER BY cursor LIMIT ?');
    for (let after = 0; ; ) {
      const rows = page.all(after, rebuildPageRows) as RawVersionRow[];
      for (const raw of rows) this.versionApplied(toVersionRow(raw));
      if (rows.length < rebuildPageRows) return;
      after = (rows[rows.length - 1] as RawVersionRow).cursor;
    }
  }

  private updateKey(bucket: string, key: string, versions: VersionRow[]): void {
    const { winner } = resolve(versions, { at: endOfTime, hlcBefore: '~' });
    const effectiveMax = versions.reduce((max, v) => Math.max(max, v.effectiveAt), 0);
    this.upsertKey.run(bucket, key, winner?.kind === 'put' ? winner.cursor : null, effectiveMax);
  }

  private text(blob: string, size: number): { text: string; truncated: boolean } | undefined {
    // A damaged copy is not indexed, and never stops the commit being applied: its text is left
    // out until a reindex after the bytes come back.
    const stored = unlessDamaged(() => this.blobs.get(blob));
    if (!stored) return undefined;
    const limit = this.options.indexBytesMax;
    let bytes: Buffer;
    if (stored.data) bytes = stored.data.length > limit ? stored.data.subarray(0, limit) : stored.data;
    else
      bytes = size > limit ? readPrefix(stored.path as string, limit) : readFileSync(stored.path as string);
    // A cut may split a multi-byte character: the fragment is left out, not decoded as U+FFFD.
    const truncated = size > limit;
    return { text: truncated ? textOfPrefix(bytes) : bytes.toString('utf8'), truncated };
  }

  private diffAgainstParent(
    row: VersionRow,
    current: { text: string; truncated: boolean },
    versions: VersionRow[],
  ) {
    if (current.truncated || Buffer.byteLength(current.text) > diffBytesMax) return undefined;
    const parent = textParent(row, versions);
    let before = '';
    if (parent?.blob) {
      if ((parent.size ?? 0) > diffBytesMax) return undefined;
      before = this.text(parent.blob, parent.size ?? 0)?.text ?? '';
    }
    const added: string[] = [];
    const removed: string[] = [];
    for (const change of diffLines(before, current.text)) {
      if (change.added) added.push(change.value);
      else if (change.removed) removed.push(change.value);
    }
    if (added.length === 0 && removed.length === 0) return undefined;
    return { added: added.join(''), removed: removed.join('') };
  }
}

/** The parent a diff is taken against: the first parent that is a text put of the same key. */
function textParent(row: VersionRow, versions: VersionRow[]): VersionRow | undefined {
  if (row.parents.length === 0) return undefined;
  const byId = new Map<VersionId, VersionRow>();
  for (const version of versions) byId.set(version.version, version);
  for (const id of row.parents) {
    const parent = byId.get(id);
    if (parent?.kind === 'put' && isTextLike(parent.contentType, parent.key)) return parent;
  }
  return undefined;
}

/**
 * Before search rowids (search-rowids.ts), the search tables were keyed by the version's cursor:
 * such an index is dropped and rebuilt from the versions when the node starts.
 */
function hasOutdatedLayout(db: Db): boolean {
  const columns = db.prepare("SELECT name FROM pragma_table_info('search_docs')").pluck().all() as string[];
  return columns.length > 0 && !columns.includes('search_rowid');
}

/** The `meta` row naming the `pairsFormat` of the pairs in search_pairs. */
const pairsFormatKey = 'search_pairs_format';

function setPairsFormat(db: Db): void {
  db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)').run(
    pairsFormatKey,
    String(pairsFormat),
  );
}

/**
 * A content table created with other prefix indexes than it has now (the text table had 2 and 3
 * letters only) is made again with the current ones from its own rows, in one transaction: FTS5
 * tokenizes them again, but nothing else of the index is rebuilt, and a crash leaves the old table.
 */
function migratePrefixIndexes(db: Db): void {
  const created = db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').pluck();
  for (const table of contentTableNames) {
    const sql = created.get(table) as string | undefined;
    if (sql === undefined || sql.includes(prefixOption(table))) continue;
    const columns = ['rowid', ...contentColumns(table)].join(', ');
    const next = `${table}_migrating`;
    db.transaction(() =>
      db.exec(`${createContentTable(table, next)}
        INSERT INTO ${next} (${columns}) SELECT ${columns} FROM ${table};
        DROP TABLE ${table};
        ALTER TABLE ${next} RENAME TO ${table};`),
    )();
  }
}

/**
 * The text of bytes the index cut at its limit: a multi-byte character the cut splits is left
 * out (a StringDecoder keeps an incomplete last sequence back), not decoded as U+FFFD.
 */
export function textOfPrefix(bytes: Buffer): string {
  return new StringDecoder('utf8').write(bytes);
}
