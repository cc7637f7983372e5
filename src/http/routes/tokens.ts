import type { FastifyInstance } from 'fastify';
import type { Role } from '../../auth/tokens.js';
import { fail, onlyFields } from '../../core/errors.js';
import { type Context, requireRole } from '../context.js';

export async function tokenRoutes(app: FastifyInstance, context: Context): Promise<void> {
  // JSON only: a text/plain body gets 415 instead of being parsed as a string.
  app.removeContentTypeParser('text/plain');
  app.post('/v1/tokens', async (request, reply) => {
    requireRole(request, 'admin');
    const body = request.body as { role?: unknown; name?: unknown } | undefined;
    if (typeof body === 'object' && body !== null && !Array.isArray(body))
      onlyFields(body, ['role', 'name'], 'the token');
    if (
      typeof body !== 'object' ||
      body === null ||
      typeof body.role !== 'string' ||
      typeof body.name !== 'string'
    ) {
      fail('STRATA_BAD_REQUEST', 'body must be {"role": "admin"|"write"|"read", "name": "<label>"}');
    }
    const created = await context.tokens.create(body.role as Role, body.name);
    return reply.status(201).send(created);
  });

  app.get('/v1/tokens', async (request) => {
    requireRole(request, 'admin');
    return { tokens: context.tokens.list() };
  });

  app.delete('/v1/tokens/:id', async (request) => {
    requireRole(request, 'admin');
    const { id } = request.params as { id: string };
    const version = await context.tokens.revoke(id);
    return { id, revoked: true, version };
  });
}
