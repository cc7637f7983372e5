import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Pool } from 'undici';
import { startChild, untilHealthy } from './child.mjs';
import { freePort } from './ports.mjs';

/** Debian's etcd-server package installs it here. */
export const etcdBinary = '/usr/bin/etcd';
/** A one-member cluster elects itself within about one election timeout (1 s by default). */
const startTimeoutMs = 20_000;

/** The installed version line, or undefined when etcd is not installed. */
export function etcdVersion() {
  if (!existsSync(etcdBinary)) return undefined;
  const text = execFileSync(etcdBinary, ['--version'], { encoding: 'utf8' });
  return /etcd Version:\s*(\S+)/.exec(text)?.[1] ?? text.split('\n')[0];
}

/**
 * A single-member etcd with its data in `dataDir`, client and peer URLs on free loopback ports.
 * It keeps its defaults for durability: every raft batch is fsynced to its WAL before the put is
 * acknowledged, the same promise Strata's 201 makes.
 */
export async function startEtcd({ dataDir }) {
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const name = 'bench';
  const child = startChild(etcdBinary, [
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${name}=${peerUrl}`,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    'strata-bench',
    '--logger',
    'zap',
    '--log-level',
    'warn',
    '--log-outputs',
    'stderr',
  ]);
  const { stop } = await untilHealthy({
    child,
    name: 'etcd',
    url: clientUrl,
    healthy: (statusCode, text) => statusCode === 200 && JSON.parse(text).health === 'true',
    timeoutMs: startTimeoutMs,
  });
  return { url: clientUrl, pid: child.pid, stop };
}

const base64 = (bytes) => Buffer.from(bytes).toString('base64');

/** A keep-alive pool with one connection per closed-loop client, speaking etcd 3.4's JSON gateway. */
export function etcdClient(server, concurrency) {
  const pool = new Pool(server.url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const post = async (path, body) => {
    const response = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`POST ${path} answered ${response.statusCode}: ${text}`);
    return text;
  };
  return {
    /** Resolves once etcd answers: the put is committed to its fsynced raft log. */
    async put(key, value) {
      await post('/v3/kv/put', { key: base64(key), value: base64(value) });
    },
    /** A linearizable range read (etcd's default), of one key. */
    async get(key, expectedBytes) {
      const reply = JSON.parse(await post('/v3/kv/range', { key: base64(key) }));
      const bytes = reply.kvs?.length === 1 ? Buffer.from(reply.kvs[0].value, 'base64').length : -1;
      if (bytes !== expectedBytes) throw new Error(`range ${key} returned ${bytes} bytes`);
    },
    close: () => pool.close(),
  };
}
