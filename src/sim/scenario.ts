import type { ClusterTiming } from '../cluster/protocol.js';
import type { NetworkConfig } from './network.js';
import type { Prng } from './prng.js';
import { defaultWorkload, type WorkloadShape } from './workload.js';

export type Fault =
  | { kind: 'partition'; at: number; durationMs: number; groups: number[][] }
  | { kind: 'crash'; at: number; node: number; downMs: number }
  | { kind: 'slow'; at: number; a: number; b: number; bytesPerMs: number };

/** Everything a run does, drawn from its seed before it starts. Virtual ms from the start of the run. */
export interface Plan {
  seed: number;
  nodes: number;
  /** `--wan` or the fault scenario, for the replay hint. */
  wan: boolean;
  network: NetworkConfig;
  workload: WorkloadShape;
  /** Each node's clock is off by up to this much either way. */
  clockSkewMs: number;
  /** When node i joins (node 0 starts alone at 0). */
  joinAt: number[];
  writesFrom: number;
  /** Length of the write period (healAt − writesFrom), as given on the command line. */
  writeMs: number;
  /** Writes stop, partitions and slow links end, loss stops and crashed nodes restart. */
  healAt: number;
  /** Mean gap between writes, cluster-wide. */
  writeGapMs: number;
  /** Share of writes that are a burst: the same key written on several nodes at once (conflicts). */
  burstShare: number;
  faults: Fault[];
  fsyncMs: [number, number];
  /** After the heal, the run fails if the nodes have not converged by then. */
  convergeWithinMs: number;
  timing: Partial<ClusterTiming>;
}

export interface SmallPlanOptions {
  nodes: number;
  /** Length of the write period, virtual ms. */
  writeMs: number;
}

/**
 * The fault scenario: nodes join one by one, then writes at random nodes while the network loses,
 * duplicates and reorders messages, partitions come and go, links slow down and nodes crash; then
 * everything heals. Protocol timings are the defaults (defaultTiming) unchanged.
 */
export function faultPlan(seed: number, prng: Prng, options: SmallPlanOptions): Plan {
  const { nodes } = options;
  const joinAt = [0];
  for (let node = 1; node < nodes; node += 1) joinAt.push((joinAt[node - 1] as number) + prng.int(30, 400));
  const writesFrom = (joinAt[nodes - 1] as number) + prng.int(0, 500);
  const healAt = writesFrom + options.writeMs;
  const faults: Fault[] = [];
  const faultCount = prng.int(0, 4);
  for (let count = 0; count < faultCount && nodes > 1; count += 1) {
    const at = prng.between(writesFrom, healAt);
    const kind = prng.pick(['partition', 'partition', 'crash', 'crash', 'slow'] as const);
    if (kind === 'partition') {
      const shuffled = prng.sample(
        Array.from({ length: nodes }, (_, node) => node),
        nodes,
      );
      const cut = prng.int(1, nodes - 1);
      faults.push({
        kind,
        at,
        durationMs: prng.between(300, 5_000),
        groups: [shuffled.slice(0, cut), shuffled.slice(cut)],
      });
    } else if (kind === 'crash') {
      // Some crashes last past the heal: the node then restarts with the heal.
      faults.push({ kind, at, node: prng.int(0, nodes - 1), downMs: prng.between(50, 6_000) });
    } else {
      const [a, b] = prng.sample(
        Array.from({ length: nodes }, (_, node) => node),
        2,
      ) as [number, number];
      faults.push({ kind, at, a, b, bytesPerMs: prng.between(2, 50) });
    }
  }
  return {
    seed,
    nodes,
    wan: false,
    network: {
      latencyMs: [1, prng.pick([5, 20, 80])],
      jitterMs: prng.pick([0, 5, 30]),
      lossRate: prng.pick([0, 0, 0.01, 0.05, 0.1]),
      duplicateRate: prng.pick([0, 0.01, 0.05]),
      bytesPerMs: 10_000,
      pullTimeoutMs: 5_000,
    },
    workload: { ...defaultWorkload, keysPerBucket: prng.int(1, 4) },
    clockSkewMs: prng.pick([5, 50, 300]),
    joinAt,
    writesFrom,
    writeMs: options.writeMs,
    healAt,
    writeGapMs: prng.pick([50, 100, 300]),
    burstShare: 0.2,
    faults,
    fsyncMs: [1, 5],
    convergeWithinMs: 120_000,
    // Timings stay the defaults. Some seeds shrink the sync batch bounds (1000 commits, 1 MiB by
    // default) so that a catch-up takes several batches in a short run and the `more` path is exercised.
    timing: prng.chance(0.3)
      ? { syncBatchCommitsMax: prng.int(1, 8), syncBatchBytesMax: prng.pick([600, 4096, 1024 * 1024]) }
      : {},
  };
}

/**
 * The wide-area scenario: 50 nodes, 50–200 ms one-way latency per pair, 1% loss, no partitions or
 * crashes, steady writes. Measures replication delay (the goal: p99 under 2 s).
 */
export function wanPlan(seed: number, prng: Prng, options: { nodes: number; writeMs: number }): Plan {
  const { nodes } = options;
  const joinAt = Array.from({ length: nodes }, (_, node) => node * 100 + (node > 0 ? prng.int(0, 50) : 0));
  // Writes start once the overlay has settled: every node joined and heard the member table.
  const writesFrom = (joinAt[nodes - 1] as number) + 5_000;
  return {
    seed,
    nodes,
    wan: true,
    network: {
      latencyMs: [50, 200],
      jitterMs: 10,
      lossRate: 0.01,
      duplicateRate: 0,
      bytesPerMs: 12_500,
      pullTimeoutMs: 5_000,
    },
    workload: { ...defaultWorkload, keysPerBucket: 50, largeBlobShare: 0.1 },
    clockSkewMs: 50,
    joinAt,
    writesFrom,
    writeMs: options.writeMs,
    healAt: writesFrom + options.writeMs,
    writeGapMs: 100,
    burstShare: 0,
    faults: [],
    fsyncMs: [1, 5],
    convergeWithinMs: 60_000,
    timing: {},
  };
}
