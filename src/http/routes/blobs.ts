import type { FastifyInstance } from 'fastify';
import { fail } from '../../core/errors.js';
import { isSha256Hex } from '../../core/ids.js';
import { type Context, requireRole } from '../context.js';
import { sendBlob } from '../send-blob.js';

export async function blobRoutes(app: FastifyInstance, context: Context): Promise<void> {
  // Blobs are addressed by content and carry no bucket, so reading one by hash needs a read token.
  app.get('/v1/blobs/:hash', async (request, reply) => {
    requireRole(request, 'read');
    const { hash } = request.params as { hash: string };
    if (!isSha256Hex(hash))
      fail('STRATA_BAD_REQUEST', 'a blob hash is 64 lowercase hexadecimal digits (sha256)');
    const blob = context.store.blobs.get(hash);
    if (!blob) fail('STRATA_NOT_FOUND', `no blob ${hash}`);
    void reply
      .header('Content-Type', 'application/octet-stream')
      .header('Cache-Control', 'private, max-age=31536000, immutable');
    return sendBlob(request, reply, blob, `"${hash}"`);
  });
}
