import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readCorpus } from './search-corpus.mjs';

/**
 * Commits submitted and not yet durable. Group commit puts everything queued while a batch syncs
 * into the next one, so a few in flight keep the writer busy; more would only hold more documents
 * in memory (each commit holds `commitOps` of them, ~1 KB each).
 */
const commitsInFlightMax = Number(process.env.INFLIGHT ?? 4);

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
      onProgress?.(next);
    }
  }
  if (ops.length > 0) {
    track(submit(ops, first));
    commits += 1;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  const seconds = (performance.now() - started) / 1000;
  return { versionIds, txTimes, seconds, commits };
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
 * Bytes per group of tables in the closed database (dbstat). The FTS5 shadow tables are named
 * after their table (search_text_data, search_text_idx…), so they group by prefix.
 */
export function strataTableBytes(file) {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name').all();
    const groups = new Map();
    for (const { name, bytes } of rows) {
      const group =
        ['search_text', 'search_code', 'search_diff'].find((prefix) => name.startsWith(prefix)) ??
        (name.startsWith('search_') ? 'search_docs/keys' : name.startsWith('sqlite_autoindex_') ? 'autoindex' : name);
      groups.set(group, (groups.get(group) ?? 0) + bytes);
    }
    return groups;
  } finally {
    db.close();
  }
}
