import { Pool } from 'undici';
import { valueFor } from './value.mjs';

const bucket = 'bench';
/** The schedule's granularity: at 500 commits/s a batch of 5 every 10 ms. */
const tickMs = 10;
/** Keep-alive connections per node; the in-flight bound, not this, limits concurrency. */
const connectionsPerNode = 32;

/**
 * Open-loop write load: PUTs of fresh 1 KB values under distinct keys at `rate` commits/s for
 * `seconds`, on a fixed schedule (write i is due at start + i / rate, sent in `tickMs` batches)
 * whatever the nodes' answers, spread round-robin over `nodes`. At most `inFlightMax` writes are
 * outstanding; a write due while the bound is reached is skipped and counted, so a slow cluster
 * shows up as skipped writes rather than as a lower offered rate.
 *
 * Returns `{ writes, skipped, failed, firstError, elapsedMs }`; each acknowledged write is
 * `{ node, commit, dueMs, ackMs }` (`performance.now()` times; `node` is the index in `nodes`).
 */
export async function openLoopWrites({ nodes, rate, seconds, inFlightMax, keyPrefix }) {
  const pools = nodes.map(
    (node) =>
      new Pool(node.url, { connections: connectionsPerNode, pipelining: 1, keepAliveTimeout: 60_000 }),
  );
  const total = Math.max(1, Math.round(rate * seconds));
  const writes = [];
  const result = { writes, skipped: 0, failed: 0, firstError: undefined, elapsedMs: 0 };
  const outstanding = new Set();
  let issued = 0;

  const send = (sequence, dueMs) => {
    const index = sequence % nodes.length;
    const node = nodes[index];
    const request = (async () => {
      const response = await pools[index].request({
        path: `/v1/buckets/${bucket}/keys/${encodeURIComponent(`${keyPrefix}-${sequence}`)}`,
        method: 'PUT',
        headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/octet-stream' },
        body: valueFor(index, sequence),
      });
      const text = await response.body.text();
      const ackMs = performance.now();
      if (response.statusCode !== 201)
        throw new Error(`PUT on ${node.name} answered ${response.statusCode}: ${text}`);
      writes.push({ node: index, commit: JSON.parse(text).commit, dueMs, ackMs });
    })().catch((error) => {
      result.failed += 1;
      result.firstError ??= error.message;
    });
    outstanding.add(request);
    void request.finally(() => outstanding.delete(request));
  };

  const startMs = performance.now();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const nowMs = performance.now();
      const due = Math.min(total, Math.floor(((nowMs - startMs) * rate) / 1000) + 1);
      for (; issued < due; issued += 1) {
        if (outstanding.size >= inFlightMax) result.skipped += 1;
        else send(issued, startMs + (issued * 1000) / rate);
      }
      if (issued >= total) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  await Promise.all([...outstanding]);
  result.elapsedMs = performance.now() - startMs;
  await Promise.all(pools.map((pool) => pool.close()));
  return result;
}

/**
 * Closed-loop PUTs of `count` fresh 1 KB values to one node, `concurrency` at a time, as fast as
 * it takes them: the seeding step of the catch-up measurement. Returns `{ elapsedMs, failed }`.
 */
export async function seedWrites({ node, count, concurrency, keyPrefix, onProgress }) {
  const pool = new Pool(node.url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError;
  const startMs = performance.now();
  const client = async (index) => {
    for (let sequence = next++; sequence < count; sequence = next++) {
      try {
        const response = await pool.request({
          path: `/v1/buckets/${bucket}/keys/${encodeURIComponent(`${keyPrefix}-${sequence}`)}`,
          method: 'PUT',
          headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/octet-stream' },
          body: valueFor(index, sequence),
        });
        const text = await response.body.text();
        if (response.statusCode !== 201) throw new Error(`PUT answered ${response.statusCode}: ${text}`);
      } catch (error) {
        failed += 1;
        firstError ??= error.message;
      }
      done += 1;
      onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => client(index)));
  const elapsedMs = performance.now() - startMs;
  await pool.close();
  return { elapsedMs, failed, firstError };
}
