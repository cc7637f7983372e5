import type { FastifyInstance } from 'fastify';
import { type Context, requireRole } from '../context.js';
import { refuseBody } from '../params.js';

export async function adminRoutes(app: FastifyInstance, context: Context): Promise<void> {
  app.get('/v1/admin/digest', async (request) => {
    requireRole(request, 'read');
    return { node: context.store.nodeId, digest: context.store.digest() };
  });

  // Rebuilding runs in one transaction on the event loop: requests wait, none sees a half-built index.
  app.post('/v1/admin/reindex', async (request) => {
    requireRole(request, 'admin');
    refuseBody(request, 'POST /v1/admin/reindex');
    const before = context.store.digest();
    const started = performance.now();
    const counts = await context.store.reindex();
    const ms = Math.round(performance.now() - started);
    return { ...counts, ms, before, after: context.store.digest() };
  });
}
