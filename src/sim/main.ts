import { parseArgs } from 'node:util';
import type { AggregateFigures, DelayFigures } from './figures.js';
import { runSeeds } from './run.js';

/**
 * `npm run sim -- --seeds N --nodes K [--seed S] [--wan] [--write-ms MS]`: runs seeds 1..N (or only S) of the
 * fault scenario, or the wide-area scenario with --wan, prints each failure with its replay line
 * and the aggregate figures, and exits non-zero if any seed failed.
 */
function main(): number {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      wan: { type: 'boolean', default: false },
      'write-ms': { type: 'string' },
    },
  });
  const wan = values.wan === true;
  const nodes = Number(values.nodes ?? (wan ? 50 : 5));
  // A WAN seed is 50 nodes for half a minute of virtual time: one by default.
  const count = Number(values.seeds ?? (wan ? 1 : 20));
  const seeds =
    values.seed !== undefined ? [Number(values.seed)] : Array.from({ length: count }, (_, i) => i + 1);
  const writeMs = values['write-ms'] === undefined ? undefined : Number(values['write-ms']);
  const bad = (value: number | undefined, min: number) =>
    value !== undefined && (!Number.isSafeInteger(value) || value < min);
  if (bad(nodes, 1) || bad(writeMs, 0) || seeds.length === 0 || seeds.some((seed) => bad(seed, 0))) {
    console.error('usage: npm run sim -- --seeds N --nodes K [--seed S] [--wan] [--write-ms MS]');
    return 2;
  }
  const result = runSeeds(seeds, { nodes, wan, ...(writeMs === undefined ? {} : { writeMs }) });
  for (const failure of result.failures) console.error(`FAIL ${failure.message}\n`);
  if (seeds.length === 1 && result.runs[0]) console.log(JSON.stringify(result.runs[0], null, 2));
  print(result.aggregate, wan);
  const passed = result.runs.length;
  console.log(
    `${passed}/${seeds.length} seeds passed in ${(result.wallMs / 1000).toFixed(1)} s (${((seeds.length * 1000) / result.wallMs).toFixed(1)} seeds/s)`,
  );
  return result.failures.length === 0 ? 0 : 1;
}

function print(figures: AggregateFigures, wan: boolean): void {
  const { convergence } = figures;
  const delay = (name: string, d: DelayFigures) =>
    `${name}: p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms over ${d.samples} deliveries`;
  console.log(`commits acknowledged: ${figures.commits}`);
  console.log(
    `messages per commit: ${figures.messagesPerCommit}, bytes per commit: ${figures.bytesPerCommit}`,
  );
  console.log(
    `  by type: ${Object.entries(figures.byType)
      .map(([type, perCommit]) => `${type} ${perCommit}`)
      .join(', ')}`,
  );
  console.log(`relative message redundancy (gossip): ${figures.redundancy}`);
  console.log(
    `convergence after heal: p50 ${convergence.p50} ms, p99 ${convergence.p99} ms, max ${convergence.max} ms`,
  );
  console.log(delay(`replication delay${wan ? '' : ' (healthy periods)'}`, figures.delay));
  console.log(delay('  commits with every blob inline', figures.delayInline));
  console.log(delay('  commits whose blob each receiver pulls', figures.delayPulled));
  if (wan)
    console.log(`WAN goal p99 < 2000 ms (all commits): ${figures.delay.p99 < 2000 ? 'met' : 'MISSED'}`);
}

process.exitCode = main();
