/**
 * Cluster benchmark (part of `npm run bench`, after `npm run build`): replication delay, messages
 * per commit and Plumtree redundancy of 3 and then 5 local nodes (real processes on loopback)
 * under an open-loop write load, and the catch-up throughput of a fresh node joining a node that
 * holds many commits. Prints figures; asserts nothing.
 *
 * Replication delay is measured from outside: every node's live change feed is followed, each
 * commit's arrival on each node is timed on this process's clock, and compared with the time
 * its origin acknowledged the PUT (201: durable there).
 *
 * Env: BENCH_CLUSTER_SECONDS (load per cluster size, default 10), BENCH_CLUSTER_RATE (commits/s,
 * default 500), BENCH_CATCHUP_COMMITS (commits the joining node catches up on, default 20,000),
 * BENCH_CLUSTER_SIZES (comma-separated node counts, default 3,5), BENCH_CLUSTER_WARMUP_SECONDS
 * (unmeasured load before each measured one, default 10).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, type } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cleanupStack, runSteps } from './lib/cleanup.mjs';
import { followChanges, lastCursor } from './lib/cluster-feed.mjs';
import { openLoopWrites, seedWrites } from './lib/cluster-load.mjs';
import {
  clusterCounters,
  counterDelta,
  revisionOf,
  revisionTotal,
  sameRevision,
  startCluster,
  startClusterNode,
  waitForEqualDigests,
} from './lib/cluster-nodes.mjs';
import { formatCatchup, formatClusterRun, formatSummary } from './lib/cluster-report.mjs';
import { replicationDelays, visibleEverywhere } from './lib/cluster-stats.mjs';
import { machineCpuTicks, ownCpuSeconds, processCpuSeconds, stealPercent } from './lib/cpu.mjs';
import { numberFromEnv } from './lib/env.mjs';
import { groupCommitWindow } from './lib/strata.mjs';
import { waitUntil } from './lib/wait.mjs';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const clusterSizes = (process.env.BENCH_CLUSTER_SIZES ?? '3,5').split(',').map((text) => {
  const size = Number(text);
  if (!Number.isInteger(size) || size < 2)
    throw new Error(`BENCH_CLUSTER_SIZES: "${text}" is not a node count ≥ 2`);
  return size;
});
/**
 * Unmeasured load first: connections open, Plumtree has pruned its first duplicates, and V8 has
 * compiled the hot paths. Five fresh nodes on two cores took about 10 s of load for that (the
 * optimizing compiler's background threads used 15% of a node's CPU 9 s after its start, 3% at 26 s).
 */
const warmupSeconds = numberFromEnv('BENCH_CLUSTER_WARMUP_SECONDS', 10);
/** Outstanding PUTs at most: at 500/s and ~10 ms per PUT about 5 are; 256 means the cluster is stuck. */
const inFlightMax = 256;
/** After the last acknowledgement, how long commits may take to show up everywhere before they count as missing. */
const settleTimeoutMs = 30_000;
const digestTimeoutMs = 30_000;
/** Seeding concurrency for the catch-up node: enough to fill Strata's group commit. */
const seedConcurrency = 64;
/** The catch-up is given this long per 1,000 commits (and at least a minute) before it is reported unfinished. */
const catchupMsPerThousand = 30_000;
const pollMs = 50;

const log = (line) => process.stderr.write(`${line}\n`);
const cleanups = cleanupStack(log, 'stopping nodes and removing temp files');

/** Runs `work` with steps pushed on the global stack, then undoes just those steps (nodes of one phase). */
async function scoped(work) {
  const steps = [];
  const scope = { push: (step) => steps.push(step) };
  const undo = () => runSteps(steps, log);
  cleanups.push(undo);
  try {
    return await work(scope);
  } finally {
    await undo();
  }
}

async function waitForSameRevisions(nodes, what, timeoutMs) {
  await waitUntil(
    what,
    async () => {
      const revisions = await Promise.all(nodes.map((node) => revisionOf(node)));
      return revisions.every((revision) => sameRevision(revision, revisions[0]));
    },
    timeoutMs,
  );
}

async function runCluster({ size, tempDir, clusterKey, rate, seconds }) {
  return scoped(async (scope) => {
    const baseDir = join(tempDir, `cluster-${size}`);
    scope.push(() => rmSync(baseDir, { recursive: true, force: true }));
    log(`${size} nodes: starting…`);
    const nodes = await startCluster({
      repoDir,
      baseDir,
      size,
      clusterKey,
      label: `n${size}`,
      cleanups: scope,
      log,
    });

    // commit id → arrival time on each node (performance.now(), NaN until seen).
    const visible = new Map();
    const feeds = [];
    for (const [index, node] of nodes.entries()) {
      const since = await lastCursor(node);
      const feed = await followChanges(node, since, (change, atMs) => {
        let times = visible.get(change.commit);
        if (!times) {
          times = new Float64Array(size).fill(Number.NaN);
          visible.set(change.commit, times);
        }
        if (Number.isNaN(times[index])) times[index] = atMs;
      });
      feeds.push(feed);
      scope.push(() => feed.close());
    }

    log(`  warm-up: ${warmupSeconds} s at ${rate} commits/s…`);
    await openLoopWrites({ nodes, rate, seconds: warmupSeconds, inFlightMax, keyPrefix: `warmup-n${size}` });
    await waitForSameRevisions(nodes, 'the warm-up commits on every node', settleTimeoutMs);

    const before = await clusterCounters(nodes);
    const nodeCpuBefore = nodes.map((node) => processCpuSeconds(node.pid));
    const groupCommitBefore = await Promise.all(nodes.map((node) => node.groupCommitTotals()));
    const clientCpuBefore = ownCpuSeconds();
    const machineBefore = machineCpuTicks();
    const windowStart = performance.now();
    log(`  load: ${seconds} s at ${rate} commits/s…`);
    const load = await openLoopWrites({ nodes, rate, seconds, inFlightMax, keyPrefix: `load-n${size}` });
    const loadMs = performance.now() - windowStart;
    const nodeCpuAfter = nodes.map((node) => processCpuSeconds(node.pid));
    const clientCpuAfter = ownCpuSeconds();
    const machineAfter = machineCpuTicks();
    const groupCommitAfter = await Promise.all(nodes.map((node) => node.groupCommitTotals()));

    const lastAck = performance.now();
    let complete = false;
    while (performance.now() - lastAck < settleTimeoutMs) {
      if (visibleEverywhere(load.writes, visible) === load.writes.length) {
        complete = true;
        break;
      }
      await sleep(pollMs);
    }
    const settle = { complete, ms: performance.now() - lastAck };
    const after = await clusterCounters(nodes);
    const windowMs = performance.now() - windowStart;
    log('  waiting for equal digests…');
    const digests = await waitForEqualDigests(nodes, digestTimeoutMs);

    const percentOfCore = (start, end) =>
      start === undefined || end === undefined ? undefined : ((end - start) * 100_000) / loadMs;
    return {
      size,
      rate,
      seconds,
      inFlightMax,
      load: { ...load, offered: Math.max(1, Math.round(rate * seconds)) },
      acknowledged: load.writes.length,
      delays: replicationDelays(load.writes, visible, size),
      settle,
      feedFailures: feeds
        .map((feed, index) => feed.failure() && `${nodes[index].name}: ${feed.failure().message}`)
        .filter(Boolean),
      counters: counterDelta(before, after),
      windowMs,
      digests,
      cpu: {
        nodes: nodes.map((_, index) => percentOfCore(nodeCpuBefore[index], nodeCpuAfter[index])),
        client: percentOfCore(clientCpuBefore, clientCpuAfter),
        steal: stealPercent(machineBefore, machineAfter),
      },
      groupCommit: nodes.map((_, index) =>
        groupCommitWindow(groupCommitBefore[index], groupCommitAfter[index], loadMs),
      ),
    };
  });
}

async function runCatchup({ tempDir, clusterKey, commits }) {
  return scoped(async (scope) => {
    const baseDir = join(tempDir, 'catchup');
    scope.push(() => rmSync(baseDir, { recursive: true, force: true }));
    log(`catch-up: starting node A and seeding ${commits.toLocaleString('en-US')} commits…`);
    const a = await startClusterNode({ repoDir, dataDir: join(baseDir, 'a'), name: 'catchup-a', clusterKey });
    scope.push(a.stop);
    let reported = 0;
    const seed = await seedWrites({
      node: a,
      count: commits,
      concurrency: seedConcurrency,
      keyPrefix: 'catchup',
      onProgress: (done) => {
        if (done - reported >= commits / 5 || done === commits) {
          reported = done;
          log(`  seeded ${done.toLocaleString('en-US')}`);
        }
      },
    });
    const target = await revisionOf(a);
    const targetTotal = revisionTotal(target);

    log('  starting node B with --join A…');
    const spawnedAt = performance.now();
    const b = await startClusterNode({
      repoDir,
      dataDir: join(baseDir, 'b'),
      name: 'catchup-b',
      clusterKey,
      join: a.url,
    });
    scope.push(b.stop);
    const startMs = performance.now() - spawnedAt;
    const deadlineMs = Math.max(60_000, (commits / 1000) * catchupMsPerThousand);
    let reached = 0;
    let equal = false;
    let lastLog = performance.now();
    // B's revision is cheap to read; the digest (a scan of every version) is asked only once it matches.
    while (performance.now() - spawnedAt < deadlineMs) {
      const revision = await revisionOf(b);
      reached = revisionTotal(revision);
      if (sameRevision(revision, target)) {
        const [digestA, digestB] = await Promise.all([
          a.json('/v1/admin/digest'),
          b.json('/v1/admin/digest'),
        ]);
        if (digestA.digest === digestB.digest) {
          equal = true;
          break;
        }
      }
      if (performance.now() - lastLog > 2000) {
        lastLog = performance.now();
        log(`  B has ${reached.toLocaleString('en-US')} of ${targetTotal.toLocaleString('en-US')} commits`);
      }
      await sleep(pollMs);
    }
    const equalMs = performance.now() - spawnedAt;
    const counters = await clusterCounters([b]);
    return {
      commits: targetTotal,
      seed: { ...seed, concurrency: seedConcurrency },
      startMs,
      equalMs,
      equal,
      reached,
      counters,
    };
  });
}

async function main() {
  if (!existsSync(join(repoDir, 'dist', 'cli', 'main.js'))) {
    throw new Error('Strata is not built: run `npm run build` first (`npm run bench` does).');
  }
  const seconds = numberFromEnv('BENCH_CLUSTER_SECONDS', 10);
  const rate = numberFromEnv('BENCH_CLUSTER_RATE', 500);
  const catchupCommits = Math.round(numberFromEnv('BENCH_CATCHUP_COMMITS', 20_000));
  const tempDir = mkdtempSync(join(tmpdir(), 'strata-bench-cluster-'));
  cleanups.push(() => rmSync(tempDir, { recursive: true, force: true }));
  const clusterKey = randomBytes(16).toString('hex');
  const loadBefore = loadavg()[0];

  const runs = [];
  for (const size of clusterSizes) {
    const run = await runCluster({ size, tempDir, clusterKey, rate, seconds });
    runs.push(run);
    process.stdout.write(`\n${formatClusterRun(run)}\n\n`);
  }
  const catchup = await runCatchup({ tempDir, clusterKey, commits: catchupCommits });
  process.stdout.write(`\n${formatCatchup(catchup)}\n`);

  process.stdout.write(
    `\nCluster benchmark: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ` +
      `${type()} ${release()}; all nodes and this load generator share the machine; temp dir ${tempDir}\n` +
      `load average (1 min): ${loadBefore.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end ` +
      '(above the CPU count, other processes competed with the nodes and the figures are pessimistic)\n\n',
  );
  process.stdout.write(`${formatSummary(runs, catchup)}\n`);
}

try {
  await main();
} catch (error) {
  if (!cleanups.interrupted) {
    log(`bench failed: ${error.stack ?? error}`);
    process.exitCode = 1;
  }
} finally {
  await cleanups.run();
}
