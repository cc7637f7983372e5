import { type AggregateFigures, aggregate, type DelaySamples, type RunFigures } from './figures.js';
import { Prng } from './prng.js';
import { faultPlan, type Plan, wanPlan } from './scenario.js';
import { type RunResult, Simulation, SimulationFailure, type StorageFactory } from './simulation.js';

export interface SeedOptions {
  nodes: number;
  /** 50 nodes over a wide-area network instead of the fault scenario. */
  wan?: boolean;
  /** Length of the write period, virtual ms. */
  writeMs?: number;
  storage?: StorageFactory;
}

/** The fault scenario's write period by default: long enough for faults to overlap, short enough for hundreds of seeds. */
export const defaultWriteMs = 8_000;
export const defaultWanWriteMs = 20_000;

export function planFor(seed: number, options: SeedOptions): Plan {
  // The plan draws from its own stream, apart from the run's: Prng.seeded(seed) feeds the run.
  const prng = Prng.seeded(seed ^ 0x5eed).fork();
  return options.wan
    ? wanPlan(seed, prng, { nodes: options.nodes, writeMs: options.writeMs ?? defaultWanWriteMs })
    : faultPlan(seed, prng, { nodes: options.nodes, writeMs: options.writeMs ?? defaultWriteMs });
}

export function runSeed(seed: number, options: SeedOptions): RunResult {
  return new Simulation(planFor(seed, options), options.storage).run();
}

export interface SeedsResult {
  runs: RunFigures[];
  failures: SimulationFailure[];
  aggregate: AggregateFigures;
  wallMs: number;
}

/** Runs every seed, collecting failures instead of stopping at the first. */
export function runSeeds(
  seeds: number[],
  options: SeedOptions | ((seed: number) => SeedOptions),
): SeedsResult {
  const started = performance.now();
  const runs: RunFigures[] = [];
  const failures: SimulationFailure[] = [];
  const delays: DelaySamples = { all: [], inline: [], pulled: [] };
  for (const seed of seeds) {
    try {
      const result = runSeed(seed, typeof options === 'function' ? options(seed) : options);
      runs.push(result.figures);
      for (const kind of ['all', 'inline', 'pulled'] as const)
        for (const ms of result.delays[kind]) delays[kind].push(ms);
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
      failures.push(error);
    }
  }
  return { runs, failures, aggregate: aggregate(runs, delays), wallMs: performance.now() - started };
}
