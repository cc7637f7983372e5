/**
 * The `_sum` and `_count` series of an unlabelled histogram in the Prometheus text format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). Enough to compute a mean
 * over a window by subtracting two scrapes.
 */
export function histogramTotals(text, name) {
  const totals = { sum: Number.NaN, count: Number.NaN };
  for (const line of text.split('\n')) {
    const match = /^(\S+?)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    if (match[1] === `${name}_sum`) totals.sum = Number(match[2]);
    else if (match[1] === `${name}_count`) totals.count = Number(match[2]);
  }
  return totals;
}
