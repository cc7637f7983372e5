import { describe, expect, it } from 'vitest';
import { runSeeds } from '../../src/sim/run.js';

/**
 * The fault scenario over 300 seeds of 3–6 nodes (DESIGN §5 "Simulator"): loss, duplication,
 * reordering, partitions, slow links, crashes, then a heal. Each seed must converge to one digest
 * with every acknowledged commit everywhere, applied once per node, and then fall quiet. A failure
 * prints its seed and the replay line (`npm run sim -- --seed N --nodes K --write-ms 2500`).
 */
const seeds = 300;
const chunk = 30;
/** Short write periods keep 300 seeds to seconds of CPU; the CLI defaults to longer runs. */
const writeMs = 2_500;
const nodesFor = (seed: number) => 3 + (seed % 4);

describe('simulated cluster under faults', () => {
  const starts = Array.from({ length: seeds / chunk }, (_, index) => index * chunk + 1);
  it.each(starts)('seeds %i… converge with nothing lost', (first) => {
    const result = runSeeds(
      Array.from({ length: chunk }, (_, index) => first + index),
      (seed) => ({ nodes: nodesFor(seed), writeMs }),
    );
    const { aggregate } = result;
    console.log(
      `seeds ${first}–${first + chunk - 1}: ${aggregate.commits} commits, ` +
        `${aggregate.messagesPerCommit} messages/commit, redundancy ${aggregate.redundancy}, ` +
        `convergence p50 ${aggregate.convergence.p50} ms max ${aggregate.convergence.max} ms, ` +
        `${(result.wallMs / chunk).toFixed(0)} ms/seed`,
    );
    expect(result.failures.map((failure) => failure.message)).toEqual([]);
  });
});
