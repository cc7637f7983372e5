import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { fail, onlyFields } from '../../core/errors.js';
import { hlcWall } from '../../core/hlc.js';
import type { VersionId } from '../../core/ids.js';
import { checkBucketName, checkNewKey } from '../../core/names.js';
import { formatTime } from '../../core/time.js';
import type { VersionRow } from '../../store/derived.js';
import { type Context, requireRead, requireRole } from '../context.js';
import {
  checkContentType,
  effectiveAtHeader,
  header,
  ifMatchHeader,
  ifNoneMatchAny,
  intParam,
  keyTarget,
  onlyParams,
  refuseDeclaredOverLimit,
  servedContentType,
  single,
  timeParam,
  versionParam,
} from '../params.js';
import { rawBodies, readJson } from '../raw-body.js';
import { sendBlob } from '../send-blob.js';
import { etagOf, versionView } from '../views.js';

/** Listing pages: 1,000 keys keeps one response under a few hundred KB. */
const listLimitMax = 1000;

export async function keyRoutes(app: FastifyInstance, context: Context): Promise<void> {
  // Object bodies are raw bytes of any type, streamed to the blob store; never parsed.
  rawBodies(app);

  app.get('/v1/buckets', async (request) => {
    const snapshot = context.store.snapshot();
    const names = snapshot.buckets().filter((name) => !name.startsWith('_'));
    const visible = request.principal ? names : names.filter((name) => context.settings.get(name).publicRead);
    if (!request.principal && visible.length === 0) requireRole(request, 'read');
    return { buckets: visible.map((name) => ({ name, publicRead: context.settings.get(name).publicRead })) };
  });

  app.get('/v1/buckets/:bucket/settings', async (request) => {
    const bucket = checkBucketName((request.params as { bucket: string }).bucket);
    requireRead(request, context, bucket);
    return { bucket, ...context.settings.get(bucket) };
  });

  app.put('/v1/buckets/:bucket/settings', async (request) => {
    requireRole(request, 'admin');
    const bucket = checkBucketName((request.params as { bucket: string }).bucket);
    const body = await readJson(request, 64 * 1024);
    // A misspelt member is named first: `PublicRead` is not a missing `publicRead`.
    if (typeof body === 'object' && body !== null && !Array.isArray(body))
      onlyFields(body, ['publicRead'], 'the settings');
    if (
      typeof body !== 'object' ||
      body === null ||
      typeof (body as { publicRead?: unknown }).publicRead !== 'boolean'
    ) {
      fail('STRATA_BAD_REQUEST', 'settings body must be {"publicRead": true|false}');
    }
    const settings = { publicRead: (body as { publicRead: boolean }).publicRead };
    const version = await context.settings.set(bucket, settings);
    return { bucket, ...settings, version };
  });

  app.get('/v1/buckets/:bucket/keys', async (request) => {
    const bucket = checkBucketName((request.params as { bucket: string }).bucket);
    requireRead(request, context, bucket);
    onlyParams(request, ['prefix', 'after', 'limit', 'at']);
    const listing = context.store.snapshot().listKeys(bucket, {
      prefix: single(request, 'prefix'),
      after: single(request, 'after'),
      limit: intParam(request, 'limit', 100, listLimitMax),
      at: timeParam(request, 'at'),
    });
    return {
      keys: listing.keys.map(({ key, winner, conflicts }) => ({
        key,
        version: winner.version,
        size: winner.size,
        contentType: winner.contentType,
        blob: winner.blob,
        txTime: formatTime(hlcWall(winner.hlc)),
        effectiveAt: formatTime(winner.effectiveAt),
        ...(conflicts > 0 ? { conflicts } : {}),
      })),
      ...(listing.next !== undefined ? { next: listing.next } : {}),
    };
  });

  app.post('/v1/buckets/:bucket/keys', async (request, reply) => {
    requireRole(request, 'write');
    const bucket = checkBucketName((request.params as { bucket: string }).bucket);
    if (header(request, 'if-match') !== undefined) {
      fail(
        'STRATA_BAD_REQUEST',
        'POST makes a new key, so If-Match has nothing to match: PUT to the key instead',
      );
    }
    ifNoneMatchAny(request); // `*` holds for a key that is new; anything else is refused
    const key = uuidv7();
    const result = await putObject(request, context, bucket, key, {});
    return reply
      .status(201)
      .header('ETag', etagOf(result.version))
      .header('Location', `/v1/buckets/${bucket}/keys/${key}`)
      .send({ key, ...result });
  });

  app.put('/v1/buckets/:bucket/keys/*', async (request, reply) => {
    requireRole(request, 'write');
    const { bucket, key } = keyTarget(request);
    const ifMatch = ifMatchHeader(request);
    const result = await putObject(request, context, bucket, key, {
      ifMatch: ifMatch.version,
      ifExists: ifMatch.exists,
      ifNoneMatch: ifNoneMatchAny(request),
    });
    return reply.status(201).header('ETag', etagOf(result.version)).send(result);
  });

  app.delete('/v1/buckets/:bucket/keys/*', async (request) => {
    requireRole(request, 'write');
    const { bucket, key } = keyTarget(request);
    if (header(request, 'if-none-match') !== undefined) {
      fail('STRATA_BAD_REQUEST', 'DELETE does not take If-None-Match: make it conditional with If-Match');
    }
    const ifMatch = ifMatchHeader(request);
    const result = await context.store.write({
      ops: [
        {
          kind: 'delete',
          bucket,
          key,
          ifMatch: ifMatch.version,
          ifExists: ifMatch.exists,
          effectiveAt: effectiveAtHeader(request),
        },
      ],
    });
    return { version: result.versions[0], commit: result.commit };
  });

  app.get('/v1/buckets/:bucket/keys/*', async (request, reply) => {
    const { bucket, key, history } = keyTarget(request);
    requireRead(request, context, bucket);
    const snapshot = context.store.snapshot();
    if (history) return { versions: snapshot.history(bucket, key).map(versionView) };

    const at = timeParam(request, 'at');
    const asOf = timeParam(request, 'asOf');
    const pinned = single(request, 'version');
    let winner: VersionRow | undefined;
    let conflicts: VersionRow[] = [];
    if (pinned !== undefined) {
      if (at !== undefined || asOf !== undefined)
        fail('STRATA_BAD_REQUEST', 'version= cannot be combined with at= or asOf=');
      const row = snapshot.version(versionParam(pinned, 'version'));
      if (!row || row.bucket !== bucket || row.key !== key) {
        fail('STRATA_NOT_FOUND', `${bucket}/${key} has no version ${pinned}`);
      }
      winner = row;
    } else {
      ({ winner, conflicts } = snapshot.read(bucket, key, { at, asOf }));
    }
    if (winner?.kind !== 'put' || !winner.blob) {
      if (winner) void reply.header('Strata-Version', winner.version);
      if (winner?.kind === 'retract')
        fail(
          'STRATA_NOT_FOUND',
          `version ${winner.version} of ${bucket}/${key} is a retraction: it holds no value`,
        );
      if (winner && conflicts.length > 0) {
        // A put concurrent with the delete is not buried by it: it is reported, as for a value.
        const ids = conflicts.map((c) => c.version);
        void reply.header('Strata-Conflicts', ids.join(','));
        fail(
          'STRATA_NOT_FOUND',
          `${bucket}/${key} was deleted, but ${ids.length === 1 ? 'a version' : `${ids.length} versions`} ` +
            'written concurrently with the delete conflict with it: read one with version=; a new write ' +
            'or delete of the key takes them as parents and resolves the conflict',
          { conflicts: ids },
        );
      }
      if (winner) fail('STRATA_NOT_FOUND', `${bucket}/${key} was deleted`);
      // Nothing in effect yet is not "does not exist" when a value is scheduled: say when it starts.
      const readAt = at ?? snapshot.now;
      const next = snapshot
        .history(bucket, key)
        .filter((row) => row.kind === 'put' && row.retractedBy === undefined && row.effectiveAt > readAt)
        .reduce<number | undefined>(
          (first, row) => Math.min(first ?? row.effectiveAt, row.effectiveAt),
          undefined,
        );
      fail(
        'STRATA_NOT_FOUND',
        next === undefined || asOf !== undefined || pinned !== undefined
          ? `${bucket}/${key} does not exist`
          : `${bucket}/${key} has no value in effect at ${formatTime(readAt)}; one takes effect at ${formatTime(next)} (read it ahead with at=)`,
      );
    }
    const blob = context.store.blobs.get(winner.blob);
    if (!blob) throw new Error(`blob ${winner.blob} of ${winner.version} is missing`);
    void reply
      .header('Content-Type', servedContentType(winner.contentType))
      .header('Strata-Version', winner.version)
      .header('Strata-Effective-At', formatTime(winner.effectiveAt))
      .header('Last-Modified', new Date(hlcWall(winner.hlc)).toUTCString());
    if (conflicts.length > 0)
      void reply.header('Strata-Conflicts', conflicts.map((c) => c.version).join(','));
    if (pinned !== undefined) void reply.header('Cache-Control', 'private, max-age=31536000, immutable');
    return sendBlob(request, reply, blob, etagOf(winner.version));
  });
}

async function putObject(
  request: FastifyRequest,
  context: Context,
  bucket: string,
  key: string,
  conditions: { ifMatch?: VersionId; ifExists?: boolean; ifNoneMatch?: boolean },
): Promise<{ version: VersionId; commit: string }> {
  checkNewKey(key);
  const contentType = checkContentType(
    header(request, 'content-type') ?? 'application/octet-stream',
    'Content-Type',
  );
  const effectiveAt = effectiveAtHeader(request);
  refuseDeclaredOverLimit(request, context.limits.objectBytesMax);
  const body = request.body as Readable | undefined;
  const blob = body
    ? await context.store.blobs.ingest(body, context.limits.objectBytesMax)
    : await context.store.blobs.fromBuffer(Buffer.alloc(0));
  const result = await context.store.write({
    ops: [{ kind: 'put', bucket, key, blob, contentType, effectiveAt, ...conditions }],
  });
  return { version: result.versions[0] as VersionId, commit: result.commit };
}
