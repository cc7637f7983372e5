import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authBucket } from '../../auth/tokens.js';
import { messageBytesMax, opsPerCommitMax } from '../../core/commit.js';
import { fail, onlyFields } from '../../core/errors.js';
import { isSha256Hex, type VersionId } from '../../core/ids.js';
import { checkBucketName, checkKey, checkNewKey, isSystemBucket } from '../../core/names.js';
import { parseTime } from '../../core/time.js';
import type { StagedBlob } from '../../log/blob-store.js';
import type { WriteOp } from '../../store/store.js';
import { type Context, requireRead, requireRole } from '../context.js';
import { checkContentType, versionParam } from '../params.js';
import { versionView } from '../views.js';

export async function commitRoutes(app: FastifyInstance, context: Context): Promise<void> {
  // This endpoint takes JSON only: a text/plain body is refused with 415 instead of parsed as a string.
  app.removeContentTypeParser('text/plain');
  app.post('/v1/commits', async (request, reply) => {
    requireRole(request, 'write');
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      fail('STRATA_BAD_REQUEST', 'body must be a JSON object {"message"?, "ops": [...]}');
    }
    onlyFields(body, ['message', 'ops'], 'the commit');
    const { message, ops } = body as { message?: unknown; ops?: unknown };
    if (
      message !== undefined &&
      (typeof message !== 'string' || Buffer.byteLength(message) > messageBytesMax || !message.isWellFormed())
    ) {
      fail(
        'STRATA_BAD_REQUEST',
        `message must be a string of at most ${messageBytesMax} bytes of UTF-8 (no lone surrogates)`,
      );
    }
    if (!Array.isArray(ops) || ops.length === 0 || ops.length > opsPerCommitMax) {
      fail('STRATA_BAD_REQUEST', `ops must be a list of 1–${opsPerCommitMax} operations`);
    }
    // The blobs the puts name, looked up once: those the store lacks are listed at once, so that
    // the client uploads them all; the ops then take the ones found.
    const blobs = new Map<string, StagedBlob | undefined>();
    for (const op of ops) {
      const hash =
        (op as { kind?: unknown; blob?: unknown } | null)?.kind === 'put'
          ? (op as { blob?: unknown }).blob
          : undefined;
      if (typeof hash === 'string' && isSha256Hex(hash) && !blobs.has(hash))
        blobs.set(hash, context.store.existingBlob(hash));
    }
    const unknownBlobs = [...blobs].filter(([, blob]) => blob === undefined).map(([hash]) => hash);
    if (unknownBlobs.length > 0)
      fail(
        'STRATA_UNKNOWN_BLOB',
        `${unknownBlobs.length} blob(s) the ops name are not in the store; upload each with PUT /v1/blobs/{sha256}`,
        { missing: unknownBlobs },
      );
    const writeOps: WriteOp[] = [];
    for (const [index, op] of ops.entries())
      writeOps.push(await toWriteOp(op, index, request, context, blobs));
    const result = await context.store.write({
      ops: writeOps,
      ...(message !== undefined ? { message: message as string } : {}),
      author: request.principal?.name,
    });
    return reply.status(201).send({ commit: result.commit, versions: result.versions });
  });

  app.get('/v1/commits/:id', async (request) => {
    const { id } = request.params as { id: string };
    if (!/^[0-9a-f]{64}$/.test(id)) fail('STRATA_BAD_REQUEST', 'a commit id is 64 hexadecimal digits');
    const snapshot = context.store.snapshot();
    const rows = snapshot.commitVersions(id);
    if (rows.length === 0) fail('STRATA_NOT_FOUND', `no commit ${id}`);
    for (const row of rows) requireRead(request, context, row.bucket);
    const logged = context.store.commit(id);
    if (!logged) fail('STRATA_NOT_FOUND', `no commit ${id}`);
    return {
      commit: logged.id,
      origin: logged.commit.origin,
      seq: logged.commit.seq,
      hlc: logged.commit.hlc,
      message: logged.commit.message,
      author: logged.commit.author,
      versions: rows.map(versionView),
    };
  });
}

/** The fields each kind of op takes. */
const fieldsOfKind: Record<string, readonly string[]> = {
  put: ['kind', 'bucket', 'key', 'value', 'valueBase64', 'blob', 'contentType', 'ifMatch', 'effectiveAt'],
  delete: ['kind', 'bucket', 'key', 'ifMatch', 'effectiveAt'],
  retract: ['kind', 'target'],
};

/** A retract withdraws a version of the bucket it belongs to: system buckets need an admin. */
function retractTarget(value: string, where: string, request: FastifyRequest, context: Context): VersionId {
  const target = versionParam(value, `${where}.target`);
  const row = context.store.snapshot().version(target);
  if (row && isSystemBucket(row.bucket)) requireRole(request, 'admin');
  // Withdrawing a revocation would bring a token back, one revoked because it leaked most often.
  if (row?.bucket === authBucket && row.kind === 'delete')
    fail(
      'STRATA_CONFLICT',
      `${target} revokes a token, and a revocation is final: create a new token instead`,
    );
  return target;
}

async function toWriteOp(
  value: unknown,
  index: number,
  request: FastifyRequest,
  context: Context,
  /** The blobs the puts name, as the store holds them (commitRoutes looked each up once). */
  blobs: Map<string, StagedBlob | undefined>,
): Promise<WriteOp> {
  const where = `ops[${index}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('STRATA_BAD_REQUEST', `${where} must be an object`);
  const op = value as Record<string, unknown>;
  const fields =
    typeof op.kind === 'string' && Object.hasOwn(fieldsOfKind, op.kind) ? fieldsOfKind[op.kind] : undefined;
  if (!fields) fail('STRATA_BAD_REQUEST', `${where}.kind must be "put", "delete" or "retract"`);
  // Each kind takes its own fields: a field another kind uses (a retract's ifMatch) is refused,
  // never dropped.
  onlyFields(op, fields, `${where} (a ${op.kind})`);
  const ifMatch = op.ifMatch === undefined ? undefined : versionParam(String(op.ifMatch), `${where}.ifMatch`);
  switch (op.kind) {
    case 'retract':
      if (typeof op.target !== 'string')
        fail('STRATA_BAD_REQUEST', `${where}: a retract needs "target": "<version>"`);
      return { kind: 'retract', target: retractTarget(op.target, where, request, context) };
    case 'put':
    case 'delete': {
      if (typeof op.bucket !== 'string' || typeof op.key !== 'string') {
        fail('STRATA_BAD_REQUEST', `${where} needs "bucket" and "key" strings`);
      }
      const bucket = checkBucketName(op.bucket);
      const key = op.kind === 'put' ? checkNewKey(op.key) : checkKey(op.key);
      const effectiveAt = effectiveAtOf(op.effectiveAt, where);
      if (op.kind === 'delete') return { kind: 'delete', bucket, key, ifMatch, effectiveAt };
      const contentType =
        op.contentType !== undefined
          ? checkContentType(op.contentType, `${where}.contentType`)
          : op.value !== undefined
            ? 'text/plain; charset=utf-8'
            : 'application/octet-stream';
      return {
        kind: 'put',
        bucket,
        key,
        blob: await blobOf(op, where, context, blobs),
        contentType,
        ifMatch,
        effectiveAt,
      };
    }
    default:
      fail('STRATA_BAD_REQUEST', `${where}.kind must be "put", "delete" or "retract"`);
  }
}

/** A put's bytes: inline (`value`, `valueBase64`) or an uploaded blob named by hash (`blob`). */
async function blobOf(
  op: Record<string, unknown>,
  where: string,
  context: Context,
  blobs: Map<string, StagedBlob | undefined>,
): Promise<StagedBlob> {
  if (op.blob === undefined)
    return context.store.blobs.fromBuffer(opValueBytes(op, where, context.limits.objectBytesMax));
  if (op.value !== undefined || op.valueBase64 !== undefined) {
    fail('STRATA_BAD_REQUEST', `${where}: give one of "value", "valueBase64" or "blob"`);
  }
  if (typeof op.blob !== 'string' || !isSha256Hex(op.blob))
    fail('STRATA_BAD_REQUEST', `${where}.blob must be a sha256 hex hash`);
  const blob = blobs.get(op.blob);
  if (!blob)
    fail(
      'STRATA_UNKNOWN_BLOB',
      `${where}.blob ${op.blob} is not in the store; upload it with PUT /v1/blobs/${op.blob}`,
    );
  return blob;
}

function opValueBytes(op: Record<string, unknown>, where: string, bytesMax: number): Buffer {
  if ((op.value === undefined) === (op.valueBase64 === undefined)) {
    fail(
      'STRATA_BAD_REQUEST',
      `${where}: a put needs exactly one of "value" (a string), "valueBase64" or "blob"`,
    );
  }
  let bytes: Buffer;
  if (op.value !== undefined) {
    if (typeof op.value !== 'string')
      fail('STRATA_BAD_REQUEST', `${where}.value must be a string (use valueBase64 for bytes)`);
    // A lone surrogate (`"\ud800"`) has no UTF-8 form: encoded, it would be stored as U+FFFD.
    if (!op.value.isWellFormed())
      fail(
        'STRATA_BAD_REQUEST',
        `${where}.value is not well-formed Unicode (a lone surrogate); send bytes with valueBase64`,
      );
    bytes = Buffer.from(op.value, 'utf8');
  } else {
    if (
      typeof op.valueBase64 !== 'string' ||
      !/^[A-Za-z0-9+/]*={0,2}$/.test(op.valueBase64) ||
      op.valueBase64.length % 4 !== 0
    ) {
      fail('STRATA_BAD_REQUEST', `${where}.valueBase64 is not valid base64`);
    }
    bytes = Buffer.from(op.valueBase64, 'base64');
  }
  if (bytes.length > bytesMax) fail('STRATA_TOO_LARGE', `${where} value exceeds ${bytesMax} bytes`);
  return bytes;
}

function effectiveAtOf(value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return parseTime(String(value), `${where}.effectiveAt`);
  if (typeof value === 'string') return parseTime(value, `${where}.effectiveAt`);
  fail('STRATA_INVALID_TIME', `${where}.effectiveAt must be RFC 3339 or epoch milliseconds`);
}
