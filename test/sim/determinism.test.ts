import { describe, expect, it } from 'vitest';
import { runSeed } from '../../src/sim/run.js';

/** What a seed produced: its figures (digest included), or the failure it reported. */
function outcome(seed: number, nodes: number): unknown {
  try {
    return runSeed(seed, { nodes, writeMs: 2_500 });
  } catch (error) {
    return { failure: (error as Error).message };
  }
}

describe('simulator determinism', () => {
  it.each([
    [11, 5],
    [42, 6],
  ])('seed %i with %i nodes gives the same run twice', (seed, nodes) => {
    const first = outcome(seed, nodes);
    const second = outcome(seed, nodes);
    expect(second).toEqual(first);
  });

  it('different seeds give different runs', () => {
    expect(outcome(1, 4)).not.toEqual(outcome(2, 4));
  });
});
