/** Nearest-rank percentile of an ascending array; NaN when there are no samples. */
export function percentile(sorted, fraction) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Count, p50, p99 and max of a list of milliseconds. */
export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1],
  };
}

/**
 * Replication delays of one run from the acknowledged writes and the visibility times
 * (`visible`: commit id → Float64Array of `performance.now()` per node, NaN where not seen).
 * - `toEach`: visible on node X − acknowledged by the origin, for every node X but the origin;
 * - `toAll`: the same, maximised over X (the commit is visible on every node);
 * - `toAllByWindow`: `toAll` of the writes scheduled in each `windowMs` of the load, in order;
 * - `onOrigin`: visible on the origin's own feed − acknowledged: the floor of the method (the
 *   change feed's own delay plus the two responses' relative order), not replication.
 */
export function replicationDelays(writes, visible, size, windowMs = 2_000) {
  const toEach = [];
  const toAll = [];
  /** Delay to every node of the writes scheduled in each window of the load, in order. */
  const toAllByWindow = [];
  const firstDueMs = writes.reduce((first, write) => Math.min(first, write.dueMs), Number.POSITIVE_INFINITY);
  const onOrigin = [];
  const putLatency = [];
  let missingPairs = 0;
  let missingCommits = 0;
  for (const write of writes) {
    putLatency.push(write.ackMs - write.dueMs);
    const times = visible.get(write.commit);
    let worst = Number.NEGATIVE_INFINITY;
    let complete = true;
    for (let node = 0; node < size; node += 1) {
      const at = times ? times[node] : Number.NaN;
      if (node === write.node) {
        if (!Number.isNaN(at)) onOrigin.push(at - write.ackMs);
        continue;
      }
      if (Number.isNaN(at)) {
        missingPairs += 1;
        complete = false;
        continue;
      }
      toEach.push(at - write.ackMs);
      worst = Math.max(worst, at - write.ackMs);
    }
    if (complete) {
      toAll.push(worst);
      const window = Math.floor((write.dueMs - firstDueMs) / windowMs);
      while (toAllByWindow.length <= window) toAllByWindow.push([]);
      toAllByWindow[window].push(worst);
    } else missingCommits += 1;
  }
  return {
    toEach: summarize(toEach),
    toAll: summarize(toAll),
    windowMs,
    toAllByWindow: toAllByWindow.map(summarize),
    onOrigin: summarize(onOrigin),
    putLatency: summarize(putLatency),
    missingPairs,
    missingCommits,
  };
}

/** How many acknowledged writes are visible on every node. */
export function visibleEverywhere(writes, visible) {
  let count = 0;
  for (const write of writes) {
    const times = visible.get(write.commit);
    if (times?.every((at) => !Number.isNaN(at))) count += 1;
  }
  return count;
}
