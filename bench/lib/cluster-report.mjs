import { fixed, formatTable, rate } from './table.mjs';

/** The issue's goal for replication delay, printed next to the measured p99 (nothing fails on it). */
export const goalP99Ms = 100;
export const goalRate = 500;

/** Message types by protocol layer, in the order they are printed. */
const layers = [
  ['broadcast', ['gossip', 'ihave', 'graft', 'prune']],
  ['anti-entropy', ['sync', 'sync_batch']],
  ['membership', ['members', 'ping', 'pong']],
];

const count = (value) => rate(value);
const ms = (value) => fixed(value, 1);

function delayRow(label, summary, missing) {
  return [label, count(summary.count), ms(summary.p50), ms(summary.p99), ms(summary.max), missing];
}

/** Plumtree redundancy: gossip copies received per (commit × other node), minus the one needed. */
export function redundancy(run) {
  const needed = run.acknowledged * (run.size - 1);
  return needed > 0 ? run.counters.gossipReceived / needed - 1 : Number.NaN;
}

export function messagesPerCommit(run) {
  const total = Object.values(run.counters.messagesSent).reduce((sum, value) => sum + value, 0);
  return total / run.acknowledged;
}

/** One cluster size's figures, as text. */
export function formatClusterRun(run) {
  const { size, load, delays, counters, acknowledged } = run;
  const out = [];
  out.push(
    `${size} nodes: ${count(load.offered)} commits offered at ${count(run.rate)}/s for ${run.seconds} s ` +
      `(1 KB values, distinct keys, round-robin over the ${size} nodes, at most ${run.inFlightMax} in flight)`,
    `  acknowledged ${count(acknowledged)}, failed ${count(load.failed)}, skipped at the in-flight bound ${count(load.skipped)}` +
      `; offered schedule took ${(load.elapsedMs / 1000).toFixed(2)} s` +
      (load.firstError ? `; first error: ${load.firstError}` : ''),
    `  PUT latency from its scheduled send time: p50 ${ms(delays.putLatency.p50)} ms, p99 ${ms(delays.putLatency.p99)} ms, max ${ms(delays.putLatency.max)} ms`,
    `  CPU, % of one core over the load: nodes ${run.cpu.nodes.map((percent) => fixed(percent, 0)).join(' + ')}, bench client ${fixed(run.cpu.client, 0)}; stolen by the host: ${run.cpu.steal === undefined ? 'unknown' : `${fixed(run.cpu.steal, 1)}% of the machine`}`,
    `  group commit over the load, per node: ${run.groupCommit.map((g) => `${fixed(g.syncsPerSecond, 0)} syncs/s of ${fixed(g.commitsPerSync, 2)} commits (fdatasync mean ${fixed(g.syncMeanMs, 1)} ms)`).join(', ')}`,
    '',
    formatTable(
      ['replication delay (ms after the origin acknowledged)', 'samples', 'p50', 'p99', 'max', 'missing'],
      [
        delayRow('visible on each other node', delays.toEach, `${count(delays.missingPairs)} pairs`),
        delayRow(
          'visible on every node (max over nodes)',
          delays.toAll,
          `${count(delays.missingCommits)} commits`,
        ),
        delayRow('on its own origin (floor of the method)', delays.onOrigin, '-'),
      ],
    ),
    `  p99 to every node by ${delays.windowMs / 1000}-s window of the load, in ms: ` +
      delays.toAllByWindow.map((window) => ms(window.p99)).join(', '),
    `  ${run.settle.complete ? 'all' : 'NOT all'} acknowledged commits visible on every node ` +
      `${(run.settle.ms / 1000).toFixed(2)} s after the last acknowledgement` +
      (run.feedFailures.length > 0 ? `; change feeds that broke: ${run.feedFailures.join('; ')}` : ''),
    '',
  );
  const window = `${(run.windowMs / 1000).toFixed(1)} s`;
  const rows = [];
  const listed = new Set();
  for (const [layer, types] of layers) {
    for (const type of types) {
      listed.add(type);
      const sent = counters.messagesSent[type] ?? 0;
      rows.push([`${layer}: ${type}`, count(sent), fixed(sent / acknowledged, 3)]);
    }
  }
  for (const [type, sent] of Object.entries(counters.messagesSent)) {
    if (!listed.has(type)) rows.push([`other: ${type}`, count(sent), fixed(sent / acknowledged, 3)]);
  }
  const totalSent = Object.values(counters.messagesSent).reduce((sum, value) => sum + value, 0);
  rows.push(['all messages', count(totalSent), fixed(totalSent / acknowledged, 3)]);
  rows.push([
    `frames sent on peer links (${fixed(totalSent / Math.max(counters.framesSent, 1), 2)} messages per frame)`,
    count(counters.framesSent),
    fixed(counters.framesSent / acknowledged, 3),
  ]);
  rows.push([
    'bytes sent on peer links',
    count(counters.bytesSent),
    fixed(counters.bytesSent / acknowledged, 0),
  ]);
  out.push(
    `Peer messages, all nodes, from the start of the load until every commit was visible (${window}, heartbeats included)`,
    formatTable(['message', 'sent', 'per commit'], rows),
    '',
    `Plumtree: gossip received ${count(counters.gossipReceived)} for ${count(acknowledged)} commits × ${size - 1} other nodes ` +
      `→ redundancy ${fixed(redundancy(run), 3)}; duplicates ${count(counters.duplicatesReceived)}, ` +
      `i_have ids ${count(counters.ihaveReceived)} (already seen ${count(counters.ihaveAlreadySeen)}), ` +
      `grafts ${count(counters.graftsSent)}, prunes ${count(counters.prunesSent)}; ` +
      `anti-entropy pulled ${count(counters.commitsPulled)} commits in ${count(counters.syncBatchesReceived)} batches`,
    run.digests.equal
      ? `Digests: equal on all ${size} nodes (${run.digests.digests[0].slice(0, 16)}…), checked ${(run.digests.ms / 1000).toFixed(2)} s after the settle wait`
      : `Digests: NOT equal after ${(run.digests.ms / 1000).toFixed(1)} s: ${run.digests.digests.map((digest) => digest.slice(0, 12)).join(', ')}`,
  );
  return out.join('\n');
}

export function formatCatchup(catchup) {
  const out = [
    `Catch-up: node A seeded with ${count(catchup.commits)} commits by ${catchup.seed.concurrency} concurrent PUTs ` +
      `(1 KB values) in ${(catchup.seed.elapsedMs / 1000).toFixed(2)} s = ${count((catchup.commits * 1000) / catchup.seed.elapsedMs)} commits/s` +
      (catchup.seed.failed > 0 ? `, ${catchup.seed.failed} failed (first: ${catchup.seed.firstError})` : ''),
    `  fresh node B joined A: answered /health ${(catchup.startMs / 1000).toFixed(2)} s after its spawn; ` +
      (catchup.equal
        ? `digest equal to A's ${(catchup.equalMs / 1000).toFixed(2)} s after the spawn ` +
          `→ ${count(catchupRate(catchup))} commits/s (counted from /health)`
        : `digest NOT equal to A's after ${(catchup.equalMs / 1000).toFixed(1)} s (B has ${count(catchup.reached)} of ${count(catchup.commits)} commits)`),
    `  B: ${count(catchup.counters.commitsPulled)} commits pulled by anti-entropy in ${count(catchup.counters.syncBatchesReceived)} sync batches ` +
      `(${fixed(catchup.counters.commitsPulled / catchup.counters.syncBatchesReceived, 0)} per batch), ` +
      `${count(catchup.counters.gossipReceived)} by gossip; ${count(catchup.counters.bytesReceived)} bytes received`,
  ];
  return out.join('\n');
}

export function catchupRate(catchup) {
  return catchup.equal ? (catchup.commits * 1000) / (catchup.equalMs - catchup.startMs) : Number.NaN;
}

/** The closing table of every run, and the goal line. */
export function formatSummary(runs, catchup) {
  const rows = runs.map((run) => [
    `${run.size} nodes`,
    count(run.acknowledged),
    ms(run.delays.toEach.p50),
    ms(run.delays.toEach.p99),
    ms(run.delays.toEach.max),
    ms(run.delays.toAll.p99),
    count(run.delays.missingCommits),
    fixed(messagesPerCommit(run), 2),
    count(run.counters.bytesSent / run.acknowledged),
    fixed(redundancy(run), 3),
    run.digests.equal ? 'equal' : 'DIFFER',
  ]);
  const out = [
    'Summary',
    formatTable(
      ['cluster', 'commits', 'p50', 'p99', 'max', 'p99', 'missing', 'msgs', 'bytes', 'redundancy', 'digests'],
      rows,
      [
        { title: '', span: 2 },
        { title: 'delay to each node, ms', span: 3 },
        { title: 'all nodes', span: 1 },
        { title: '', span: 1 },
        { title: 'per commit', span: 2 },
        { title: '', span: 2 },
      ],
    ),
  ];
  if (catchup) {
    out.push(
      '',
      formatTable(
        ['catch-up', 'commits', 'seconds', 'commits/s', 'digests'],
        [
          [
            '1 fresh node',
            count(catchup.commits),
            catchup.equal ? fixed((catchup.equalMs - catchup.startMs) / 1000, 2) : '-',
            count(catchupRate(catchup)),
            catchup.equal ? 'equal' : 'DIFFER',
          ],
        ],
      ),
    );
  }
  out.push('', `Goal: p99 under ${goalP99Ms} ms on loopback at ${goalRate} commits/s`);
  for (const run of runs) {
    out.push(
      `  ${run.size} nodes at ${count(run.rate)} commits/s: p99 to each node ${ms(run.delays.toEach.p99)} ms, ` +
        `to every node ${ms(run.delays.toAll.p99)} ms   goal < ${goalP99Ms} ms`,
    );
  }
  return out.join('\n');
}
