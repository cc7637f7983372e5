import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail } from '../core/errors.js';

/** In this plugin scope, bodies of any type reach handlers as unread streams (objects are streamed to disk). */
export function rawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
}

/** Reads a small JSON body inside a raw-body scope. */
export async function readJson(request: FastifyRequest, bytesMax: number): Promise<unknown> {
  const body = request.body as Readable | undefined;
  if (!body) fail('STRATA_BAD_REQUEST', 'a JSON body is required');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > bytesMax) fail('STRATA_TOO_LARGE', `JSON body exceeds ${bytesMax} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    fail('STRATA_BAD_REQUEST', `malformed JSON body: ${(error as Error).message}`);
  }
}
