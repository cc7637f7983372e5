import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { assertRunning, startChild } from './child.mjs';
import { freePort } from './ports.mjs';
import { waitUntil } from './wait.mjs';

const execFileAsync = promisify(execFile);

/** Debian's postgresql-<version> packages install their binaries here. */
const debianRoot = '/usr/lib/postgresql';
/** initdb and start-up of an empty cluster take a few seconds; recovery is never needed here. */
const startTimeoutMs = 60_000;
/** A load step (COPY of a million rows, a GIN build) may take minutes; more means something is wrong. */
const loadStepTimeoutMs = 30 * 60_000;
/**
 * A query slower than this is cut off and counted at this time (censored): it bounds the run when a
 * query class is pathological, and is far beyond the 50 ms goal anyway.
 */
export const statementTimeoutMs = 30_000;
/** psql's stderr kept for error messages. */
const outputBytesMax = 64 * 1024;
/** Written after each query so the reader knows where one query's output ends. */
const endMarker = '@@strata-bench-end@@';

/** `{ version, bin }` of the newest Debian PostgreSQL installed, or undefined. */
export function findPostgres() {
  if (!existsSync(debianRoot)) return undefined;
  const versions = readdirSync(debianRoot)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(debianRoot, name, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) return undefined;
  const bin = join(debianRoot, versions[0], 'bin');
  const version = execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  return { version, bin };
}

/**
 * The server's settings: memory for a machine that holds the whole data set in RAM (the benchmark
 * compares warm indexes, as Strata's are after the build), JIT off (it adds tens of ms of
 * compilation to any plan over its cost threshold, which full-text queries with ts_rank often are).
 * Everything else keeps PostgreSQL's defaults, parallel query included.
 */
function serverSettings() {
  const ramMb = Math.floor(totalmem() / 1024 / 1024);
  // The usual advice: shared_buffers a quarter of RAM; capped, as it only needs to hold the indexes.
  const sharedBuffersMb = Math.min(4096, Math.floor(ramMb / 4));
  return {
    shared_buffers: `${sharedBuffersMb}MB`,
    effective_cache_size: `${Math.floor(ramMb / 2)}MB`,
    maintenance_work_mem: '1GB',
    work_mem: '64MB',
    // Checkpoints during the bulk load would only add noise to its time.
    max_wal_size: '16GB',
    checkpoint_timeout: '30min',
    jit: 'off',
    random_page_cost: '1.1',
  };
}

/**
 * A private PostgreSQL cluster in a temp dir: initdb, then `postgres` on a free loopback port with
 * its Unix socket in the same dir. PostgreSQL refuses to run as root, so when this process is root
 * the server runs as the `postgres` user (spawn's uid/gid: the same as `runuser -u postgres`, without
 * a process in between that signals would have to pass through).
 */
export async function startPostgres({ bin, log }) {
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
      }
    : {};
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-pg-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    if (asRoot) chownSync(dir, owner.uid, owner.gid);
    const dataDir = join(dir, 'data');
    execFileSync(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'],
      { ...owner, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const port = await freePort();
    const settings = {
      ...serverSettings(),
      port: String(port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      log_min_messages: 'warning',
    };
    const child = startChild(
      join(bin, 'postgres'),
      ['-D', dataDir, ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])],
      { ...owner, cwd: dir },
    );
    const psql = join(bin, 'psql');
    const connectArgs = ['-X', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres'];
    let stopping;
    const stop = () => {
      stopping ??= (async () => {
        // SIGINT is PostgreSQL's fast shutdown: it ends sessions and checkpoints, without waiting.
        if (!child.exitStatus() && child.pid !== undefined) process.kill(child.pid, 'SIGINT');
        await child.stop();
        removeDir();
      })();
      return stopping;
    };
    try {
      await waitUntil(
        `PostgreSQL on ${dir}/.s.PGSQL.${port}`,
        async () => {
          assertRunning(child, 'postgres');
          await execFileAsync(psql, [...connectArgs, '-c', 'SELECT 1'], { timeout: 5000 });
          return true;
        },
        startTimeoutMs,
      );
    } catch (error) {
      await stop();
      throw error;
    }
    log(`PostgreSQL up on port ${port}, data in ${dataDir}`);
    return { dir, psql, connectArgs, settings: serverSettings(), stop, output: child.output };
  } catch (error) {
    removeDir();
    throw error;
  }
}

/** Runs SQL (or one psql meta-command) in a fresh psql; resolves with its output, rejects on error. */
export async function runSql(pg, sql) {
  const { stdout } = await execFileAsync(
    pg.psql,
    [...pg.connectArgs, '-v', 'ON_ERROR_STOP=1', '-q', '-A', '-t', '-c', sql],
    { timeout: loadStepTimeoutMs, maxBuffer: outputBytesMax },
  );
  return stdout.trim();
}

/**
 * The table the issue describes. The tsvectors are generated columns, so COPY computes them as it
 * loads (their cost is part of the load time). 'simple' is the configuration that matches Strata's
 * unicode61 tokenizer: lower-cased words, no stemming, no stop words, so both find the same rows.
 * Code identifiers go into one tsvector with weight A for definitions and B for uses; `name:A`
 * then asks for a definition (the GIN index finds the word, the weight is checked on the row).
 */
const schemaSql = `
CREATE TABLE versions (
  version text NOT NULL,
  bucket text NOT NULL,
  key text NOT NULL,
  kind text NOT NULL,
  tx_time bigint NOT NULL,
  is_current boolean NOT NULL,
  body text NOT NULL,
  defined text,
  referenced text,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
  code_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', defined), 'A') || setweight(to_tsvector('simple', referenced), 'B')
  ) STORED
)`;

const indexSql = [
  'CREATE INDEX versions_tsv ON versions USING gin (tsv)',
  'CREATE INDEX versions_code_tsv ON versions USING gin (code_tsv)',
  'CREATE INDEX versions_tx_time ON versions (tx_time)',
  'VACUUM ANALYZE versions',
];

/** Loads the TSV written by search-rows.mjs; returns load and index times and sizes in bytes. */
export async function loadPostgres(pg, tsvPath, log) {
  await runSql(pg, schemaSql);
  let started = performance.now();
  log('PostgreSQL: COPY…');
  await runSql(
    pg,
    `\\copy versions (version, bucket, key, kind, tx_time, is_current, body, defined, referenced) FROM '${tsvPath}'`,
  );
  const loadSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  log('PostgreSQL: indexes…');
  for (const statement of indexSql) await runSql(pg, statement);
  const indexSeconds = (performance.now() - started) / 1000;
  const sizes = await runSql(
    pg,
    `SELECT pg_table_size('versions') || ',' || pg_relation_size('versions_tsv') || ',' ||
            pg_relation_size('versions_code_tsv') || ',' || pg_relation_size('versions_tx_time') || ',' ||
            pg_database_size(current_database())`,
  );
  const [table, textIndex, codeIndex, timeIndex, database] = sizes.split(',').map(Number);
  return { loadSeconds, indexSeconds, bytes: { table, textIndex, codeIndex, timeIndex, database } };
}

/**
 * One long-lived psql that runs each query under EXPLAIN (ANALYZE, TIMING OFF): the server reports
 * its own planning and execution time, so the figure is server-side, free of psql and the socket.
 * TIMING OFF drops the per-node clock reads that would slow the query down.
 */
export function queryRunner(pg) {
  const child = spawn(pg.psql, [...pg.connectArgs, '-q', '-A', '-t'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-outputBytesMax);
  });
  let lines = [];
  let waiting;
  let exited;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line !== endMarker) {
      lines.push(line);
      return;
    }
    const done = waiting;
    waiting = undefined;
    done?.resolve(lines);
    lines = [];
  });
  child.once('exit', (code) => {
    exited = new Error(`psql exited (code ${code}): ${stderr}`);
    waiting?.reject(exited);
  });
  const send = (text) =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(exited);
        return;
      }
      waiting = { resolve, reject };
      child.stdin.write(`${text}\n\\echo ${endMarker}\n`);
    });
  const ready = send(`SET statement_timeout = ${statementTimeoutMs};`);
  return {
    /** `{ ms, rows }`, or `{ ms: statementTimeoutMs, timedOut: true }`; throws on other errors. */
    async explain(sql) {
      await ready;
      const errorsBefore = stderr.length;
      const output = await send(`EXPLAIN (ANALYZE, TIMING OFF) ${sql};`);
      const text = output.join('\n');
      const planning = /Planning Time: ([\d.]+) ms/.exec(text);
      const execution = /Execution Time: ([\d.]+) ms/.exec(text);
      if (!planning || !execution) {
        // stderr is a separate pipe: give its last chunk a moment to arrive.
        await new Promise((resolve) => setImmediate(resolve));
        const message = stderr.slice(errorsBefore);
        if (/statement timeout/.test(message)) return { ms: statementTimeoutMs, timedOut: true };
        throw new Error(`PostgreSQL query failed: ${message || text}\n${sql}`);
      }
      const rows = Number(/actual rows=(\d+)/.exec(text)?.[1] ?? Number.NaN);
      return { ms: Number(planning[1]) + Number(execution[1]), rows };
    },
    async close() {
      if (!exited) {
        child.stdin.end('\\q\n');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
  };
}
