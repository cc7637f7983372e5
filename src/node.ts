import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { BucketSettingsStore } from './auth/bucket-settings.js';
import { generateToken, hashToken, Tokens } from './auth/tokens.js';
import type { Clock } from './core/clock.js';
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
}

export interface StrataNode {
  store: Store;
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
  const store = new Store({
    dataDir: options.dataDir,
    clock: options.clock,
    onSync: (s, n) => metrics.onSync(s, n),
  });
  const admin = adminToken(options.dataDir, options.adminToken);
  const tokens = new Tokens(store, hashToken(admin.token));
  const settings = new BucketSettingsStore(store);
  const releases = new Releases(store);
  const app = buildApp({
    store,
    tokens,
    settings,
    limits: options.limits,
    metrics,
    releases,
    logger: options.logger,
    ...(options.defaultApp !== undefined ? { defaultApp: options.defaultApp } : {}),
  });
  const scheduler = new ActivationScheduler(
    store,
    {
      set(fn, ms) {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      },
    },
    (error) => app.log.error({ err: error }, 'recording a release activation failed'),
  );
  scheduler.start();
  return {
    store,
    releases,
    app,
    adminToken: admin.token,
    ...(admin.generated ? { generatedAdminToken: admin.token } : {}),
    async close() {
      scheduler.stop();
      await app.close();
      await store.close();
    },
  };
}

function adminToken(dataDir: string, given: string | undefined): { token: string; generated: boolean } {
  if (given) return { token: given, generated: false };
  const file = join(dataDir, 'admin-token');
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false };
  const { token } = generateToken();
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, generated: true };
}
