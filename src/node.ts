import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { BucketSettingsStore } from './auth/bucket-settings.js';
import { generateToken, hashToken, Tokens } from './auth/tokens.js';
import type { Clock } from './core/clock.js';
import { buildApp } from './http/app.js';
import type { Limits } from './http/context.js';
import { Metrics } from './http/metrics.js';
import { Store } from './store/store.js';

export interface NodeOptions {
  dataDir: string;
  clock: Clock;
  limits: Limits;
  /** The admin token; when absent, read from `<data>/admin-token` or generated there. */
  adminToken?: string;
  logger?: FastifyServerOptions['logger'];
}

export interface StrataNode {
  store: Store;
  app: FastifyInstance;
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
  const app = buildApp({ store, tokens, settings, limits: options.limits, metrics, logger: options.logger });
  return {
    store,
    app,
    ...(admin.generated ? { generatedAdminToken: admin.token } : {}),
    async close() {
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
