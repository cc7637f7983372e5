/**
 * `node bench/search.mjs` (after `npm run build`): search at scale. Builds Strata's search index
 * over a deterministic corpus of mixed text, JSON and JavaScript versions, prints the indexing
 * throughput, then times 1,000 queries (single terms, phrases, prefixes, identifiers, time ranges,
 * versions=all) in-process; loads the same corpus into PostgreSQL with GIN tsvector indexes and
 * times the same queries server-side, side by side. Prints figures; asserts nothing.
 *
 * Env: BENCH_SEARCH_VERSIONS (default 1,000,000), BENCH_SEARCH_QUERIES (default 1,000),
 * BENCH_SEARCH_SEED (default 1), BENCH_SEARCH_POSTGRES=0 to leave PostgreSQL out,
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, type } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cleanupStack } from './lib/cleanup.mjs';
import { writeCorpus } from './lib/search-corpus.mjs';
import { findPostgres, loadPostgres, queryRunner, startPostgres } from './lib/search-postgres.mjs';
import { writePostgresRows } from './lib/search-postgres-rows.mjs';
import { buildQueries, hitsPerQuery, timeWindows } from './lib/search-queries.mjs';
import { bytes, formatSearchReport } from './lib/search-report.mjs';
import {
  buildStrata,
  directoryBytes,
  runStrataQueries,
  segmentCounts,
  strataTableBytes,
} from './lib/search-strata.mjs';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Puts per commit: a bulk import's batch. Within the 100–500; FTS5 writes a new segment
 * per transaction, so larger commits mean fewer merges, but they also hold the event loop longer.
 */
const commitOps = 250;
/** Unmeasured queries first, so neither system is timed on a cold statement cache or cold pages. */
const warmupQueries = 50;
/** Bounds from the issue: enough versions for a realistic index, few enough to fit in memory here. */
const versionsMax = 10_000_000;
const queriesMax = 100_000;
/** Progress lines on stderr: about twenty per phase. */
const progressSteps = 20;

function integerFromEnv(name, fallback, low, high) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(value) || value < low || value > high)
    throw new Error(`${name} must be an integer from ${low} to ${high}, got "${text}"`);
  return value;
}

const log = (line) => process.stderr.write(`${line}\n`);

function progress(what, total) {
  const step = Math.max(1, Math.floor(total / progressSteps));
  let next = step;
  const started = performance.now();
  return (done) => {
    if (done < next) return;
    next = (Math.floor(done / step) + 1) * step;
    const seconds = (performance.now() - started) / 1000;
    log(
      `  ${what}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} (${seconds.toFixed(0)} s)`,
    );
  };
}

const cleanups = cleanupStack(log, 'stopping PostgreSQL and removing temp files');

async function main() {
  const versions = integerFromEnv('BENCH_SEARCH_VERSIONS', 1_000_000, 1_000, versionsMax);
  const queryCount = integerFromEnv('BENCH_SEARCH_QUERIES', 1_000, 10, queriesMax);
  const seed = integerFromEnv('BENCH_SEARCH_SEED', 1, 0, 2 ** 32 - 1);
  const withPostgres = process.env.BENCH_SEARCH_POSTGRES !== '0';
  const dist = join(repoDir, 'dist');
  if (!existsSync(join(dist, 'store', 'store.js'))) {
    throw new Error('Strata is not built: run `npm run build` first.');
  }
  const { Store } = await import(pathToFileURL(join(dist, 'store', 'store.js')).href);
  const { systemClock } = await import(pathToFileURL(join(dist, 'core', 'clock.js')).href);
  const documents = await import(pathToFileURL(join(dist, 'search', 'documents.js')).href);
  const { identifierTerms } = await import(pathToFileURL(join(dist, 'search', 'identifiers.js')).href);
  const fts5 = {
    ...(await import(pathToFileURL(join(dist, 'search', 'fts5-structure.js')).href)),
    ...(await import(pathToFileURL(join(dist, 'search', 'schema.js')).href)),
  };

  const tempDir = mkdtempSync(join(tmpdir(), 'strata-bench-search-'));
  cleanups.push(() => rmSync(tempDir, { recursive: true, force: true }));
  const setup = {
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    os: `${type()} ${release()}`,
    tempDir,
    seed,
    warmupQueries,
    hitsPerQuery,
    loadBefore: loadavg()[0],
  };
  const runStarted = performance.now();

  log(`generating ${versions.toLocaleString('en-US')} versions…`);
  let started = performance.now();
  const corpus = await writeCorpus({
    path: join(tempDir, 'corpus.ndjson'),
    count: versions,
    commitOps,
    seed,
    onProgress: progress('generated', versions),
  });
  corpus.seconds = (performance.now() - started) / 1000;
  corpus.currentCount = corpus.keys;

  log('building Strata’s index…');
  const strataDir = join(tempDir, 'strata');
  mkdirSync(strataDir);
  // Idle merging is held off while the queries run straight after the build, then run to the end
  // (store.mergeSearchIndex) and the queries run again.
  const store = new Store({ dataDir: strataDir, clock: systemClock, idleAfterMs: 2 ** 31 - 1 });
  let storeOpen = true;
  cleanups.push(async () => {
    if (storeOpen) await store.close();
  });
  const build = await buildStrata({ store, corpus, onProgress: progress('indexed', versions) });
  log(`  ${(versions / build.seconds).toFixed(0)} versions/s`);

  const windows = timeWindows(build.txTimes, seed);
  const queries = buildQueries({ count: queryCount, seed, windows, identifierTerms });
  const warmup = buildQueries({ count: warmupQueries, seed: seed + 1, windows, identifierTerms });
  log(`Strata: ${queries.length} queries right after the build…`);
  runStrataQueries(store, warmup);
  const afterBuild = runStrataQueries(store, queries);
  // Once more before merging: the first pass also pays for pages the build left cold.
  const unmerged = runStrataQueries(store, queries);
  log('Strata: merging the index’s segments…');
  const segmentsBefore = segmentCounts(join(strataDir, 'strata.db'), fts5);
  started = performance.now();
  const mergeSteps = await store.mergeSearchIndex();
  const merge = {
    seconds: (performance.now() - started) / 1000,
    steps: mergeSteps,
    segmentsBefore,
    segmentsAfter: segmentCounts(join(strataDir, 'strata.db'), fts5),
    afterBuild,
    unmerged,
  };
  log(`  ${mergeSteps} steps in ${merge.seconds.toFixed(1)} s`);
  log(`Strata: ${queries.length} queries on the merged index…`);
  runStrataQueries(store, warmup);
  const strata = runStrataQueries(store, queries);
  await store.close();
  storeOpen = false;
  const strataBytes = { total: directoryBytes(strataDir) };
  const tables = strataTableBytes(join(strataDir, 'strata.db'));
  log(`  Strata database ${bytes(strataBytes.total)}`);

  let postgres;
  let postgresSkipped;
  const installed = withPostgres ? findPostgres() : undefined;
  if (!withPostgres) postgresSkipped = 'BENCH_SEARCH_POSTGRES=0';
  else if (!installed)
    postgresSkipped = 'not installed: `apt-get install -y postgresql` (Debian) to compare, then run again';
  if (installed) {
    log('PostgreSQL: preparing rows…');
    started = performance.now();
    const tsvPath = join(tempDir, 'postgres-rows.tsv');
    await writePostgresRows({ corpus, ...build, path: tsvPath, documents });
    const rowsSeconds = (performance.now() - started) / 1000;
    // The corpus and Strata's data are no longer needed: free the disk before PostgreSQL fills it.
    rmSync(strataDir, { recursive: true, force: true });
    rmSync(corpus.path, { force: true });
    log(`PostgreSQL: starting ${installed.version}…`);
    const pg = await startPostgres({ bin: installed.bin, log });
    cleanups.push(pg.stop);
    const load = await loadPostgres(pg, tsvPath, log);
    rmSync(tsvPath, { force: true });
    log(`PostgreSQL: ${queries.length} queries…`);
    const runner = queryRunner(pg);
    cleanups.push(() => runner.close());
    for (const query of warmup) await runner.explain(query.postgres);
    const results = [];
    for (const query of queries) results.push(await runner.explain(query.postgres));
    postgres = {
      version: installed.version,
      settingsText: Object.entries(pg.settings)
        .map(([name, value]) => `${name}=${value}`)
        .join(', '),
      rowsSeconds,
      load,
      results,
    };
  }

  setup.loadAfter = loadavg()[0];
  setup.runSeconds = (performance.now() - runStarted) / 1000;
  process.stdout.write(
    `\n${formatSearchReport({ setup, corpus, build, merge, strataBytes, tables, windows, queries, strata, postgres, postgresSkipped })}\n`,
  );
}

try {
  await main();
} catch (error) {
  if (!cleanups.interrupted) log(`bench failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanups.run();
}
