import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, type TempNode, tempNode } from '../../test/support/temp-node.js';

/**
 * Random requests against one node: whatever arrives, the node answers with a 2xx–4xx, every
 * 4xx carries a Strata error code, and nothing acknowledged before is harmed. fast-check prints
 * the seed and path of a failure; rerun it with `fc.assert(…, { seed, path })`.
 */
const runs = 300;

/** Written before the fuzzing; no generated request can name its bucket, so it must survive intact. */
const anchor = { bucket: 'anchor', key: 'known/value.txt', value: 'acknowledged before fuzzing' };

const methods = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const printable = fc.stringMatching(/^[\x20-\x7e]{0,24}$/);

function encode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    // A lone surrogate cannot be percent-encoded as UTF-8: send it escaped as its code units.
    return escape(value);
  }
}

interface Pools {
  /** Versions to name in reads and conditions; the anchor's among them. */
  versions: string[];
  /** Versions a commit may retract: never the anchor's, whose withdrawal would be a legitimate write. */
  retractable: string[];
  blobs: string[];
  tokens: Record<string, string>;
}

function requestArbitrary(pools: Pools): fc.Arbitrary<InjectOptions> {
  const validBucket = fc.constantFrom('b', 'data', 'site', 'x.y-z', '0', 'a'.repeat(63));
  const oddSegment = fc.constantFrom(
    '',
    '%ZZ',
    '%',
    '%E0%A4%A',
    '%ED%A0%80',
    '%00',
    '%0A',
    '%7F',
    '%2F',
    '%2Fversions',
    'versions',
    '..',
    '.',
    '_auth',
    '_buckets',
    'UPPER',
    'a'.repeat(64),
    '%C3%A9'.repeat(400),
    'k'.repeat(1100),
    'keys',
    'missing',
  );
  const segment = fc.oneof(
    fc.stringMatching(/^[a-z0-9._-]{1,12}$/),
    fc.string({ maxLength: 16 }).map(encode),
    fc.string({ unit: 'binary', maxLength: 8 }).map(encode),
    oddSegment,
  );
  const bucket = fc.oneof({ weight: 3, arbitrary: validBucket }, { weight: 1, arbitrary: segment });
  const key = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
  const version = fc.oneof(
    fc.constantFrom(...pools.versions),
    hex64.map((hash) => `${hash}.0`),
    fc.constantFrom('not-a-version', `${'0'.repeat(64)}.1000000`, ''),
  );
  const retractTarget = fc.oneof(
    fc.constantFrom(...pools.retractable),
    hex64.map((hash) => `${hash}.0`),
    fc.constantFrom('not-a-version', ''),
  );
  const hash = fc.oneof(fc.constantFrom(...pools.blobs), hex64, segment);
  const time = fc.oneof(
    fc.constantFrom(
      '2026-02-30T00:00:00Z',
      '2030-01-01T00:00:00Z',
      '2030-01-01T00:00:00.123456789+01:00',
      '1999-12-31T23:59:60Z',
      '0',
      '-1',
      '253402300800000',
      'now',
    ),
    fc.integer({ min: -1, max: 4_102_444_800_000 }).map(String),
  );

  const anyMethod = fc.constantFrom(...methods);
  /** A path and, most of the time, a method the path serves. */
  const route = (paths: fc.Arbitrary<string>, served: ReadonlyArray<(typeof methods)[number]>) =>
    fc.tuple(
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...served) }, { weight: 1, arbitrary: anyMethod }),
      paths,
    );
  const target = fc.oneof(
    {
      weight: 6,
      arbitrary: route(
        fc.tuple(bucket, key).map(([b, k]) => `/v1/buckets/${b}/keys/${k}`),
        ['GET', 'HEAD', 'PUT', 'DELETE'],
      ),
    },
    {
      weight: 1,
      arbitrary: route(
        fc.tuple(bucket, key).map(([b, k]) => `/v1/buckets/${b}/keys/${k}/versions`),
        ['GET'],
      ),
    },
    {
      weight: 2,
      arbitrary: route(
        bucket.map((b) => `/v1/buckets/${b}/keys`),
        ['GET', 'POST'],
      ),
    },
    { weight: 1, arbitrary: route(fc.constant('/v1/buckets'), ['GET']) },
    {
      weight: 1,
      arbitrary: route(
        bucket.map((b) => `/v1/buckets/${b}/settings`),
        ['GET', 'PUT'],
      ),
    },
    { weight: 5, arbitrary: route(fc.constant('/v1/commits'), ['POST']) },
    {
      weight: 1,
      arbitrary: route(
        fc.oneof(hex64, segment).map((id) => `/v1/commits/${id}`),
        ['GET'],
      ),
    },
    { weight: 2, arbitrary: route(fc.constant('/v1/changes'), ['GET']) },
    {
      weight: 2,
      arbitrary: route(
        hash.map((h) => `/v1/blobs/${h}`),
        ['GET', 'HEAD', 'PUT'],
      ),
    },
    { weight: 1, arbitrary: route(fc.constant('/v1/blobs/missing'), ['POST']) },
    { weight: 1, arbitrary: route(fc.constant('/v1/tokens'), ['GET', 'POST']) },
    {
      weight: 1,
      arbitrary: route(
        segment.map((id) => `/v1/tokens/${id}`),
        ['DELETE'],
      ),
    },
    { weight: 1, arbitrary: route(fc.constant('/v1/admin/digest'), ['GET']) },
    { weight: 1, arbitrary: route(fc.constant('/v1/admin/reindex'), ['POST']) },
    { weight: 1, arbitrary: route(fc.constantFrom('/health', '/metrics'), ['GET']) },
    {
      weight: 1,
      arbitrary: route(
        fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
        methods,
      ),
    },
  );

  const queryValue = fc.oneof(version, time, segment, printable.map(encode), fc.integer().map(String));
  const queryName = fc.constantFrom(
    'at',
    'asOf',
    'version',
    'prefix',
    'limit',
    'after',
    'since',
    'bucket',
    'x',
  );
  const query = fc
    .array(fc.tuple(queryName, queryValue), { maxLength: 4 })
    .map((pairs) =>
      pairs.length === 0 ? '' : `?${pairs.map(([name, value]) => `${name}=${value}`).join('&')}`,
    );

  const authorization = fc.oneof(
    { weight: 4, arbitrary: fc.constant(pools.tokens.admin) },
    { weight: 2, arbitrary: fc.constantFrom(pools.tokens.write, pools.tokens.read) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'Bearer junk',
        'Basic YWRtaW46YWRtaW4=',
        'Bearer',
        `Bearer strata_0123456789abcdef_${'A'.repeat(43)}`,
      ),
    },
  );
  /** Most requests carry few of the optional headers, so that some of them get past validation. */
  const sometimes = <T>(arbitrary: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
  const contentType = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant('application/json') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'text/plain',
        'application/octet-stream',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        'image/png',
        '',
      ),
    },
    { weight: 1, arbitrary: printable },
  );
  const headers = fc
    .record({
      'if-match': sometimes(
        fc.oneof(
          version.map((v) => `"${v}"`),
          fc.constantFrom('*', 'W/"x"', '"a", "b"'),
          printable,
        ),
      ),
      'if-none-match': sometimes(
        fc.oneof(
          version.map((v) => `"${v}"`),
          fc.constantFrom('*', '"x"'),
          printable,
        ),
      ),
      'strata-effective-at': sometimes(time),
      range: sometimes(
        fc.oneof(
          fc.constantFrom(
            'bytes=0-0',
            'bytes=-5',
            'bytes=5-',
            'bytes=0-1,2-3',
            'bytes=99999999999999999999-',
            'bytes=-0',
          ),
          printable,
        ),
      ),
      'if-range': sometimes(
        fc.oneof(
          version.map((v) => `"${v}"`),
          printable,
        ),
      ),
      // Never text/event-stream: a live stream does not end, and inject waits for the end.
      accept: sometimes(fc.constantFrom('application/json', '*/*', 'text/html', 'text/plain')),
      'last-event-id': sometimes(fc.oneof(fc.nat().map(String), printable)),
    })
    .map((all) => {
      const present: Record<string, string> = {};
      for (const [name, value] of Object.entries(all)) if (value !== undefined) present[name] = value;
      return present;
    });

  // A few keys, often repeated, so that deletes and conditions meet keys that exist.
  const wellFormedKey = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('k', 'a/b', 'index.html', 'x') },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9/._-]{0,11}$/) },
  );
  /** Ops that pass validation, so that commits get written and later requests meet real versions. */
  const wellFormedOp = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record(
        {
          kind: fc.constant('put'),
          bucket: validBucket,
          key: wellFormedKey,
          value: fc.string({ maxLength: 64 }),
          contentType: fc.constantFrom('text/plain', 'application/json'),
          effectiveAt: fc.constantFrom('2020-01-01T00:00:00Z', '2099-01-01T00:00:00Z', 1_700_000_000_000),
        },
        { requiredKeys: ['kind', 'bucket', 'key', 'value'] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('delete'), bucket: validBucket, key: wellFormedKey }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('retract'), target: retractTarget }) },
  );
  const anyOp = fc.record(
    {
      kind: fc.constantFrom('put', 'delete', 'retract', 'upsert'),
      bucket: fc.oneof(validBucket, fc.string({ maxLength: 8 })),
      key: fc.oneof(wellFormedKey, fc.string({ maxLength: 8 })),
      value: fc.string({ maxLength: 64 }),
      valueBase64: fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('base64')),
        printable,
      ),
      contentType: fc.oneof(fc.constantFrom('text/plain', 'application/json'), fc.anything()),
      ifMatch: fc.oneof(version, fc.anything()),
      effectiveAt: fc.oneof(time, fc.integer(), fc.anything()),
      target: retractTarget,
      blob: hash,
    },
    { requiredKeys: ['kind'] },
  );
  const commit = fc
    .record(
      {
        message: fc.string({ maxLength: 32 }),
        ops: fc.array(fc.oneof({ weight: 4, arbitrary: wellFormedOp }, { weight: 1, arbitrary: anyOp }), {
          minLength: 1,
          maxLength: 4,
        }),
      },
      { requiredKeys: ['ops'] },
    )
    .map((value) => JSON.stringify(value));
  const body = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: commit },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc
        .record({ role: fc.constantFrom('read', 'write', 'root', ''), name: fc.string({ maxLength: 8 }) })
        .map((value) => JSON.stringify(value)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{',
        '{"ops":',
        'null',
        '[]',
        '{"publicRead":true}',
        '{"publicRead":"yes"}',
        '{"hashes":[]}',
      ),
    },
  );

  /** A declared type and a body: a JSON commit most of the time, anything otherwise. */
  const payload = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant<string | undefined>('application/json'), commit) },
    { weight: 4, arbitrary: fc.tuple(contentType, body) },
  );

  return fc
    .record({ target, query, authorization, headers, payload })
    .filter(({ target: [, path] }) => !path.includes(anchor.bucket))
    .map(({ target: [method, path], query, authorization, headers, payload: [type, body] }) => {
      const options: InjectOptions = {
        method,
        url: `${path}${query}`,
        headers: {
          ...headers,
          ...(authorization === undefined ? {} : { authorization }),
          ...(type === undefined ? {} : { 'content-type': type }),
        },
      };
      if (body !== undefined) options.payload = body;
      return options;
    });
}

describe('fuzzing the HTTP API', () => {
  let node: TempNode;
  let anchorVersion: string;
  let pools: Pools;

  beforeAll(async () => {
    node = tempNode({ limits: { objectBytesMax: 1024 * 1024, jsonBodyBytesMax: 64 * 1024 } });
    const written = await node.app.inject({
      method: 'PUT',
      url: `/v1/buckets/${anchor.bucket}/keys/${anchor.key}`,
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: anchor.value,
    });
    expect(written.statusCode).toBe(201);
    anchorVersion = (written.json() as { version: string }).version;

    const tokens: Record<string, string> = { admin: auth.authorization };
    for (const role of ['read', 'write'] as const) {
      const created = await node.app.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: auth,
        payload: { role, name: `fuzz ${role}` },
      });
      tokens[role] = `Bearer ${(created.json() as { token: string }).token}`;
    }
    const other = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/k',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: 'fuzzable',
    });
    const otherVersion = (other.json() as { version: string }).version;
    const history = await node.app.inject({ url: `/v1/buckets/b/keys/k/versions`, headers: auth });
    const blob = (history.json() as { versions: Array<{ blob: string }> }).versions[0]?.blob as string;
    pools = { versions: [anchorVersion, otherVersion], retractable: [otherVersion], blobs: [blob], tokens };
  });
  afterAll(async () => {
    await node.dispose();
  });

  it(`answers ${runs} random requests without a 5xx, with Strata errors, harming nothing`, async () => {
    await fc.assert(
      fc.asyncProperty(requestArbitrary(pools), async (request) => {
        const response = await node.app.inject(request);
        const what = `${request.method} ${request.url} → ${response.statusCode} ${response.body.slice(0, 300)}`;
        expect(response.statusCode, what).toBeLessThan(500);
        expect(response.statusCode, what).toBeGreaterThanOrEqual(200);
        if (response.statusCode >= 400 && request.method !== 'HEAD') {
          let code: unknown;
          try {
            code = (JSON.parse(response.body) as { error?: { code?: unknown } }).error?.code;
          } catch {
            code = undefined;
          }
          expect(code, what).toEqual(expect.stringMatching(/^STRATA_/));
        }
      }),
      { numRuns: runs },
    );

    expect((await node.app.inject({ url: '/health' })).statusCode).toBe(200);
    const read = await node.app.inject({
      url: `/v1/buckets/${anchor.bucket}/keys/${anchor.key}`,
      headers: auth,
    });
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe(anchor.value);
    expect(read.headers['strata-version']).toBe(anchorVersion);
    const history = await node.app.inject({
      url: `/v1/buckets/${anchor.bucket}/keys/${anchor.key}/versions`,
      headers: auth,
    });
    expect(
      (history.json() as { versions: Array<{ version: string }> }).versions.map((v) => v.version),
    ).toEqual([anchorVersion]);
    // The derived state still matches the log.
    const reindex = await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth });
    const { before, after } = reindex.json() as { before: string; after: string };
    expect(after).toBe(before);
  });
});
