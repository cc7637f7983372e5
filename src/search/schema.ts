/**
 * Search tables (DESIGN §4), rebuilt by reindex like every derived table. The rowid of each FTS5
 * table is the version's search rowid (search-rowids.ts): ordered by transaction time on every
 * node, so a transaction-time range is a rowid range that FTS5 can skip by (a MATCH combined with a
 * range on another column would score every match first). `search_docs` maps it to the version.
 */
/** The tokenizer of the text tables, as an FTS5 option. */
export const textTokenizer = "tokenize = 'unicode61 remove_diacritics 2'";
/** The text tables' tokenizer with `_` as a word character, so that a pair `first_second` stays one term. */
export const pairTokenizer = "tokenize = 'unicode61 remove_diacritics 2 tokenchars ''_'''";

/**
 * Prefix lengths each FTS5 table keeps an index of. A query for a longer prefix merges the doclists
 * of every term that starts with it first (`from*` took 200–250 ms at 1M versions without the
 * 4-letter index of the text table, 64–87 ms with it; the code and diff tables see few prefix queries).
 */
export const prefixIndexLengths = {
  search_text: [2, 3, 4],
  search_code: [2, 3],
  search_diff: [2, 3],
} as const;
/** The FTS5 tables that keep their content (text, code, diffs): each has prefix indexes. */
export type ContentTable = keyof typeof prefixIndexLengths;
export const contentTableNames = Object.keys(prefixIndexLengths) as ContentTable[];
/** The FTS5 option that creates a table's prefix indexes. */
export const prefixOption = (table: ContentTable): string =>
  `prefix = '${prefixIndexLengths[table].join(' ')}'`;

/** Columns and tokenizer of each content table. */
const contentTables: Record<ContentTable, { columns: string[]; tokenizer: string }> = {
  search_text: { columns: ['body', 'fields'], tokenizer: textTokenizer },
  search_code: { columns: ['defined', 'referenced'], tokenizer: "tokenize = 'unicode61'" },
  search_diff: { columns: ['added', 'removed'], tokenizer: textTokenizer },
};

/** The CREATE statement of a content table, under `name` (another name while it is being replaced). */
export function createContentTable(table: ContentTable, name: string = table): string {
  const { columns, tokenizer } = contentTables[table];
  return `CREATE VIRTUAL TABLE IF NOT EXISTS ${name} USING fts5(${columns.join(', ')}, ${tokenizer}, ${prefixOption(table)});`;
}

/** The columns of a content table, for copying its rows. */
export const contentColumns = (table: ContentTable): string[] => contentTables[table].columns;

export const searchSchema = `
${createContentTable('search_text')}
${createContentTable('search_code')}
${createContentTable('search_diff')}
-- Adjacent word pairs of search_text's columns, one term each (word-pairs.ts): two-word phrases.
-- Contentless: a row's pairs are made again from search_text's content when it must be removed
-- (FTS5's 'delete' command takes the old values, and keeps bm25's totals right).
CREATE VIRTUAL TABLE IF NOT EXISTS search_pairs USING fts5(body, fields, content = '', ${pairTokenizer});
CREATE TABLE IF NOT EXISTS search_docs (
  search_rowid INTEGER PRIMARY KEY,
  cursor INTEGER NOT NULL,
  indexed_bytes INTEGER NOT NULL,
  truncated INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS search_keys (
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  -- The cursor of the key's winner over all effective times, when it is a put.
  winner INTEGER,
  effective_max INTEGER NOT NULL,
  PRIMARY KEY (bucket, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_keys_by_winner ON search_keys (winner);
-- Recently changed, newest first: in the whole store, and in one bucket.
CREATE INDEX IF NOT EXISTS versions_by_hlc ON versions (hlc);
CREATE INDEX IF NOT EXISTS versions_by_bucket_hlc ON versions (bucket, hlc);
`;

/** Every FTS5 table of the index. */
export const fts5Tables: readonly string[] = [...contentTableNames, 'search_pairs'];

export const searchTables = [
  'search_text',
  'search_code',
  'search_diff',
  'search_pairs',
  'search_docs',
  'search_keys',
] as const;
