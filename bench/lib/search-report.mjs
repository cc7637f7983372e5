import { queryClasses } from './search-queries.mjs';
import { fixed, formatTable, rate, ratio } from './table.mjs';

/** The issue's goal: p99 of a query at 1M versions, time-range filter included. */
export const goalP99Ms = 50;

/** Nearest-rank percentile of unsorted values (undefined for none). */
export function percentile(values, fraction) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

function summary(values) {
  return {
    p50: percentile(values, 0.5),
    p99: percentile(values, 0.99),
    max: values.length === 0 ? undefined : Math.max(...values),
  };
}

export function bytes(value) {
  if (value === undefined) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

const count = (value) => value.toLocaleString('en-US');

/** Rows of the latency table: one per class, then all queries. */
function latencyRows(queries, strata, postgres) {
  const groups = [
    ...queryClasses.map(({ name }) => ({
      name,
      indexes: queries.flatMap((query, index) => (query.className === name ? [index] : [])),
    })),
    { name: 'all queries', indexes: queries.map((_, index) => index) },
  ];
  return groups.map(({ name, indexes }) => {
    const s = summary(indexes.map((index) => strata[index].ms));
    const p = postgres ? summary(indexes.map((index) => postgres[index].ms)) : {};
    const hits =
      indexes.reduce((total, index) => total + strata[index].hits, 0) / Math.max(1, indexes.length);
    const same = postgres
      ? `${indexes.filter((index) => postgres[index].rows === strata[index].hits).length}/${indexes.length}`
      : '-';
    const timedOut = postgres ? indexes.filter((index) => postgres[index].timedOut).length : 0;
    return {
      name,
      p50: s.p50,
      strataP99: s.p99,
      cells: [
        name,
        indexes.length,
        fixed(hits, 1),
        fixed(s.p50, 2),
        fixed(s.p99, 2),
        fixed(s.max, 2),
        fixed(p.p50, 2),
        fixed(p.p99, 2),
        `${fixed(p.max, 2)}${timedOut > 0 ? ` (${timedOut} timed out)` : ''}`,
        ratio(p.p99, s.p99),
        same,
      ],
    };
  });
}

export function formatSearchReport(run) {
  const { setup, corpus, build, merge, strataBytes, tables, windows, queries, strata, postgres } = run;
  const out = [];
  out.push(
    `Strata search benchmark: node ${setup.node}, ${setup.cpus}, ${setup.os}`,
    `PostgreSQL: ${postgres ? `${postgres.version} (settings: ${postgres.settingsText})` : `skipped (${run.postgresSkipped})`}`,
    `temp dir: ${setup.tempDir}; seed ${setup.seed}; whole run ${fixed(setup.runSeconds / 60, 1)} min; ` +
      `1-min load average ${fixed(setup.loadBefore, 2)} before the run (other work on the machine), ${fixed(setup.loadAfter, 2)} at its end (this run adds ~1)`,
    '',
    `Corpus: ${count(corpus.count)} versions of ${count(corpus.keys)} keys (text ${count(corpus.byKind.text)}, ` +
      `JSON ${count(corpus.byKind.json)}, JavaScript ${count(corpus.byKind.javascript)}), ` +
      `${bytes(corpus.textBytes)} of text, ${Math.round(corpus.textBytes / corpus.count)} B per version on average; ` +
      `${count(corpus.currentCount)} current versions; generated in ${fixed(corpus.seconds, 1)} s`,
    '',
    `Build, Strata (Store.write in this process: ${corpus.commitOps} puts per commit, ` +
      `${build.inFlight} commits in flight, group commit, fsync before each write resolves; indexing runs inside each commit):`,
    `  ${count(corpus.count)} versions in ${fixed(build.seconds, 1)} s = ${rate(corpus.count / build.seconds)} versions/s ` +
      `(${count(build.commits)} commits; last tenth of the build: ${rate(build.lastTenthRate)} versions/s)`,
    `  database ${bytes(strataBytes.total)} on disk; ${[...tables]
      .sort((a, b) => b[1] - a[1])
      .map(([name, size]) => `${name} ${bytes(size)}`)
      .join(', ')}`,
    `  then the idle merge of the index's segments (a node starts it after 1 s without writes; here run to the end at once): ` +
      `${count(merge.steps)} steps in ${fixed(merge.seconds, 1)} s on the database worker; segments ${Object.keys(
        merge.segmentsBefore,
      )
        .map((table) => `${table} ${merge.segmentsBefore[table]} → ${merge.segmentsAfter[table]}`)
        .join(', ')}`,
  );
  if (postgres) {
    const b = postgres.load.bytes;
    out.push(
      '',
      `Build, PostgreSQL (one COPY of the same rows, tsvectors as generated columns computed on load; then GIN on tsv and on code_tsv, btree on tx_time, VACUUM ANALYZE):`,
      `  COPY ${fixed(postgres.load.loadSeconds, 1)} s = ${rate(corpus.count / postgres.load.loadSeconds)} rows/s; ` +
        `indexes ${fixed(postgres.load.indexSeconds, 1)} s; together ${rate(corpus.count / (postgres.load.loadSeconds + postgres.load.indexSeconds))} versions/s ` +
        `(rows prepared beforehand in ${fixed(postgres.rowsSeconds, 1)} s, not counted)`,
      `  database ${bytes(b.database)}; table with TOAST ${bytes(b.table)}, GIN tsv ${bytes(b.textIndex)}, GIN code_tsv ${bytes(b.codeIndex)}, btree tx_time ${bytes(b.timeIndex)}`,
      `  Strata/PostgreSQL build rate: ${ratio(postgres.load.loadSeconds + postgres.load.indexSeconds, build.seconds)}`,
    );
  }
  const windowShares = windows.map((window) => window.versions / corpus.count);
  out.push(
    '',
    `Queries: ${count(queries.length)}, ${setup.warmupQueries} warm-up queries first (not counted), limit ${setup.hitsPerQuery}, one at a time.`,
    '  Strata: in-process time of store.searches.search(store.snapshot(), request, all buckets): SQL, snippets and hit objects.',
    postgres
      ? '  PostgreSQL: server-side planning + execution time from EXPLAIN (ANALYZE, TIMING OFF) of an equivalent SELECT (ts_rank order, ts_headline of the 20 hits).'
      : '  PostgreSQL: skipped.',
    `  Time ranges: ${windows.length} windows, each ${fixed(100 * Math.min(...windowShares), 1)}–${fixed(100 * Math.max(...windowShares), 1)}% of the versions, over 10–90% of the build.`,
    '  "same hits": queries for which both returned the same number of hits (≤ 20): a check that the queries are equivalent.',
    '',
  );
  const rows = latencyRows(queries, strata, postgres?.results);
  out.push(
    formatTable(
      [
        'class',
        'n',
        'hits',
        'p50 ms',
        'p99 ms',
        'max ms',
        'p50 ms',
        'p99 ms',
        'max ms',
        'PG/Strata p99',
        'same hits',
      ],
      rows.map((row) => row.cells),
      [
        { title: '', span: 3 },
        { title: 'Strata (in-process)', span: 3 },
        { title: 'PostgreSQL (server-side)', span: 3 },
        { title: '', span: 2 },
      ],
    ),
  );
  const p99s = (results) => {
    const byClass = latencyRows(queries, results);
    const all = byClass[byClass.length - 1];
    return (
      `all queries p50 ${fixed(all.p50, 2)}, p99 ${fixed(all.strataP99, 2)} ms; ` +
      byClass
        .slice(0, -1)
        .map((row) => `${row.name} ${fixed(row.strataP99, 2)}`)
        .join(', ')
    );
  };
  out.push(
    '',
    'Strata before the idle merge, the same queries (p99 by class):',
    `  right after the build: ${p99s(merge.afterBuild)}`,
    `  once more: ${p99s(merge.unmerged)}`,
  );
  const errors = strata.filter((result) => result.error);
  if (errors.length > 0) out.push('', `Strata errors: ${errors.length}, first: ${errors[0].error}`);
  const overall = rows[rows.length - 1];
  const worst = rows.slice(0, -1).reduce((a, b) => (b.strataP99 > a.strataP99 ? b : a));
  const ranges = rows.filter((row) => row.name.startsWith('time range'));
  const verdict = (value) => (value <= goalP99Ms ? 'met' : 'not met');
  out.push(
    '',
    `Goals (issue) at ${count(corpus.count)} versions, on the merged index${corpus.count < 1_000_000 ? ' (the goal is stated for 1,000,000)' : ''}:`,
    `  p99 ≤ ${goalP99Ms} ms, all queries: ${fixed(overall.strataP99, 2)} ms — ${verdict(overall.strataP99)}`,
    ...ranges.map(
      (row) =>
        `  p99 ≤ ${goalP99Ms} ms, ${row.name}: ${fixed(row.strataP99, 2)} ms — ${verdict(row.strataP99)}`,
    ),
    `  slowest class: ${worst.name}, p99 ${fixed(worst.strataP99, 2)} ms`,
  );
  if (postgres) {
    const pgP99 = percentile(
      postgres.results.map((result) => result.ms),
      0.99,
    );
    out.push(
      `  at least on par with PostgreSQL (PG/Strata p99 ≥ 1): ${ratio(pgP99, overall.strataP99)} — ${pgP99 >= overall.strataP99 ? 'met' : 'not met'}`,
    );
  }
  return out.join('\n');
}
