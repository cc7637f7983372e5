import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { BucketSettingsStore } from '../auth/bucket-settings.js';
import type { Role, Tokens } from '../auth/tokens.js';
import { fail } from '../core/errors.js';
import { isSystemBucket } from '../core/names.js';
import type { Releases } from '../release/releases.js';
import type { Store } from '../store/store.js';
import type { Metrics } from './metrics.js';

export interface Limits {
  /** Largest object body accepted by PUT/POST of a key (--max-object-bytes). */
  objectBytesMax: number;
  /** Largest JSON body (POST /v1/commits carries values inline). */
  jsonBodyBytesMax: number;
}

export interface Context {
  store: Store;
  tokens: Tokens;
  settings: BucketSettingsStore;
  limits: Limits;
  metrics: Metrics;
  releases: Releases;
}

export type RoutePlugin = (app: FastifyInstance, context: Context) => Promise<void> | void;

/** Adapts a route module to a Fastify plugin that receives the node context. */
export function withContext(plugin: RoutePlugin): FastifyPluginAsync<Context> {
  return async (app, context) => {
    await plugin(app, context);
  };
}

const rank: Record<Role, number> = { read: 1, write: 2, admin: 3 };

export function requireRole(request: FastifyRequest, role: Role): void {
  const principal = request.principal;
  if (!principal) fail('STRATA_UNAUTHORIZED', 'this request needs "Authorization: Bearer <token>"');
  if (rank[principal.role] < rank[role]) {
    fail(
      'STRATA_FORBIDDEN',
      `this request needs ${role === 'admin' ? 'an' : 'a'} ${role} token; yours is ${principal.role}`,
    );
  }
}

/** Reads of a bucket: any token, or none when the bucket is public. System buckets: admin only. */
export function requireRead(request: FastifyRequest, context: Context, bucket: string): void {
  if (isSystemBucket(bucket)) requireRole(request, 'admin');
  else if (!request.principal && !context.settings.get(bucket).publicRead) requireRole(request, 'read');
}
