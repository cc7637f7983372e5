import { phase } from './load.mjs';
import { valueBytes, valueFor } from './value.mjs';

/** Keys remembered for the GET phases: enough to spread reads over the table, bounded in memory. */
const readKeysMax = 10_000;

/**
 * The workload against one system: durable PUTs of fresh 1 KB values at each PUT
 * concurrency, then GETs of keys those PUTs wrote. `makeClient(concurrency)` returns
 * `{ put(key, value), get(key, expectedBytes), close() }`; `groupCommit`, when given, is
 * `{ totals(), window(before, after, elapsedMs) }` and is sampled around each measured PUT phase.
 * `serverPid` is the server process, whose CPU use is measured in each phase.
 */
export async function runWorkload({
  name,
  serverPid,
  makeClient,
  groupCommit,
  putConcurrencies,
  getConcurrencies,
  timing,
  log,
}) {
  const puts = new Map();
  const gets = new Map();
  const readKeys = [];

  for (const concurrency of putConcurrencies) {
    log(`${name} PUT, ${concurrency} client(s)…`);
    const client = makeClient(concurrency);
    try {
      const result = await phase({
        concurrency,
        ...timing,
        serverPid,
        warmupRequest: (index, sequence) =>
          client.put(`warmup-c${concurrency}-${index}-${sequence}`, valueFor(index, sequence)),
        request: async (index, sequence) => {
          const key = `put-c${concurrency}-${index}-${sequence}`;
          await client.put(key, valueFor(index, sequence));
          if (readKeys.length < readKeysMax) readKeys.push(key);
        },
        before: groupCommit && (() => groupCommit.totals()),
        after:
          groupCommit &&
          (async (before, measured) => ({
            groupCommit: groupCommit.window(before, await groupCommit.totals(), measured.elapsedMs),
          })),
      });
      puts.set(concurrency, result);
    } finally {
      await client.close();
    }
  }

  if (readKeys.length === 0) throw new Error(`${name}: no PUT succeeded, nothing to GET`);
  const randomKey = () => readKeys[Math.floor(Math.random() * readKeys.length)];
  for (const concurrency of getConcurrencies) {
    log(`${name} GET, ${concurrency} clients…`);
    const client = makeClient(concurrency);
    try {
      gets.set(
        concurrency,
        await phase({
          concurrency,
          ...timing,
          serverPid,
          request: () => client.get(randomKey(), valueBytes),
        }),
      );
    } finally {
      await client.close();
    }
  }
  return { puts, gets };
}
