import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail } from '../../core/errors.js';
import { checkBucketFilter } from '../../core/names.js';
import { formatTime } from '../../core/time.js';
import type { BucketFilter, SearchKind } from '../../search/search-query.js';
import { type Context, requireRead } from '../context.js';
import { intParam, onlyParams, single, timeParam } from '../params.js';

/** Hits per page: the bound. */
const searchLimitMax = 1000;
const kinds: readonly SearchKind[] = ['text', 'code', 'diff'];

export async function searchRoutes(app: FastifyInstance, context: Context): Promise<void> {
  app.get('/v1/search', async (request) => {
    onlyParams(request, [
      'q',
      'kind',
      'def',
      'ref',
      'versions',
      'bucket',
      'prefix',
      'at',
      'from',
      'to',
      'limit',
      'cursor',
    ]);
    const bucket = optionalBucket(request);
    const kind = (single(request, 'kind') ?? 'text') as SearchKind;
    if (!kinds.includes(kind)) fail('STRATA_BAD_REQUEST', 'kind must be text, code or diff');
    const def = single(request, 'def');
    const ref = single(request, 'ref');
    if ((def !== undefined || ref !== undefined) && kind !== 'code') {
      fail('STRATA_BAD_REQUEST', 'def= and ref= search code identifiers: use them with kind=code');
    }
    const versions = single(request, 'versions') ?? 'current';
    if (versions !== 'current' && versions !== 'all')
      fail('STRATA_BAD_REQUEST', 'versions must be current or all');
    const at = timeParam(request, 'at');
    if (at !== undefined && versions === 'all')
      fail('STRATA_BAD_REQUEST', 'at= applies to versions=current only');
    const from = timeParam(request, 'from');
    const to = timeParam(request, 'to');
    if (from !== undefined && to !== undefined && from > to) fail('STRATA_BAD_REQUEST', 'from= is after to=');
    const q = single(request, 'q');
    const cursor = single(request, 'cursor');
    const result = context.store.searches.search(
      context.store.snapshot(),
      {
        kind,
        versions,
        limit: intParam(request, 'limit', 20, searchLimitMax),
        ...(q !== undefined ? { q } : {}),
        ...(def !== undefined ? { def } : {}),
        ...(ref !== undefined ? { ref } : {}),
        ...(bucket !== undefined ? { bucket } : {}),
        ...(single(request, 'prefix') ? { prefix: single(request, 'prefix') } : {}),
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
        ...(at !== undefined ? { at } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      },
      visibility(request, context, bucket),
    );
    return {
      hits: result.hits.map((hit) => ({
        ...hit,
        txTime: formatTime(hit.txTime),
        effectiveAt: formatTime(hit.effectiveAt),
      })),
      ...(result.cursor !== undefined ? { cursor: result.cursor } : {}),
      ...(result.rankedWithin !== undefined ? { rankedWithin: result.rankedWithin } : {}),
    };
  });

  app.get('/v1/recent', async (request) => {
    onlyParams(request, ['bucket', 'since', 'until', 'limit']);
    const bucket = optionalBucket(request);
    const since = timeParam(request, 'since');
    const until = timeParam(request, 'until');
    if (since !== undefined && until !== undefined && since > until)
      fail('STRATA_BAD_REQUEST', 'since= is after until=');
    const changes = context.store.searches.recent(
      context.store.snapshot(),
      {
        limit: intParam(request, 'limit', 20, searchLimitMax),
        ...(bucket !== undefined ? { bucket } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      },
      visibility(request, context, bucket),
    );
    return {
      changes: changes.map((change) => ({
        ...change,
        txTime: formatTime(change.txTime),
        effectiveAt: formatTime(change.effectiveAt),
      })),
    };
  });
}

function optionalBucket(request: FastifyRequest): string | undefined {
  const bucket = single(request, 'bucket');
  return bucket === undefined ? undefined : checkBucketFilter(bucket);
}

/** A reader never sees hits from buckets it may not read (system buckets: admins only). */
function visibility(request: FastifyRequest, context: Context, bucket: string | undefined): BucketFilter {
  if (bucket !== undefined) {
    requireRead(request, context, bucket);
    return { kind: 'only', buckets: [bucket] };
  }
  if (request.principal?.role === 'admin') return { kind: 'all' };
  if (request.principal) return { kind: 'user' };
  const publicBuckets = context.store
    .snapshot()
    .buckets()
    .filter((name) => !name.startsWith('_') && context.settings.get(name).publicRead);
  if (publicBuckets.length === 0)
    fail('STRATA_UNAUTHORIZED', 'searching needs a token (no bucket is public)');
  return { kind: 'only', buckets: publicBuckets };
}
