import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readCorpus } from './search-corpus.mjs';

/**
 * Commits submitted and not yet durable. Group commit puts everything queued while a batch syncs
 * into the next one, so a few in flight keep the writer busy; more would only hold more documents
 * in memory (each commit holds `commitOps` of them, ~1 KB each).
 */
export const commitsInFlightMax = 4;

/**
 * Builds Strata's search index the way a client would fill a store: multi-op commits through
 * Store.write, each made durable (fsync) before it resolves. Returns the version id and transaction
 * time of every version, in corpus order, for the queries and for PostgreSQL.
 */
export async function buildStrata({ store, corpus, onProgress }) {
  const versionIds = new Array(corpus.count);
  const txTimes = new Float64Array(corpus.count);
  const inFlight = new Set();
  let failure;
  let ops = [];
  let first = 0;
  let next = 0;
  let commits = 0;
  /** When the last tenth of the build began: its rate shows whether indexing slows as the index grows. */
  let lastTenth;

  const submit = async (batch, start) => {
    const staged = await Promise.all(
      batch.map(async (record) => ({
        kind: 'put',
        bucket: record.bucket,
        key: record.key,
        blob: await store.blobs.fromBuffer(Buffer.from(record.text)),
        contentType: record.contentType,
      })),
    );
    const result = await store.write({ ops: staged, message: `bench commit ${commits}` });
    // The HLC string starts with its wall time in ms (src/core/hlc.ts): the version's transaction time.
    const txTime = Number(result.hlc.slice(0, 15));
    result.versions.forEach((version, index) => {
      versionIds[start + index] = version;
      txTimes[start + index] = txTime;
    });
  };
  const track = (promise) => {
    const tracked = promise.then(
      () => inFlight.delete(tracked),
      (error) => {
        inFlight.delete(tracked);
        failure ??= error;
      },
    );
    inFlight.add(tracked);
  };

  const started = performance.now();
  for await (const record of readCorpus(corpus.path)) {
    ops.push(record);
    next += 1;
    if (ops.length === corpus.commitOps) {
      track(submit(ops, first));
      commits += 1;
      ops = [];
      first = next;
      if (inFlight.size >= commitsInFlightMax) await Promise.race(inFlight);
      if (failure) throw failure;
      if (lastTenth === undefined && next >= corpus.count * 0.9) lastTenth = { at: performance.now(), next };
      onProgress?.(next);
    }
  }
  if (ops.length > 0) {
    track(submit(ops, first));
    commits += 1;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  const ended = performance.now();
  const seconds = (ended - started) / 1000;
  lastTenth ??= { at: started, next: 0 };
  const lastTenthRate = (corpus.count - lastTenth.next) / ((ended - lastTenth.at) / 1000);
  return { versionIds, txTimes, seconds, commits, lastTenthRate, inFlight: commitsInFlightMax };
}

/**
 * Runs each query alone and times it in-process: what a request handler would spend in the search
 * (SQL, snippets, hit objects), without HTTP. Errors are recorded, not thrown, so one bad query
 * does not hide the figures of the others.
 */
export function runStrataQueries(store, queries) {
  return queries.map((query) => {
    const started = performance.now();
    try {
      const { hits } = store.searches.search(store.snapshot(), query.strata, { kind: 'all' });
      return { ms: performance.now() - started, hits: hits.length };
    } catch (error) {
      return { ms: performance.now() - started, hits: 0, error: `${query.label}: ${error.message}` };
    }
  });
}

/**
 * Segments of each FTS5 table of the database (`fts5` is Strata's fts5-structure.js and schema.js),
 * read on a connection of its own: `{ search_text: 14, … }`.
 */
export function segmentCounts(file, fts5) {
  const db = new Database(file, { readonly: true });
  try {
    return Object.fromEntries(
      fts5.fts5Tables.map((table) => [table, fts5.fts5Segments(db, table).flat().length]),
    );
  } finally {
    db.close();
  }
}

/** Bytes of the files in a directory tree. */
export function directoryBytes(path) {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    total += entry.isDirectory() ? directoryBytes(child) : statSync(child).size;
  }
  return total;
}

/**
 * Bytes per part of the closed database (dbstat), indexes counted with their table. The FTS5 shadow
 * tables are named after their table (search_text_data, search_text_idx…); the other search tables
 * and the indexes the search schema adds to versions (versions_by_hlc, versions_by_bucket_hlc) go
 * together as "search, other".
 */
export function strataTableBytes(file) {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT s.name AS name, COALESCE(m.tbl_name, s.name) AS owner, SUM(s.pgsize) AS bytes
         FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY s.name`,
      )
      .all();
    const groups = new Map();
    for (const { name, owner, bytes } of rows) {
      const fts = ['search_text', 'search_code', 'search_diff', 'search_pairs'].find((prefix) =>
        owner.startsWith(prefix),
      );
      const group =
        fts ??
        (owner.startsWith('search_') || name === 'versions_by_hlc' || name === 'versions_by_bucket_hlc'
          ? 'search, other'
          : ['versions', 'commits', 'blobs'].includes(owner)
            ? owner
            : 'other');
      groups.set(group, (groups.get(group) ?? 0) + bytes);
    }
    return groups;
  } finally {
    db.close();
  }
}
