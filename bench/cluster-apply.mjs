/**
 * What a node's CPU costs per commit it applies from a peer (part of `npm run bench`, after
 * `npm run build`). One real node process; this script is its only peer: it dials the node's
 * peer endpoint with the cluster key, says hello, keeps beating, and pushes gossip of fresh
 * commits from its own origin (1 KB values inline) at a steady rate, in bursts of 1, 5, 20…
 * commits written back to back. The node applies each (causal checks, one transaction and one
 * fdatasync per group-commit batch) and forwards nothing (it has no other peer). Printed per
 * burst size: the node's CPU per applied commit, and its group commit. Asserts nothing.
 *
 * Env: BENCH_APPLY_RATE (commits/s, default 500), BENCH_APPLY_SECONDS (default 10),
 * BENCH_APPLY_BURSTS (comma-separated burst sizes, default 1,5,20), BENCH_APPLY_WARMUP_SECONDS
 * (commits applied at the same rate before the measured ones, default 5).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { LinkAuth } from '../dist/cluster/link-auth.js';
import { commitId, encodeCommit } from '../dist/core/commit.js';
import { sha256 } from '../dist/core/hash.js';
import { formatHlc } from '../dist/core/hlc.js';
import { cleanupStack } from './lib/cleanup.mjs';
import { processCpuSeconds } from './lib/cpu.mjs';
import { numberFromEnv } from './lib/env.mjs';
import { groupCommitWindow, startStrata } from './lib/strata.mjs';
import { fixed, formatTable, rate } from './lib/table.mjs';
import { waitUntil } from './lib/wait.mjs';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const clusterKey = randomBytes(24).toString('hex');
/** The node drops a link on which nothing came for 4 s; beat well inside that. */
const heartbeatMs = 300;
/** Sends are checked this often; each check sends the whole bursts that are due. */
const sendTickMs = 2;
const applyTimeoutMs = 120_000;

const ratePerSecond = numberFromEnv('BENCH_APPLY_RATE', 500);
const seconds = numberFromEnv('BENCH_APPLY_SECONDS', 10);
const bursts = (process.env.BENCH_APPLY_BURSTS ?? '1,5,20').split(',').map((text) => {
  const size = Number(text);
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`BENCH_APPLY_BURSTS: "${text}" is not a burst size ≥ 1`);
  return size;
});
const commits = Math.round(ratePerSecond * seconds);
/** Applied first and not measured: V8 compiles the node's hot paths meanwhile (see cluster.mjs). */
const warmupCommits = Math.round(ratePerSecond * numberFromEnv('BENCH_APPLY_WARMUP_SECONDS', 5));

const log = (line) => process.stderr.write(`${line}\n`);
const cleanups = cleanupStack(log, 'stopping the node and removing temp files');

/** `count` gossip messages of one-put commits from `origin`, seq 1…count, as JSON text. */
function gossipMessages(origin, count) {
  const messages = [];
  const start = Date.now();
  for (let seq = 1; seq <= count; seq++) {
    const value = Buffer.from(randomBytes(512).toString('hex'));
    const hash = sha256(value);
    const at = start + seq;
    const commit = {
      origin,
      seq,
      hlc: formatHlc({ wall: at, counter: 0, node: origin }),
      ops: [
        {
          kind: 'put',
          bucket: 'bench',
          key: `apply-${randomBytes(8).toString('hex')}`,
          parents: [],
          blob: hash,
          contentType: 'application/octet-stream',
          size: value.length,
          effectiveAt: at,
        },
      ],
    };
    const envelope = {
      id: commitId(commit),
      body: encodeCommit(commit),
      blobs: { [hash]: value.toString('base64') },
    };
    messages.push(JSON.stringify({ type: 'gossip', round: 0, envelope }));
  }
  return messages;
}

/** A link to the node's peer endpoint as a peer with its own origin id; resolves once both hellos are said. */
async function peerLink(node, origin) {
  const headers = new LinkAuth(clusterKey, Date.now).dial(origin, 'bench-peer');
  const socket = new WebSocket(`${node.url.replace(/^http/, 'ws')}/v1/cluster/link`, { headers });
  // The node's hello may come in the same read as the upgrade's answer: listen before `open`.
  const helloFromNode = new Promise((resolve) => socket.once('message', resolve));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  await helloFromNode;
  const incarnation = Date.now();
  const member = {
    id: origin,
    name: 'bench-peer',
    url: 'http://127.0.0.1:9',
    incarnation,
    heartbeat: 1,
    signals: { revision: {}, replicationDelayMs: 0, meanResponseMs: 0, errorRate: 0, eager: [], lazy: [] },
  };
  socket.send(JSON.stringify({ type: 'hello', member, proof: '0'.repeat(64) }));
  let heartbeat = 1;
  const beat = setInterval(() => {
    heartbeat += 1;
    socket.send(JSON.stringify({ type: 'members', members: [{ id: origin, incarnation, heartbeat }] }));
  }, heartbeatMs);
  return {
    send: (text) => socket.send(text),
    close() {
      clearInterval(beat);
      socket.terminate();
    },
  };
}

async function applied(node) {
  return (await node.json('/v1/cluster/status')).counters.applied;
}

async function runBurst(burst) {
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-bench-apply-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const node = await startStrata({
    repoDir,
    dataDir,
    args: ['--cluster-key', clusterKey, '--node-name', 'apply'],
  });
  cleanups.push(node.stop);
  const origin = randomBytes(8).toString('hex');
  const messages = gossipMessages(origin, warmupCommits + commits);
  const link = await peerLink(node, origin);
  cleanups.push(() => link.close());
  await waitUntil(
    'the node to take the bench peer as linked',
    async () =>
      (await node.json('/v1/cluster/status')).members.some((row) => row.id === origin && row.linked),
    10_000,
  );

  /** Sends messages[from, to) at the rate, in bursts, and waits until the node has applied them. */
  async function feed(from, to) {
    const startMs = performance.now();
    let sent = from;
    await new Promise((resolve) => {
      const tick = setInterval(() => {
        const due = Math.floor(((performance.now() - startMs) * ratePerSecond) / 1000 / burst) * burst;
        while (sent < Math.min(from + due, to)) link.send(messages[sent++]);
        if (sent >= to) {
          clearInterval(tick);
          resolve();
        }
      }, sendTickMs);
    });
    await waitUntil(
      `the node to apply ${to} commits`,
      async () => (await applied(node)) >= to,
      applyTimeoutMs,
    );
  }

  await feed(0, warmupCommits);
  const groupBefore = await node.groupCommitTotals();
  const cpuBefore = processCpuSeconds(node.pid);
  const startMs = performance.now();
  await feed(warmupCommits, warmupCommits + commits);
  const elapsedMs = performance.now() - startMs;
  const cpuSeconds = processCpuSeconds(node.pid) - cpuBefore;
  const group = groupCommitWindow(groupBefore, await node.groupCommitTotals(), elapsedMs);
  link.close();
  await node.stop();
  return { burst, elapsedMs, cpuSeconds, group };
}

log(
  `apply: one node, one bench peer, ${rate(commits)} commits at ${ratePerSecond}/s in bursts of ${bursts.join(', ')}`,
);
const results = [];
try {
  for (const burst of bursts) {
    log(`  bursts of ${burst}…`);
    results.push(await runBurst(burst));
  }
} finally {
  await cleanups.run();
}

console.log(
  `\nApplying commits from a peer: ${rate(commits)} one-put commits (1 KB values inline) at ${ratePerSecond}/s, ` +
    `after ${rate(warmupCommits)} unmeasured, ` +
    `node ${process.version}, ${cpus().length} cores shared with this script`,
);
console.log(
  formatTable(
    ['burst', 'seconds', 'node CPU, % of a core', 'CPU per commit, µs', 'syncs/s', 'commits per sync'],
    results.map(({ burst, elapsedMs, cpuSeconds, group }) => [
      String(burst),
      fixed(elapsedMs / 1000, 1),
      fixed((cpuSeconds * 100_000) / elapsedMs, 0),
      fixed((cpuSeconds * 1e6) / commits, 0),
      fixed(group.syncsPerSecond, 0),
      fixed(group.commitsPerSync, 2),
    ]),
  ),
);
