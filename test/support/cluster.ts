import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import type { MemberStatus } from '../../src/cluster/replica.js';
import type { countersOf } from '../../src/http/routes/cluster.js';
import { FaultProxy } from './fault-proxy.js';
import { cleanUpProcesses, type ExitStatus, freePort, strataBin, temporaryDirectory } from './process.js';
import { waitWithDetail as waitWithDetailEvery } from './wait.js';

/**
 * Real multi-process clusters for end-to-end tests (STYLE §11, §14). Each node is a `strata serve`
 * process on 127.0.0.1; with `proxied` (the default) it also gets a `FaultProxy` in front of it and
 * advertises the proxy's URL, so every connection a peer opens to it (links and blob pulls) passes
 * through that proxy, which knows the caller by its `strata-peer-name` header. The test itself talks
 * to each node directly (`url`), never through a proxy, so faults only ever hit peer traffic.
 *
 * `startServer` of process.ts cannot be used here: a proxied node must listen on a port chosen before
 * its proxy starts, and advertise the proxy's URL chosen before the node starts, so the harness spawns
 * the nodes itself (on a port it picks with `freePort`) and tracks them; `cleanUpCluster()` kills them,
 * closes the proxies, and runs `cleanUpProcesses()` for the temporary directories.
 *
 * Typical use:
 *
 *     afterEach(cleanUpCluster);
 *     const [a, b, c] = await startCluster({ nodes: ['A', 'B', 'C'] });
 *     a.proxy?.block(['C']); c.proxy?.block(['A']);
 *     await a.put('bucket', 'key', 'bytes');
 *     await waitForConvergence([a, b, c], 30_000);
 */

/**
 * The cluster key of every node unless a node is given another one (a bad peer). Drawn per test
 * file (each file loads this module afresh), so that clusters of two files running at once can
 * never link, even when one reuses a port another's node left.
 */
export const clusterKey = `e2e-cluster-key-${randomBytes(12).toString('hex')}`;
/** STRATA_ADMIN_TOKEN of every node unless given another one. */
export const clusterAdminToken = 'e2e-cluster-admin-token-0123456789';
/** The Authorization header of `clusterAdminToken`. */
export const clusterAuth = { authorization: `Bearer ${clusterAdminToken}` };

/** A node starts in about a second; 30 s leaves room for several starting at once on 2 loaded cores. */
const startTimeoutMs = 30_000;
/** SIGTERM to exit: closing the links, the HTTP server and the database takes well under a second. */
const stopTimeoutMs = 10_000;
/** One request of the harness to a node; a node that cannot answer in this time is in trouble. */
const requestTimeoutMs = 10_000;
/** Between probes while waiting for a node to be ready or a cluster to settle. */
const pollIntervalMs = 50;
/** A port can be taken by another process between probing and binding; retry a few times. */
const portAttemptsMax = 5;

/** What GET /v1/cluster/status answers (src/http/routes/cluster.ts). */
export interface ClusterStatus {
  node: string;
  clustered: boolean;
  members: MemberStatus[];
  counters: ClusterCounters;
  timing: { degree: number; maxClockSkewMs: number };
  /** This node's overlay links by Plumtree role over the trees it keeps, as node ids. */
  links: { eager: string[]; lazy: string[] };
  /** The broadcast tree of each origin that this node has pruned or been pruned for. */
  trees: Array<{ origin: string; eager: string[]; lazy: string[] }>;
}

export type ClusterCounters = ReturnType<typeof countersOf>;
export type { MemberStatus };

export interface ObjectRead {
  statusCode: number;
  body: Buffer;
  /** The `strata-version` header: the version served (the winner, or the pinned version). */
  version: string | undefined;
  /** The `strata-conflicts` header split on commas: concurrent versions other than the winner. */
  conflicts: string[];
}

export interface VersionEntry {
  version: string;
  commit: string;
  kind: 'put' | 'delete' | 'retract';
  parents: string[];
  origin: string;
  hlc: string;
  size?: number;
  blob?: string;
}

export interface HttpAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface ClusterNode {
  readonly name: string;
  /** The node's node id (16 hex digits), as in status `members[].id` and `links`. Stable over restarts. */
  readonly id: string;
  /** Direct URL of the node: what the test talks to. */
  readonly url: string;
  /** What the node advertises to peers: its proxy's URL when proxied, else `url`. */
  readonly advertisedUrl: string;
  /** The proxy every peer connection to this node goes through; undefined when not proxied. */
  readonly proxy: FaultProxy | undefined;
  readonly port: number;
  readonly dataDir: string;
  /** The pid of the current process (changes with `restart`). */
  readonly pid: number;
  /** False once the process exited (killed, stopped, or crashed) until `restart`. */
  readonly running: boolean;
  /** GET /v1/cluster/status. */
  status(): Promise<ClusterStatus>;
  /** GET /v1/admin/digest: equal digests mean equal versions, hence equal winners and conflicts. */
  digest(): Promise<string>;
  /** PUT /v1/buckets/B/keys/K; throws unless 201. */
  put(bucket: string, key: string, body: string | Buffer, contentType?: string): Promise<PutResult>;
  /** GET /v1/buckets/B/keys/K, or one version of it with `version`; any status is returned, not thrown. */
  get(bucket: string, key: string, options?: { version?: string }): Promise<ObjectRead>;
  /** GET /v1/buckets/B/keys/K/versions; throws unless 200. */
  versions(bucket: string, key: string): Promise<VersionEntry[]>;
  /** Any request as the admin; `path` starts with `/`. */
  request(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: string | Buffer,
  ): Promise<HttpAnswer>;
  /** `kill -9`: no chance to flush or say goodbye. The proxy stays, so peers see a dead node. */
  kill9(): Promise<ExitStatus>;
  /** SIGTERM, and waits (bounded) for the process to exit. */
  stop(): Promise<ExitStatus>;
  /** Starts the node again on the same data directory, port and arguments; resolves once it is ready. */
  restart(): Promise<void>;
  stdout(): string;
  stderr(): string;
}

export interface PutResult {
  version: string;
  commit: string;
}

export interface ClusterNodeOptions {
  /** `--node-name`: also what the proxies know the node by as a caller. */
  name: string;
  /** URLs to `--join` (usually another node's `advertisedUrl`); none starts a cluster of one. */
  join?: string[];
  /** Put a FaultProxy in front of the node and advertise it (default true). */
  proxied?: boolean;
  /** Defaults to `clusterKey`; another key makes a node its peers must refuse. */
  clusterKey?: string;
  /** Defaults to `clusterAdminToken`. */
  adminToken?: string;
  /** Defaults to a fresh temporary directory. */
  dataDir?: string;
  /** Appended to the `strata serve` command line (e.g. `--overlay-degree 2`). */
  extraArguments?: string[];
  /** `--log-level`; `warn` by default so that stdout stays short. */
  logLevel?: string;
}

export interface ClusterOptions {
  /** How many nodes (named N1, N2, …), or their names. The first starts alone; the others join it. */
  nodes: number | readonly string[];
  /** Default true: see ClusterNodeOptions.proxied. */
  proxied?: boolean;
  clusterKey?: string;
  adminToken?: string;
  /** Appended to every node's command line. */
  extraArguments?: string[];
  logLevel?: string;
  /**
   * Wait (this long, default 30 s) until every node sees every other alive and has its overlay
   * degree of links (`waitForMembership`); 0 returns as soon as the processes are ready.
   */
  membershipTimeoutMs?: number;
}

interface Running {
  child: ChildProcess;
  closed: Promise<ExitStatus>;
  stdout: string;
  stderr: string;
}

const nodes = new Set<ClusterNodeImpl>();
const proxies = new Set<FaultProxy>();

/**
 * Starts `nodes` nodes: the first alone, then the others at once, each joining the first's
 * advertised URL; by default waits until they form one cluster (see `membershipTimeoutMs`).
 */
export async function startCluster(options: ClusterOptions): Promise<ClusterNode[]> {
  const names =
    typeof options.nodes === 'number'
      ? Array.from({ length: options.nodes }, (_, index) => `N${index + 1}`)
      : [...options.nodes];
  const [firstName, ...otherNames] = names;
  if (firstName === undefined) throw new Error('startCluster needs at least one node');
  const shared = {
    ...(options.proxied !== undefined ? { proxied: options.proxied } : {}),
    ...(options.clusterKey !== undefined ? { clusterKey: options.clusterKey } : {}),
    ...(options.adminToken !== undefined ? { adminToken: options.adminToken } : {}),
    ...(options.extraArguments !== undefined ? { extraArguments: options.extraArguments } : {}),
    ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}),
  };
  const first = await startClusterNode({ ...shared, name: firstName });
  const others = await Promise.all(
    otherNames.map((name) => startClusterNode({ ...shared, name, join: [first.advertisedUrl] })),
  );
  const started = [first, ...others];
  const membershipTimeoutMs = options.membershipTimeoutMs ?? 30_000;
  if (membershipTimeoutMs > 0) await waitForMembership(started, membershipTimeoutMs);
  return started;
}

/** Starts one node (behind its own proxy unless `proxied: false`); resolves once /health answers. */
export async function startClusterNode(options: ClusterNodeOptions): Promise<ClusterNode> {
  const dataDir = options.dataDir ?? temporaryDirectory(`strata-cluster-${options.name}-`);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let proxy: FaultProxy | undefined;
    // Registered before anything can fail, so that cleanUpCluster() also stops a half-started node.
    let node: ClusterNodeImpl | undefined;
    try {
      if (options.proxied ?? true) {
        proxy = await FaultProxy.start({ host: '127.0.0.1', port });
        proxies.add(proxy);
        // The kernel may hand the proxy the very port just probed for the node.
        if (proxy.port === port) throw new PortTaken(`port ${port} went to the proxy`);
      }
      node = new ClusterNodeImpl(options, dataDir, port, proxy);
      nodes.add(node);
      await node.launch();
      return node;
    } catch (error) {
      if (node) {
        await node.kill9();
        nodes.delete(node);
      }
      if (proxy) await closeProxy(proxy);
      if (!(error instanceof PortTaken) || attempt >= portAttemptsMax) throw error;
    }
  }
}

/** Kills every node started here (SIGKILL), closes every proxy, then runs `cleanUpProcesses()`. */
export async function cleanUpCluster(): Promise<void> {
  await Promise.all([...nodes].map((node) => node.kill9()));
  nodes.clear();
  await Promise.all([...proxies].map((proxy) => closeProxy(proxy)));
  await cleanUpProcesses();
}

/**
 * Waits until every node sees every other node of `cluster` as alive and is linked to at least
 * min(overlay degree, others) of them; nodes not in `cluster` are ignored.
 */
export async function waitForMembership(cluster: readonly ClusterNode[], timeoutMs: number): Promise<void> {
  let last = '';
  await waitWithDetail(
    async () => {
      const statuses = await Promise.all(cluster.map((node) => statusOrUndefined(node)));
      last = describeMembership(cluster, statuses);
      return statuses.every((status, index) => {
        if (!status) return false;
        const others = cluster.filter((_, other) => other !== index);
        const rows = others.map((node) => memberNamed(status, node.name));
        const linked = rows.filter((row) => row?.linked).length;
        return (
          rows.every((row) => row?.state === 'alive') &&
          linked >= Math.min(status.timing.degree, others.length)
        );
      });
    },
    { timeoutMs, what: 'every node sees the others alive and linked' },
    () => last,
  );
}

export interface Convergence {
  /** From the call until the cluster was seen converged. */
  elapsedMs: number;
  digest: string;
}

/**
 * Waits until every node of `cluster` has the same digest and nothing waiting to be applied
 * (counters `pending` and `applying` both 0). Call it once the writes of interest are acknowledged:
 * the node that took a write has it, so equal digests then mean every node has it.
 */
export async function waitForConvergence(
  cluster: readonly ClusterNode[],
  timeoutMs: number,
): Promise<Convergence> {
  const started = performance.now();
  let last = '';
  let digest = '';
  await waitWithDetail(
    async () => {
      const seen = await Promise.all(
        cluster.map(async (node) => {
          try {
            const [status, nodeDigest] = await Promise.all([node.status(), node.digest()]);
            return { name: node.name, digest: nodeDigest, ...backlogOf(status) };
          } catch (error) {
            return {
              name: node.name,
              digest: `unreachable (${(error as Error).message})`,
              pending: -1,
              applying: -1,
            };
          }
        }),
      );
      last = seen
        .map(
          (node) =>
            `${node.name}: ${node.digest.slice(0, 16)} pending ${node.pending} applying ${node.applying}`,
        )
        .join('\n');
      const first = seen[0]?.digest;
      const converged = seen.every(
        (node) => node.digest === first && node.pending === 0 && node.applying === 0,
      );
      if (converged && first !== undefined) digest = first;
      return converged;
    },
    { timeoutMs, what: 'every node has the same digest and nothing pending' },
    () => last,
  );
  return { elapsedMs: Math.round(performance.now() - started), digest };
}

/** wait.ts's `waitWithDetail`, polling at the harness's interval unless told otherwise. */
export function waitWithDetail(...[condition, options, detail]: Parameters<typeof waitWithDetailEvery>) {
  return waitWithDetailEvery(condition, { intervalMs: pollIntervalMs, ...options }, detail);
}

/** The row of `status.members` for the node called `name` (its own row included), if it is known. */
export function memberNamed(status: ClusterStatus, name: string): MemberStatus | undefined {
  return status.members.find((member) => member.name === name);
}

/**
 * The counters of a node that stay 0 in a healthy cluster, whatever the network did: commits refused
 * as invalid (a forged id or a fork), failed applies, waiting commits given up on, failed blob pulls.
 */
export function faultCounters(status: ClusterStatus): Record<string, number> {
  const { invalid, applyFailed, pendingDropped, blobPullsFailed } = status.counters;
  return { invalid, applyFailed, pendingDropped, blobPullsFailed };
}

function backlogOf(status: ClusterStatus): { pending: number; applying: number } {
  return { pending: status.counters.pending, applying: status.counters.applying };
}

async function statusOrUndefined(node: ClusterNode): Promise<ClusterStatus | undefined> {
  try {
    return await node.status();
  } catch {
    return undefined;
  }
}

function describeMembership(
  cluster: readonly ClusterNode[],
  statuses: (ClusterStatus | undefined)[],
): string {
  return cluster
    .map((node, index) => {
      const status = statuses[index];
      if (!status) return `${node.name}: unreachable`;
      const rows = status.members
        .filter((member) => !member.self)
        .map((member) => `${member.name} ${member.state}${member.linked ? ' linked' : ''}`);
      return `${node.name}: ${rows.join(', ')}`;
    })
    .join('\n');
}

async function closeProxy(proxy: FaultProxy): Promise<void> {
  proxies.delete(proxy);
  await proxy.close();
}

class PortTaken extends Error {}

/** The environment of a node: this process's, without any STRATA_* setting leaking in. */
function nodeEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('STRATA_') && value !== undefined) environment[name] = value;
  }
  return { ...environment, ...extra };
}

class ClusterNodeImpl implements ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly advertisedUrl: string;
  private nodeId = '';
  private current: Running | undefined;
  private readonly adminToken: string;
  private readonly commandLine: string[];
  private readonly environment: NodeJS.ProcessEnv;

  constructor(
    options: ClusterNodeOptions,
    readonly dataDir: string,
    readonly port: number,
    readonly proxy: FaultProxy | undefined,
  ) {
    this.name = options.name;
    this.url = `http://127.0.0.1:${port}`;
    this.advertisedUrl = proxy?.url ?? this.url;
    this.adminToken = options.adminToken ?? clusterAdminToken;
    this.environment = nodeEnvironment({
      STRATA_ADMIN_TOKEN: this.adminToken,
      STRATA_CLUSTER_KEY: options.clusterKey ?? clusterKey,
    });
    this.commandLine = [
      'serve',
      '--data',
      dataDir,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--node-name',
      options.name,
      '--advertise',
      this.advertisedUrl,
      ...(options.join ?? []).flatMap((url) => ['--join', url]),
      '--log-level',
      options.logLevel ?? 'warn',
      ...(options.extraArguments ?? []),
    ];
  }

  get id(): string {
    return this.nodeId;
  }

  get pid(): number {
    return this.current?.child.pid ?? -1;
  }

  get running(): boolean {
    const child = this.current?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  stdout(): string {
    return this.current?.stdout ?? '';
  }

  stderr(): string {
    return this.current?.stderr ?? '';
  }

  /** Spawns the process and waits until it listens and /health answers; throws PortTaken on EADDRINUSE. */
  async launch(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const child = spawn(strataBin, this.commandLine, {
      cwd: this.dataDir,
      env: this.environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const running: Running = {
      child,
      stdout: '',
      stderr: '',
      closed: new Promise<ExitStatus>((resolve) => {
        child.once('close', (code, signal) => resolve({ code, signal }));
        // A process that could not be spawned emits 'error' and never 'close'.
        child.once('error', () => {
          if (child.pid === undefined) resolve({ code: null, signal: null });
        });
      }),
    };
    this.current = running;
    if (child.pid === undefined) throw new Error(`could not spawn ${strataBin}`);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      running.stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      running.stderr += chunk;
    });
    const deadline = performance.now() + startTimeoutMs;
    const describe = () => `stdout:\n${running.stdout}\nstderr:\n${running.stderr}`;
    for (;;) {
      if (!this.running) {
        await running.closed;
        if (/EADDRINUSE/.test(running.stderr)) throw new PortTaken(`port ${this.port} was taken`);
        throw new Error(
          `node ${this.name} exited before it was ready (exit ${child.exitCode})\n${describe()}`,
        );
      }
      if (running.stdout.includes(`listening on ${this.url}`) && (await this.healthy())) break;
      if (performance.now() > deadline)
        throw new Error(`node ${this.name} was not ready within ${startTimeoutMs} ms\n${describe()}`);
      await delay(pollIntervalMs);
    }
    this.nodeId = (await this.status()).node;
  }

  async kill9(): Promise<ExitStatus> {
    const running = this.current;
    if (!running) return { code: null, signal: null };
    if (this.running) running.child.kill('SIGKILL');
    return running.closed;
  }

  async stop(): Promise<ExitStatus> {
    const running = this.current;
    if (!running) return { code: null, signal: null };
    if (this.running) running.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    const outcome = await Promise.race([running.closed, timeout]).finally(() => clearTimeout(timer));
    if (outcome === 'timeout') {
      await this.kill9();
      throw new Error(`node ${this.name} did not exit within ${stopTimeoutMs} ms of SIGTERM`);
    }
    return outcome;
  }

  async restart(): Promise<void> {
    await this.kill9();
    // The proxy targets this port, so the node must come back on it; the kernel lets a listening
    // port be bound again at once (Node sets SO_REUSEADDR), so only another process can hold it.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.launch();
        return;
      } catch (error) {
        if (!(error instanceof PortTaken) || attempt >= portAttemptsMax) throw error;
        await delay(pollIntervalMs * attempt);
      }
    }
  }

  async status(): Promise<ClusterStatus> {
    return this.json<ClusterStatus>('/v1/cluster/status');
  }

  async digest(): Promise<string> {
    return (await this.json<{ digest: string }>('/v1/admin/digest')).digest;
  }

  async put(bucket: string, key: string, body: string | Buffer, contentType?: string): Promise<PutResult> {
    const answer = await this.send('PUT', keyPath(bucket, key), body, contentType);
    if (answer.statusCode !== 201)
      throw new Error(`PUT ${bucket}/${key} on ${this.name}: ${answer.statusCode} ${answer.body.toString()}`);
    return JSON.parse(answer.body.toString()) as PutResult;
  }

  async get(bucket: string, key: string, options: { version?: string } = {}): Promise<ObjectRead> {
    const query = options.version === undefined ? '' : `?version=${encodeURIComponent(options.version)}`;
    const answer = await this.send('GET', `${keyPath(bucket, key)}${query}`);
    const conflicts = single(answer.headers['strata-conflicts']);
    return {
      statusCode: answer.statusCode,
      body: answer.body,
      version: single(answer.headers['strata-version']),
      conflicts: conflicts ? conflicts.split(',') : [],
    };
  }

  async versions(bucket: string, key: string): Promise<VersionEntry[]> {
    return (await this.json<{ versions: VersionEntry[] }>(`${keyPath(bucket, key)}/versions`)).versions;
  }

  request(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: string | Buffer,
  ): Promise<HttpAnswer> {
    return this.send(method, path, body);
  }

  private async json<T>(path: string): Promise<T> {
    const answer = await this.send('GET', path);
    if (answer.statusCode !== 200)
      throw new Error(`GET ${path} on ${this.name}: ${answer.statusCode} ${answer.body.toString()}`);
    return JSON.parse(answer.body.toString()) as T;
  }

  private async send(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: string | Buffer,
    contentType = 'application/octet-stream',
  ): Promise<HttpAnswer> {
    const response = await request(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(body !== undefined ? { 'content-type': contentType } : {}),
      },
      ...(body !== undefined ? { body } : {}),
      headersTimeout: requestTimeoutMs,
      bodyTimeout: requestTimeoutMs,
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    return { statusCode: response.statusCode, headers: response.headers, body: bytes };
  }

  private async healthy(): Promise<boolean> {
    try {
      const response = await request(`${this.url}/health`, {
        headersTimeout: pollIntervalMs * 20,
        bodyTimeout: pollIntervalMs * 20,
      });
      const body = (await response.body.json()) as { status?: string };
      return response.statusCode === 200 && body.status === 'ok';
    } catch {
      return false;
    }
  }
}

function keyPath(bucket: string, key: string): string {
  return `/v1/buckets/${encodeURIComponent(bucket)}/keys/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
