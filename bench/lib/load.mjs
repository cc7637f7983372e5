import { ownCpuSeconds, processCpuSeconds } from './cpu.mjs';

/**
 * Closed-loop load: `concurrency` clients, each sending its next request as soon as the previous
 * one answers, so the offered load adapts to the server. Latency is each request's answer time
 * with `concurrency` requests outstanding; a closed loop models a fixed number of busy callers, not
 * an open arrival rate, so it never counts time a request would have waited to be sent.
 *
 * `request(client, sequence)` performs one request and resolves when the response body has been
 * read; it throws on a failed request. Clients stop starting requests after `durationMs`; the
 * phase ends when the last one answers, and throughput is measured over that whole span.
 *
 * CPU use of the server (`serverPid`) and of this process is measured over the same span, in
 * percent of one core: on a small machine the load generator can be the bottleneck, and the
 * figures only mean something if it is not.
 */
export async function closedLoop({ concurrency, durationMs, request, serverPid }) {
  const latenciesMs = [];
  const errors = { count: 0, first: undefined };
  let sequence = 0;
  const serverCpuStart = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
  const clientCpuStart = ownCpuSeconds();
  const startMs = performance.now();
  const stopMs = startMs + durationMs;

  async function client(index) {
    while (performance.now() < stopMs) {
      const mine = sequence++;
      const sentMs = performance.now();
      try {
        await request(index, mine);
        latenciesMs.push(performance.now() - sentMs);
      } catch (error) {
        errors.count++;
        errors.first ??= error;
      }
    }
  }

  await Promise.all(Array.from({ length: concurrency }, (_, index) => client(index)));
  const elapsedMs = performance.now() - startMs;
  const serverCpuEnd = serverPid === undefined ? undefined : processCpuSeconds(serverPid);
  const cpuPercent = (seconds) => (seconds * 100_000) / elapsedMs;
  return {
    ...summarize(latenciesMs, elapsedMs, errors),
    serverCpuPercent:
      serverCpuStart === undefined || serverCpuEnd === undefined
        ? undefined
        : cpuPercent(serverCpuEnd - serverCpuStart),
    clientCpuPercent: cpuPercent(ownCpuSeconds() - clientCpuStart),
  };
}

function summarize(latenciesMs, elapsedMs, errors) {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    requests: sorted.length,
    elapsedMs,
    perSecond: (sorted.length * 1000) / elapsedMs,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    errors: errors.count,
    firstError: errors.first?.message,
  };
}

/** Nearest-rank percentile of an ascending array; NaN when there are no samples. */
function percentile(sorted, fraction) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Runs a warm-up loop (not measured: connections open, JIT and caches warm), then, between
 * `before` and `after` hooks (e.g. scraping server metrics), the measured loop.
 */
export async function phase({
  concurrency,
  warmupMs,
  durationMs,
  request,
  warmupRequest,
  before,
  after,
  serverPid,
}) {
  if (warmupMs > 0)
    await closedLoop({ concurrency, durationMs: warmupMs, request: warmupRequest ?? request });
  const context = before ? await before() : undefined;
  const result = await closedLoop({ concurrency, durationMs, request, serverPid });
  return { ...result, ...(after ? await after(context, result) : {}) };
}
