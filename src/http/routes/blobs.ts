import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { fail, onlyFields } from '../../core/errors.js';
import { isSha256Hex } from '../../core/ids.js';
import { type Context, requireRole } from '../context.js';
import { refuseDeclaredOverLimit } from '../params.js';
import { rawBodies, readJson } from '../raw-body.js';
import { sendBlob } from '../send-blob.js';

/** One existence query checks at most this many hashes (a publish of 10,000 files takes a few calls). */
const hashesPerQueryMax = 10_000;

export async function blobRoutes(app: FastifyInstance, context: Context): Promise<void> {
  rawBodies(app);

  // Upload a blob by its hash, ahead of the commit that will name it (publish uploads only what is missing).
  /** Uploads of a hash being stored: a second upload of the same bytes waits for the first. */
  const storing = new Map<string, Promise<void>>();
  app.put('/v1/blobs/:hash', async (request, reply) => {
    requireRole(request, 'write');
    const hash = hashParam(request.params as { hash: string });
    refuseDeclaredOverLimit(request, context.limits.objectBytesMax);
    const body = request.body as Readable | undefined;
    const named = context.store.blobs.has(hash);
    if (context.store.blobs.held(hash)) {
      // Stored already: the body is only hashed, so that wrong bytes are still refused.
      const sent = createHash('sha256');
      let size = 0;
      for await (const chunk of body ?? []) {
        size += (chunk as Buffer).length;
        if (size > context.limits.objectBytesMax)
          fail('STRATA_TOO_LARGE', `blob exceeds --max-object-bytes ${context.limits.objectBytesMax}`);
        sent.update(chunk as Buffer);
      }
      const sentHash = sent.digest('hex');
      if (sentHash !== hash)
        fail('STRATA_BAD_REQUEST', `body hashes to ${sentHash}, not ${hash}; nothing was stored`);
      return reply.status(200).send({ blob: hash, created: false });
    }
    const staged = body
      ? await context.store.blobs.ingest(body, context.limits.objectBytesMax)
      : await context.store.blobs.fromBuffer(Buffer.alloc(0));
    if (staged.hash !== hash) {
      await context.store.blobs.release(staged);
      fail('STRATA_BAD_REQUEST', `body hashes to ${staged.hash}, not ${hash}; nothing was stored`);
    }
    // Another upload of these bytes may have been stored, or be storing them, meanwhile.
    const first = storing.get(hash);
    if (first || (!named && context.store.blobs.has(hash))) {
      await context.store.blobs.release(staged);
      await first;
      return reply.status(200).send({ blob: hash, created: false });
    }
    const stored = context.store.putBlob(staged);
    storing.set(hash, stored);
    try {
      await stored;
    } finally {
      storing.delete(hash);
    }
    // A copy that was missing or damaged is replaced by these bytes (hashed on the way in).
    if (named) return reply.status(200).send({ blob: hash, created: false, repaired: true });
    return reply.status(201).send({ blob: hash, size: staged.size, created: true });
  });

  app.post('/v1/blobs/missing', async (request) => {
    requireRole(request, 'read');
    const body = (await readJson(request, 1024 * 1024)) as { hashes?: unknown };
    if (typeof body === 'object' && body !== null && !Array.isArray(body))
      onlyFields(body, ['hashes'], 'the body');
    const hashes = body?.hashes;
    if (
      !Array.isArray(hashes) ||
      hashes.length > hashesPerQueryMax ||
      !hashes.every((h) => typeof h === 'string' && isSha256Hex(h))
    ) {
      fail(
        'STRATA_BAD_REQUEST',
        `body must be {"hashes": [<up to ${hashesPerQueryMax} sha256 hex strings>]}`,
      );
    }
    // A damaged or missing copy is listed too, so that a publish brings the bytes again.
    return { missing: (hashes as string[]).filter((hash) => !context.store.blobs.held(hash)) };
  });

  // Blobs are addressed by content and carry no bucket, so reading one by hash needs a read token.
  app.get('/v1/blobs/:hash', async (request, reply) => {
    requireRole(request, 'read');
    const hash = hashParam(request.params as { hash: string });
    const blob = context.store.blobs.get(hash);
    if (!blob) fail('STRATA_NOT_FOUND', `no blob ${hash}`);
    void reply
      .header('Content-Type', 'application/octet-stream')
      .header('Cache-Control', 'private, max-age=31536000, immutable');
    return sendBlob(request, reply, blob, `"${hash}"`);
  });
}

function hashParam(params: { hash: string }): string {
  if (!isSha256Hex(params.hash))
    fail('STRATA_BAD_REQUEST', 'a blob hash is 64 lowercase hexadecimal digits (sha256)');
  return params.hash;
}
