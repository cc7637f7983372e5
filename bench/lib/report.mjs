import { fixed, formatTable, rate, ratio } from './table.mjs';

/** The issue's goals, printed next to the measured ratios (a benchmark reports; it does not fail). */
const goalEtcdAt64 = 1;
const goalFdatasyncAt1 = 0.8;
/**
 * Append and overwrite differ by up to about 2× on a quiet ext4 disk (the append also commits the
 * new size); beyond 3× between any two samples the disk's speed changed during the run.
 */
const driftWarningFactor = 3;

/** The figures of one run, as text. `etcd` is undefined when etcd was skipped. */
export function formatReport({ setup, fdatasync, strata, etcd, etcdSkipped }) {
  const out = [];
  out.push(
    `Strata benchmark: node ${setup.node}, ${setup.cpus}, ${setup.os}`,
    `etcd: ${etcd ? setup.etcdVersion : `skipped (${etcdSkipped})`}`,
    `temp dir: ${setup.tempDir} (Strata data, etcd data and the fdatasync file share this file system)`,
    `phases: ${setup.seconds} s measured after ${setup.warmupSeconds} s warm-up, each server first loaded ${setup.serverWarmupSeconds} s unmeasured; closed-loop clients, one keep-alive connection each; 1 KB values`,
    '',
    'Durable PUT (Strata: 201 after fsync; etcd: /v3/kv/put, committed to its fsynced WAL)',
  );
  const putRows = setup.putConcurrencies.map((concurrency) => {
    const s = strata.puts.get(concurrency);
    const e = etcd?.puts.get(concurrency);
    const g = s.groupCommit;
    return [
      ...sideBySide(concurrency, s, e),
      fixed(g?.commitsPerSync, 2),
      rate(g?.syncsPerSecond),
      fixed(g?.syncMeanMs, 2),
    ];
  });
  out.push(
    formatTable(
      [
        'clients',
        'req/s',
        'p50 ms',
        'p99 ms',
        'req/s',
        'p50 ms',
        'p99 ms',
        'Strata/etcd',
        'commits/fsync',
        'fsyncs/s',
        'fsync ms',
      ],
      putRows,
      [
        { title: '', span: 1 },
        { title: 'Strata PUT', span: 3 },
        { title: 'etcd put', span: 3 },
        { title: '', span: 1 },
        { title: 'Strata group commit (/metrics)', span: 3 },
      ],
    ),
    '',
    'GET of keys written above (Strata: GET /v1/buckets/…/keys/…; etcd: /v3/kv/range, linearizable)',
  );
  const getRows = setup.getConcurrencies.map((concurrency) => {
    const s = strata.gets.get(concurrency);
    const e = etcd?.gets.get(concurrency);
    return sideBySide(concurrency, s, e);
  });
  out.push(
    formatTable(
      ['clients', 'req/s', 'p50 ms', 'p99 ms', 'req/s', 'p50 ms', 'p99 ms', 'Strata/etcd'],
      getRows,
      [
        { title: '', span: 1 },
        { title: 'Strata GET', span: 3 },
        { title: 'etcd range', span: 3 },
      ],
    ),
    '',
    'CPU use during each measured phase, % of one core (a load generator near 100% caps the figures)',
    formatTable(
      ['phase', 'server', 'bench client', 'server', 'bench client'],
      [
        ...setup.putConcurrencies.map((concurrency) => ['PUT', concurrency, strata.puts, etcd?.puts]),
        ...setup.getConcurrencies.map((concurrency) => ['GET', concurrency, strata.gets, etcd?.gets]),
      ].map(([kind, concurrency, strataResults, etcdResults]) => {
        const s = strataResults.get(concurrency);
        const e = etcdResults?.get(concurrency);
        return [
          `${kind} c=${concurrency}`,
          fixed(s.serverCpuPercent, 0),
          fixed(s.clientCpuPercent, 0),
          fixed(e?.serverCpuPercent, 0),
          fixed(e?.clientCpuPercent, 0),
        ];
      }),
      [
        { title: '', span: 1 },
        { title: 'Strata', span: 2 },
        { title: 'etcd', span: 2 },
      ],
    ),
    '',
    'Disk: write 1 KB + fdatasync, one writer, serially (the physical limit of serial durable commits)',
    formatTable(
      ['sample', 'pattern', 'syncs/s', 'ms each'],
      fdatasync.runs.map((run) => [
        run.when === 'before' ? 'before the PUTs' : 'after the run',
        run.pattern,
        rate(run.perSecond),
        fixed(run.meanMs, 3),
      ]),
    ),
  );
  const rates = fdatasync.runs.map((run) => run.perSecond);
  if (Math.max(...rates) > driftWarningFactor * Math.min(...rates)) {
    out.push(
      `  warning: the samples differ by more than ${driftWarningFactor}×: the disk is shared or throttled, and the`,
      '  ratios below are only as good as the slowest moment of the run (compare the fsync ms column above).',
    );
  }
  const best = fdatasync.best;
  const strataAt1 = strata.puts.get(1)?.perSecond;
  const strataAt64 = strata.puts.get(64)?.perSecond;
  const ratios = [
    [
      `Strata PUT c=1 ÷ fdatasync (best sample: ${best.pattern}, ${best.when})`,
      ratio(strataAt1, best.perSecond),
      goalFdatasyncAt1,
    ],
    ['Strata PUT c=64 ÷ etcd put c=64', ratio(strataAt64, etcd?.puts.get(64)?.perSecond), goalEtcdAt64],
  ];
  const labelWidth = Math.max(...ratios.map(([label]) => label.length));
  out.push('', 'Ratios (goals from the issue)');
  for (const [label, value, goal] of ratios) {
    out.push(`  ${label.padEnd(labelWidth)}  ${value.padStart(6)}   goal ≥ ${goal}×`);
  }
  const failures = [
    ...failureLines('Strata PUT', strata.puts),
    ...failureLines('Strata GET', strata.gets),
    ...(etcd ? [...failureLines('etcd put', etcd.puts), ...failureLines('etcd range', etcd.gets)] : []),
  ];
  if (failures.length > 0) out.push('', 'Failed requests (left out of the figures above):', ...failures);
  return out.join('\n');
}

function failureLines(label, results) {
  return [...results]
    .filter(([, result]) => result.errors > 0)
    .map(
      ([concurrency, result]) => `  ${label} c=${concurrency}: ${result.errors}, first: ${result.firstError}`,
    );
}

/** One row's common cells: the concurrency, Strata's rate and latencies, etcd's, and their ratio. */
function sideBySide(concurrency, strata, etcd) {
  return [
    concurrency,
    rate(strata.perSecond),
    fixed(strata.p50Ms, 2),
    fixed(strata.p99Ms, 2),
    rate(etcd?.perSecond),
    fixed(etcd?.p50Ms, 2),
    fixed(etcd?.p99Ms, 2),
    ratio(strata.perSecond, etcd?.perSecond),
  ];
}
