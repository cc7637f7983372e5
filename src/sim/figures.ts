import { createHash } from 'node:crypto';
import { resolve } from '../store/winner.js';
import type { TrafficFigures } from './network.js';
import type { SimStorage, SimVersion } from './storage.js';

/**
 * The state digest of one node: every version in version-id order (commit id, op index, bucket,
 * key, kind, hlc, effectiveAt, blob, parents, refs, target), then for each key its winner and
 * conflicts by the winner rule at one fixed read point. Independent of the order in which the node
 * applied commits, so equal digests mean equal state (as `src/store/digest.ts` does over SQLite).
 */
export function digestOf(storage: SimStorage, readAt: number): string {
  const hash = createHash('sha256');
  const versions = [...storage.allVersions()].sort((a, b) => compare(a.version, b.version));
  const byKey = new Map<string, SimVersion[]>();
  for (const v of versions) {
    hash.update(
      `${JSON.stringify([v.commit, v.opIndex, v.bucket, v.key, v.kind, v.hlc, v.effectiveAt, v.blob ?? null, v.parents, v.refs ?? null, v.target ?? null])}\n`,
    );
    const slot = `${v.bucket}/${v.key}`;
    const list = byKey.get(slot);
    if (list) list.push(v);
    else byKey.set(slot, [v]);
  }
  for (const slot of [...byKey.keys()].sort(compare)) {
    const { winner, conflicts } = resolve(byKey.get(slot) as SimVersion[], { at: readAt, hlcBefore: '~' });
    hash.update(`${JSON.stringify([slot, winner?.version ?? null, conflicts.map((c) => c.version)])}\n`);
  }
  return hash.digest('hex');
}

/** Replication delay samples of a run, all and split by whether receivers had to pull a blob. */
export interface DelaySamples {
  all: number[];
  inline: number[];
  pulled: number[];
}

export interface DelayFigures {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentiles(values: number[]): DelayFigures {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted.length === 0
      ? 0
      : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number);
  return { samples: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(at(1)) };
}

/** What one seed measured. Virtual milliseconds throughout, so the same seed gives the same figures. */
export interface RunFigures {
  seed: number;
  nodes: number;
  commits: number;
  virtualMs: number;
  /** From the heal (writes stop, partitions end, crashed nodes restart) until every digest is equal. */
  convergenceMs: number;
  messages: number;
  bytes: number;
  messagesPerCommit: number;
  bytesPerCommit: number;
  byType: Record<string, { messages: number; bytes: number; perCommit: number }>;
  /** Plumtree's relative message redundancy: gossip received / (commits × (nodes − 1)) − 1. */
  redundancy: number;
  /** From acknowledgement at the origin to durable application on each other node (healthy periods). */
  delay: DelayFigures;
  /** The same, split: commits whose blobs all ride inline, and commits each receiver must pull a blob for. */
  delayInline: DelayFigures;
  delayPulled: DelayFigures;
  crashes: number;
  partitions: number;
  digest: string;
  events: number;
}

export function trafficFigures(
  traffic: TrafficFigures,
  commits: number,
  nodes: number,
): Pick<RunFigures, 'messages' | 'bytes' | 'messagesPerCommit' | 'bytesPerCommit' | 'byType' | 'redundancy'> {
  let messages = 0;
  let bytes = 0;
  const byType: RunFigures['byType'] = {};
  for (const type of Object.keys(traffic.sent).sort()) {
    const sent = traffic.sent[type] as { messages: number; bytes: number };
    messages += sent.messages;
    bytes += sent.bytes;
    byType[type] = { ...sent, perCommit: perCommit(sent.messages, commits) };
  }
  const gossip = traffic.delivered.gossip ?? 0;
  return {
    messages,
    bytes,
    messagesPerCommit: perCommit(messages, commits),
    bytesPerCommit: perCommit(bytes, commits),
    byType,
    redundancy: commits === 0 || nodes < 2 ? 0 : round(gossip / (commits * (nodes - 1)) - 1, 1000),
  };
}

/** Figures over many seeds: sums where they add, distributions where they do not. */
export interface AggregateFigures {
  seeds: number;
  commits: number;
  messagesPerCommit: number;
  bytesPerCommit: number;
  redundancy: number;
  convergence: DelayFigures;
  delay: DelayFigures;
  delayInline: DelayFigures;
  delayPulled: DelayFigures;
  byType: Record<string, number>;
}

export function aggregate(runs: RunFigures[], delays: DelaySamples): AggregateFigures {
  const commits = runs.reduce((sum, run) => sum + run.commits, 0);
  const messages = runs.reduce((sum, run) => sum + run.messages, 0);
  const bytes = runs.reduce((sum, run) => sum + run.bytes, 0);
  const byType: Record<string, number> = {};
  for (const run of runs)
    for (const [type, sent] of Object.entries(run.byType)) byType[type] = (byType[type] ?? 0) + sent.messages;
  for (const type of Object.keys(byType)) byType[type] = perCommit(byType[type] as number, commits);
  const weighted = runs.reduce((sum, run) => sum + run.redundancy * run.commits, 0);
  return {
    seeds: runs.length,
    commits,
    messagesPerCommit: perCommit(messages, commits),
    bytesPerCommit: perCommit(bytes, commits),
    redundancy: commits === 0 ? 0 : round(weighted / commits, 1000),
    convergence: percentiles(runs.map((run) => run.convergenceMs)),
    delay: percentiles(delays.all),
    delayInline: percentiles(delays.inline),
    delayPulled: percentiles(delays.pulled),
    byType,
  };
}

function perCommit(count: number, commits: number): number {
  return commits === 0 ? 0 : round(count / commits);
}

function round(value: number, scale = 10): number {
  return Math.round(value * scale) / scale;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
