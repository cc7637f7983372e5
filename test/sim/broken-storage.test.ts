import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/core/envelope.js';
import { planFor } from '../../src/sim/run.js';
import { Simulation } from '../../src/sim/simulation.js';
import { SimStorage, type SimStorageOptions, type SimVersion } from '../../src/sim/storage.js';

/** Drops the first commit a peer hands it: says nothing, stores nothing. */
class DroppingStorage extends SimStorage {
  private dropped = false;
  override applyRemote(envelope: Envelope): void {
    if (this.dropped) super.applyRemote(envelope);
    else this.dropped = true;
  }
}

/** Stores and acknowledges everything, but reads lose the first commit it applied from a peer. */
class ForgetfulStorage extends SimStorage {
  private forgotten: string | undefined;
  override applyRemote(envelope: Envelope): void {
    super.applyRemote(envelope);
    this.forgotten ??= envelope.id;
  }
  override *allVersions(): Iterable<SimVersion> {
    for (const version of super.allVersions()) if (version.commit !== this.forgotten) yield version;
  }
}

function runWith(seed: number, make: (options: SimStorageOptions) => SimStorage): Error {
  const plan = planFor(seed, { nodes: 4, writeMs: 2_500 });
  // A broken node never converges; give up sooner than the default bound.
  plan.convergeWithinMs = 20_000;
  const simulation = new Simulation(plan, (options, node) =>
    node === 1 ? make(options) : new SimStorage(options),
  );
  try {
    simulation.run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the broken storage went unnoticed');
}

describe('the simulator catches a broken store', () => {
  it('a dropped commit fails the run, naming the seed', () => {
    const error = runWith(3, (options) => new DroppingStorage(options));
    expect(error.message).toContain('--seed 3');
    console.log(error.message.split('\n')[0]);
  });

  it('a commit missing from reads fails the run, naming the seed', () => {
    const error = runWith(5, (options) => new ForgetfulStorage(options));
    expect(error.message).toContain('--seed 5');
    expect(error.message).toMatch(/no convergence|digests differ/);
    console.log(error.message.split('\n')[0]);
  });
});
