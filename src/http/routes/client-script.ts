import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** public/ sits beside src/ and dist/, so the same relative path works from source and from the build. */
const script = readFileSync(new URL('../../../public/strata-client.js', import.meta.url));

export async function clientScriptRoutes(app: FastifyInstance): Promise<void> {
  app.get('/strata-client.js', async (_request, reply) =>
    reply
      .header('Content-Type', 'text/javascript; charset=utf-8')
      .header('Cache-Control', 'public, max-age=300')
      .send(script),
  );
}
