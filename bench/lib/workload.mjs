import { closedLoop, phase } from './load.mjs';
import { valueBytes, valueFor } from './value.mjs';

/** Keys remembered for the GET phases: enough to spread reads over the table, bounded in memory. */
const readKeysMax = 10_000;

/**
 * The workload: durable PUTs of fresh 1 KB values at each PUT concurrency, then GETs of
 * keys those PUTs wrote, against each target.
 *
 * A target is `{ name, serverPid, makeClient, groupCommit? }`: `makeClient(concurrency)` returns
 * `{ put(key, value), get(key, expectedBytes), close() }`; `groupCommit`, when given, is
 * `{ totals(), window(before, after, elapsedMs) }`, sampled around each measured PUT phase;
 * the server's CPU use is measured in each phase.
 *
 * The targets take turns phase by phase (Strata c=1, etcd c=1, Strata c=16, …), only one loaded at
 * a time: the two figures on a row are measured seconds apart, so a shared machine whose disk or
 * CPU gets busier during the run skews both alike rather than one system's whole column.
 */
export async function runWorkloads({ targets, putConcurrencies, getConcurrencies, timing, log }) {
  const results = new Map(targets.map((target) => [target.name, { puts: new Map(), gets: new Map() }]));
  const readKeys = new Map(targets.map((target) => [target.name, []]));
  const warmed = new Set();

  for (const concurrency of putConcurrencies) {
    for (const target of targets) {
      // Right before the server's first phase, so that another server's warm-up (and the writes
      // it leaves behind on the shared disk) does not end just before it.
      if (!warmed.has(target)) {
        warmed.add(target);
        log(
          `${target.name}: ${timing.serverWarmupMs / 1000} s of PUTs at ${warmupConcurrency} clients, unmeasured…`,
        );
        await warmUpServer(target.makeClient, timing.serverWarmupMs);
      }
      log(`${target.name} PUT, ${concurrency} client(s)…`);
      const result = await putPhase(target, concurrency, timing, readKeys.get(target.name));
      results.get(target.name).puts.set(concurrency, result);
    }
  }
  for (const concurrency of getConcurrencies) {
    for (const target of targets) {
      log(`${target.name} GET, ${concurrency} clients…`);
      const result = await getPhase(target, concurrency, timing, readKeys.get(target.name));
      results.get(target.name).gets.set(concurrency, result);
    }
  }
  return results;
}

/** Clients of a server's first, unmeasured load. */
const warmupConcurrency = 16;

/**
 * Unmeasured PUTs before a server's first phase, once per server: a Node server runs its first
 * seconds in V8's interpreter and baseline code while the optimizing compiler catches up (in one
 * run, Strata's 1-client PUT rate was 1,216 req/s after 1 s of warm-up and 1,671 after 10 s).
 */
export async function warmUpServer(makeClient, durationMs) {
  if (durationMs <= 0) return;
  const client = makeClient(warmupConcurrency);
  try {
    await closedLoop({
      concurrency: warmupConcurrency,
      durationMs,
      request: (index, sequence) =>
        client.put(`server-warmup-${index}-${sequence}`, valueFor(index, sequence)),
    });
  } finally {
    await client.close();
  }
}

async function putPhase(target, concurrency, timing, readKeys) {
  const { groupCommit } = target;
  const client = target.makeClient(concurrency);
  try {
    return await phase({
      concurrency,
      ...timing,
      serverPid: target.serverPid,
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
  } finally {
    await client.close();
  }
}

async function getPhase(target, concurrency, timing, readKeys) {
  if (readKeys.length === 0) throw new Error(`${target.name}: no PUT succeeded, nothing to GET`);
  const randomKey = () => readKeys[Math.floor(Math.random() * readKeys.length)];
  const client = target.makeClient(concurrency);
  try {
    return await phase({
      concurrency,
      ...timing,
      serverPid: target.serverPid,
      request: () => client.get(randomKey(), valueBytes),
    });
  } finally {
    await client.close();
  }
}
