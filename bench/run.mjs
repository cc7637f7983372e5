/**
 * `npm run bench`: durable PUT throughput and p50/p99 latency of Strata at 1, 16 and 64
 * closed-loop clients (1 KB values) and GET throughput, side by side with a local single-member
 * etcd and with this disk's raw fdatasync rate. Prints figures; asserts nothing.
 *
 * Env: BENCH_SECONDS (measured seconds per phase, default 5), BENCH_WARMUP_SECONDS (default 1),
 * BENCH_SERVER_WARMUP_SECONDS (PUTs each server takes, unmeasured, before its first phase; default 10).
 * Both servers run for the whole benchmark but only one is under load at a time; see
 * lib/workload.mjs for the order.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, type } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupStack } from './lib/cleanup.mjs';
import { etcdBinary, etcdClient, etcdVersion, startEtcd } from './lib/etcd.mjs';
import { measureFdatasync } from './lib/fdatasync.mjs';
import { startFloorServer } from './lib/floor.mjs';
import { phase } from './lib/load.mjs';
import { formatReport } from './lib/report.mjs';
import { groupCommitWindow, startStrata, strataClient } from './lib/strata.mjs';
import { valueFor } from './lib/value.mjs';
import { runWorkloads, warmUpServer } from './lib/workload.mjs';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const putConcurrencies = [1, 16, 64];
const getConcurrencies = [16, 64];
/** Per pattern and sample; the issue asks for about 2 s, enough for hundreds of syncs on any disk. */
const fdatasyncMs = 2000;

function secondsFromEnv(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a non-negative number, got "${text}"`);
  return value;
}

const log = (line) => process.stderr.write(`${line}\n`);

const cleanups = cleanupStack(log, 'stopping servers and removing temp files');

async function main() {
  const seconds = secondsFromEnv('BENCH_SECONDS', 5);
  const warmupSeconds = secondsFromEnv('BENCH_WARMUP_SECONDS', 1);
  const serverWarmupSeconds = secondsFromEnv('BENCH_SERVER_WARMUP_SECONDS', 10);
  if (seconds === 0) throw new Error('BENCH_SECONDS must be more than 0');
  const timing = {
    durationMs: seconds * 1000,
    warmupMs: warmupSeconds * 1000,
    serverWarmupMs: serverWarmupSeconds * 1000,
  };
  if (!existsSync(join(repoDir, 'dist', 'cli', 'main.js'))) {
    throw new Error('Strata is not built: run `npm run build` first (`npm run bench` does).');
  }

  // One temp dir for everything, so the fdatasync probe measures the file system Strata and etcd write to.
  const tempDir = mkdtempSync(join(tmpdir(), 'strata-bench-'));
  cleanups.push(() => rmSync(tempDir, { recursive: true, force: true }));
  const version = etcdVersion();
  const setup = {
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    os: `${type()} ${release()}`,
    etcdVersion: version,
    tempDir,
    seconds,
    warmupSeconds,
    serverWarmupSeconds,
    putConcurrencies,
    getConcurrencies,
  };

  const strataDir = join(tempDir, 'strata');
  mkdirSync(strataDir);
  log('starting Strata…');
  const strataServer = await startStrata({ repoDir, dataDir: strataDir });
  cleanups.push(strataServer.stop);
  const targets = [
    {
      name: 'Strata',
      serverPid: strataServer.pid,
      makeClient: (concurrency) => strataClient(strataServer, concurrency),
      groupCommit: { totals: () => strataServer.groupCommitTotals(), window: groupCommitWindow },
    },
  ];

  let etcdSkipped;
  if (version === undefined) {
    etcdSkipped = `${etcdBinary} not found; install Debian's etcd-server to compare`;
    log(`etcd ${etcdSkipped}`);
  } else {
    log('starting etcd…');
    const etcdServer = await startEtcd({ dataDir: join(tempDir, 'etcd') });
    cleanups.push(etcdServer.stop);
    targets.push({
      name: 'etcd',
      serverPid: etcdServer.pid,
      makeClient: (concurrency) => etcdClient(etcdServer, concurrency),
    });
  }

  // Measured just before the c=1 PUTs it is compared with, and again at the end, while both
  // servers sit idle: on a shared disk the rate drifts, and two samples show by how much.
  const measureDisk = (when) => {
    log(`fdatasync rate (${when})…`);
    return ['append', 'overwrite'].map((pattern) => ({
      when,
      ...measureFdatasync(tempDir, pattern, fdatasyncMs),
    }));
  };
  const runs = measureDisk('before');
  const results = await runWorkloads({ targets, putConcurrencies, getConcurrencies, timing, log });
  runs.push(...measureDisk('after'));

  log('HTTP + fdatasync floor, 1 client…');
  const floorServer = await startFloorServer(join(tempDir, 'floor.bin'));
  cleanups.push(floorServer.stop);
  await warmUpServer((concurrency) => floorServer.client(concurrency), timing.serverWarmupMs);
  const floorClient = floorServer.client(1);
  const floor = await phase({
    concurrency: 1,
    durationMs: timing.durationMs,
    warmupMs: timing.warmupMs,
    serverPid: floorServer.pid,
    request: (index, sequence) => floorClient.put('', valueFor(index, sequence)),
  });
  await floorClient.close();
  const fdatasync = { runs, best: runs.reduce((a, b) => (b.perSecond > a.perSecond ? b : a)) };
  const strata = results.get('Strata');
  const etcd = results.get('etcd');

  process.stdout.write(`\n${formatReport({ setup, fdatasync, strata, etcd, etcdSkipped })}\n`);
  const strataOne = strata.puts.get(1);
  process.stdout.write(
    `\nHTTP floor: a bare node:http server doing write + fdatasync per PUT, 1 client: ${floor.perSecond.toFixed(0)} req/s ` +
      `(p50 ${floor.p50Ms.toFixed(2)} ms) = ${(floor.perSecond / fdatasync.best.perSecond).toFixed(2)}× the raw fdatasync rate; ` +
      `Strata c=1 = ${(strataOne.perSecond / floor.perSecond).toFixed(2)}× this floor\n`,
  );
}

try {
  await main();
} catch (error) {
  log(`bench failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanups.run();
}
