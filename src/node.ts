import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { BucketSettingsStore } from './auth/bucket-settings.js';
import { adminTokenProblem, generateToken, hashToken, Tokens } from './auth/tokens.js';
import { ClusterService } from './cluster/cluster-service.js';
import type { Geo } from './cluster/messages.js';
import type { ClusterTiming } from './cluster/protocol.js';
import type { Clock } from './core/clock.js';
import { fail } from './core/errors.js';
import type { NodeId } from './core/ids.js';
import { buildApp } from './http/app.js';
import type { Limits } from './http/context.js';
import { Metrics } from './http/metrics.js';
import { ActivationScheduler } from './release/activation.js';
import { Releases } from './release/releases.js';
import { Store } from './store/store.js';

export interface NodeOptions {
  dataDir: string;
  clock: Clock;
  limits: Limits;
  /** The admin token; when absent, read from `<data>/admin-token` or generated there. */
  adminToken?: string;
  logger?: FastifyServerOptions['logger'];
  defaultApp?: string;
  cluster?: ClusterConfig;
  /** Called once `POST /v1/cluster/leave` has been answered: the node should stop. */
  onLeave?: () => void;
  /** A search ranks at most this many matches, the newest (search-query.ts). */
  searchRankedMatchesMax?: number;
}

export interface ClusterConfig {
  /** Without it the node runs alone and refuses peers. */
  key?: string;
  join: string[];
  /** The URL peers reach this node at. */
  advertise: string;
  name?: string;
  geo?: Geo;
  timing?: Partial<ClusterTiming>;
}

export interface StrataNode {
  store: Store;
  cluster: ClusterService;
  releases: Releases;
  app: FastifyInstance;
  /** The admin token in effect, for the node's own clients (serve --publish). */
  adminToken: string;
  /** Set when this start generated the admin token: the only time it is shown. */
  generatedAdminToken?: string;
  close(): Promise<void>;
}

export const defaultLimits: Limits = {
  objectBytesMax: 256 * 1024 * 1024,
  jsonBodyBytesMax: 32 * 1024 * 1024,
};

/** Wires store, auth and HTTP together (STYLE §12: no logic here). */
export function startNode(options: NodeOptions): StrataNode {
  const metrics = new Metrics();
  const admin = adminToken(options.dataDir, options.adminToken);
  const store = new Store({
    dataDir: options.dataDir,
    clock: options.clock,
    ...(options.searchRankedMatchesMax !== undefined
      ? { searchRankedMatchesMax: options.searchRankedMatchesMax }
      : {}),
    onSync: (s, n) => metrics.onSync(s, n),
    onCheckpoint: (report) => metrics.checkpointSeconds.observe(report.seconds),
    onCheckpointError: (error) => app.log.error({ err: error }, 'WAL checkpoint failed'),
    onSearchMerge: (seconds) => metrics.searchMergeSeconds.observe(seconds),
    onSearchMergeError: (error) => app.log.error({ err: error }, 'search index merge failed'),
  });
  store.blobs.onDamage((blob, reason, first) => {
    if (!first) return;
    metrics.blobsDamaged.inc();
    app.log.error(
      { blob, reason, setAside: join(options.dataDir, 'blobs', '.damaged') },
      'a blob copy is damaged',
    );
  });
  const tokens = new Tokens(store, hashToken(admin.token));
  const settings = new BucketSettingsStore(store);
  const releases = new Releases(store);
  const config = options.cluster;
  const cluster = new ClusterService({
    store,
    self: {
      id: store.nodeId,
      name: config?.name ?? `strata-${store.nodeId.slice(0, 6)}`,
      url: config?.advertise ?? 'http://127.0.0.1:7070',
      incarnation: store.incarnation,
      ...(config?.geo ? { geo: config.geo } : {}),
    },
    ...(config?.key ? { clusterKey: config.key } : {}),
    join: config?.join ?? [],
    ...(config?.timing ? { timing: config.timing } : {}),
    objectBytesMax: options.limits.objectBytesMax,
    serving: () => metrics.serving(),
    log: {
      info: (object, message) => app.log.info(object, message),
      warn: (object, message) => app.log.warn(object, message),
    },
  });
  const app = buildApp({
    cluster,
    ...(options.onLeave ? { onLeave: options.onLeave } : {}),
    store,
    tokens,
    settings,
    limits: options.limits,
    metrics,
    releases,
    logger: options.logger,
    ...(options.defaultApp !== undefined ? { defaultApp: options.defaultApp } : {}),
  });
  settleAdminTokenFile(options.dataDir, admin, app.log);
  const scheduler = new ActivationScheduler(
    store,
    {
      set(fn, ms) {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      },
    },
    (error) => app.log.error({ err: error }, 'recording a release activation failed'),
    (origin) => recordsActivation(cluster, origin),
  );
  scheduler.start();
  cluster.start();
  return {
    store,
    cluster,
    releases,
    app,
    adminToken: admin.token,
    ...(admin.generated ? { generatedAdminToken: admin.token } : {}),
    async close() {
      scheduler.stop();
      await cluster.close();
      // Requests in flight are answered; a connection still open after closeGraceMs (a client that
      // stopped sending mid-body, say) is cut, so that a stop never waits on a client.
      const cut = setTimeout(() => app.server.closeAllConnections(), closeGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
      }
      await store.close();
    },
  };
}

/** How long a stopping node waits for open connections before it cuts them. */
export const closeGraceMs = 5_000;

/**
 * One `release.activated` per release in a cluster: the node that wrote the release records it;
 * if that node is not alive, the alive node with the smallest id does.
 */
function recordsActivation(cluster: ClusterService, origin: NodeId): boolean {
  const members = cluster.status();
  const self = members.find((member) => member.self);
  if (!self || origin === self.id) return true;
  if (members.some((member) => member.id === origin && member.state === 'alive')) return false;
  return members.every((member) => member.self || member.state !== 'alive' || member.id > self.id);
}

interface AdminToken {
  token: string;
  /** Made now: saved to `<data>/admin-token` once the data directory exists. */
  generated: boolean;
  /** `<data>/admin-token` holds another token than the one given: removed once the store opens. */
  staleFile: boolean;
}

/**
 * The admin token: the one given (STRATA_ADMIN_TOKEN), else the one saved in `<data>/admin-token`,
 * else a new one. Checked before the store opens, so that a token that could never be presented
 * stops the start with nothing opened.
 */
function adminToken(dataDir: string, given: string | undefined): AdminToken {
  const file = join(dataDir, 'admin-token');
  const saved = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  const token = given ?? saved ?? generateToken().token;
  const problem = adminTokenProblem(token);
  if (problem) {
    fail(
      'STRATA_BAD_REQUEST',
      given === undefined ? `the admin token in ${file} ${problem}` : `STRATA_ADMIN_TOKEN ${problem}`,
    );
  }
  // A saved token that the given one replaces no longer works: the CLI, which reads the file when
  // STRATA_TOKEN is unset, would get 401 for no visible reason.
  return {
    token,
    generated: given === undefined && saved === undefined,
    staleFile: given !== undefined && saved !== undefined && saved !== given,
  };
}

/** Saves a new admin token, or removes a file that the given one made stale (the data directory exists now). */
function settleAdminTokenFile(dataDir: string, admin: AdminToken, log: FastifyInstance['log']): void {
  const file = join(dataDir, 'admin-token');
  if (admin.generated) writeFileSync(file, `${admin.token}\n`, { mode: 0o600, flag: 'wx' });
  if (admin.staleFile) {
    rmSync(file, { force: true });
    log.warn(
      { file },
      'STRATA_ADMIN_TOKEN replaces the admin token saved in this file, which no longer works: removed it; ' +
        'give client commands STRATA_TOKEN',
    );
  }
}
