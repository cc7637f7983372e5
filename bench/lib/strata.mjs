import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startChild, untilHealthy } from './child.mjs';
import { freePort } from './ports.mjs';
import { histogramTotals } from './prometheus.mjs';

/** Start-up opens SQLite and replays nothing on a fresh directory: seconds at most. */
const startTimeoutMs = 15_000;
const bucket = 'bench';

/**
 * A Strata node as a real process (`bin/strata serve`) on a free port, with a fresh admin token.
 * Logging at `warn` keeps per-request log lines out of the figures. `args` are extra `serve`
 * options (a cluster node's `--node-name`, `--cluster-key`, `--join`).
 */
export async function startStrata({ repoDir, dataDir, args = [] }) {
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const url = `http://127.0.0.1:${port}`;
  const child = startChild(
    process.execPath,
    [
      join(repoDir, 'bin', 'strata'),
      'serve',
      '--data',
      dataDir,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--log-level',
      'warn',
      ...args,
    ],
    { cwd: repoDir, env: { ...process.env, STRATA_ADMIN_TOKEN: token } },
  );
  // Health checks and metric scrapes use their own connection, apart from the load's pool.
  const { control, stop } = await untilHealthy({
    child,
    name: 'strata serve',
    url,
    healthy: (statusCode) => statusCode === 200,
    timeoutMs: startTimeoutMs,
  });

  return {
    url,
    token,
    pid: child.pid,
    stop,
    /** GET of an admin JSON endpoint (`/v1/cluster/status`, `/v1/admin/digest`) on the control connection. */
    async json(path) {
      const response = await control.request({
        path,
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`GET ${path} answered ${response.statusCode}: ${text}`);
      return JSON.parse(text);
    },
    /** Totals of the group-commit histograms; subtract two of these to get a window's figures. */
    async groupCommitTotals() {
      const response = await control.request({ path: '/metrics', method: 'GET' });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`GET /metrics answered ${response.statusCode}`);
      return {
        batch: histogramTotals(text, 'strata_group_commit_batch_commits'),
        fsync: histogramTotals(text, 'strata_fsync_duration_seconds'),
      };
    },
  };
}

/** Window figures from two `groupCommitTotals()` scrapes. */
export function groupCommitWindow(before, after, elapsedMs) {
  const syncs = after.batch.count - before.batch.count;
  const commits = after.batch.sum - before.batch.sum;
  return {
    commitsPerSync: commits / syncs,
    syncsPerSecond: (syncs * 1000) / elapsedMs,
    syncMeanMs: ((after.fsync.sum - before.fsync.sum) * 1000) / (after.fsync.count - before.fsync.count),
  };
}

/** A keep-alive pool with one connection per closed-loop client. */
export function strataClient(server, concurrency) {
  const pool = new Pool(server.url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const authorization = `Bearer ${server.token}`;
  const path = (key) => `/v1/buckets/${bucket}/keys/${encodeURIComponent(key)}`;
  return {
    /** Resolves once Strata answers 201: the value is durable. */
    async put(key, value) {
      const response = await pool.request({
        path: path(key),
        method: 'PUT',
        headers: { authorization, 'content-type': 'application/octet-stream' },
        body: value,
      });
      const text = await response.body.text();
      if (response.statusCode !== 201) throw new Error(`PUT ${key} answered ${response.statusCode}: ${text}`);
    },
    async get(key, expectedBytes) {
      const response = await pool.request({ path: path(key), method: 'GET', headers: { authorization } });
      const body = Buffer.from(await response.body.arrayBuffer());
      if (response.statusCode !== 200) throw new Error(`GET ${key} answered ${response.statusCode}`);
      if (body.length !== expectedBytes) throw new Error(`GET ${key} returned ${body.length} bytes`);
    },
    close: () => pool.close(),
  };
}
