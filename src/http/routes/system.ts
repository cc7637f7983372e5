import type { FastifyInstance } from 'fastify';
import type { Context } from '../context.js';

export async function systemRoutes(app: FastifyInstance, context: Context): Promise<void> {
  app.get('/health', async (_request, reply) => {
    const failed = context.store.failed;
    if (failed)
      return reply.status(503).send({ status: 'failed', node: context.store.nodeId, reason: failed.message });
    return { status: 'ok', node: context.store.nodeId };
  });

  app.get('/metrics', async (_request, reply) => {
    context.metrics.logBytes.set(context.store.logBytes());
    return reply
      .header('Content-Type', context.metrics.registry.contentType)
      .send(await context.metrics.registry.metrics());
  });
}
