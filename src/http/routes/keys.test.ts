import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { Client } from 'undici';
import { describe, expect, it } from 'vitest';
import { createToken, expectError } from '../../../test/support/api.js';
import { auth, type TempNode, tempNodesPerTest } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';
import { contentTypeBytesMax } from '../../core/commit.js';

const versionPattern = /^[0-9a-f]{64}\.\d+$/;
const rfc3339Pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const start = Date.UTC(2030, 0, 1);
const hour = 3_600_000;

const startNode = tempNodesPerTest();

async function put(
  node: TempNode,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/${path}`,
    headers: { ...auth, 'content-type': 'text/plain', ...headers },
    payload: body,
  });
}

async function putOk(
  node: TempNode,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<string> {
  const response = await put(node, path, body, headers);
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

async function get(node: TempNode, path: string, headers: Record<string, string> = {}) {
  return node.app.inject({ method: 'GET', url: `/v1/buckets/${path}`, headers: { ...auth, ...headers } });
}

async function remove(node: TempNode, path: string, headers: Record<string, string> = {}) {
  return node.app.inject({ method: 'DELETE', url: `/v1/buckets/${path}`, headers: { ...auth, ...headers } });
}

async function history(node: TempNode, path: string): Promise<Array<Record<string, unknown>>> {
  const response = await get(node, `${path}/versions`);
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { versions: Array<Record<string, unknown>> }).versions;
}

async function digest(node: TempNode): Promise<string> {
  const response = await node.app.inject({ url: '/v1/admin/digest', headers: auth });
  return (response.json() as { digest: string }).digest;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

describe('PUT /v1/buckets/{bucket}/keys/{key}', () => {
  it('stores the bytes and the Content-Type and answers 201 with the version, commit and ETag', async () => {
    const node = startNode();
    const response = await put(node, 'docs/keys/readme', 'hello world', {
      'content-type': 'text/markdown; charset=utf-8',
    });
    expect(response.statusCode).toBe(201);
    const body = response.json() as { version: string; commit: string };
    expect(body.version).toMatch(versionPattern);
    expect(body.version.startsWith(`${body.commit}.`)).toBe(true);
    expect(response.headers.etag).toBe(`"${body.version}"`);

    const read = await get(node, 'docs/keys/readme');
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe('hello world');
    expect(read.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(read.headers.etag).toBe(`"${body.version}"`);
    expect(read.headers['strata-version']).toBe(body.version);
    expect(read.headers['strata-conflicts']).toBeUndefined();
  });

  it('keeps arbitrary binary bytes, and empty bodies, exactly', async () => {
    const node = startNode();
    const bytes = randomBytes(4096);
    await putOk(node, 'bin/keys/random', bytes, { 'content-type': 'application/octet-stream' });
    const read = await get(node, 'bin/keys/random');
    expect(Buffer.compare(read.rawPayload, bytes)).toBe(0);

    await putOk(node, 'bin/keys/empty', '');
    const empty = await get(node, 'bin/keys/empty');
    expect(empty.statusCode).toBe(200);
    expect(empty.rawPayload.length).toBe(0);
    expect(empty.headers['content-length']).toBe('0');
  });

  it('stores objects larger than the inline limit, streamed to a file', async () => {
    const node = startNode();
    const bytes = randomBytes(300 * 1024);
    await putOk(node, 'big/keys/file', bytes, { 'content-type': 'application/octet-stream' });
    const read = await get(node, 'big/keys/file');
    expect(read.statusCode).toBe(200);
    expect(Buffer.compare(read.rawPayload, bytes)).toBe(0);
  });

  it('defaults the Content-Type to application/octet-stream', async () => {
    const node = startNode();
    const response = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/untyped',
      headers: auth,
      payload: Buffer.from('x'),
    });
    expect(response.statusCode).toBe(201);
    expect((await get(node, 'b/keys/untyped')).headers['content-type']).toBe('application/octet-stream');
  });

  it('with If-Match of the current version, writes a child of that version', async () => {
    const node = startNode();
    const first = await putOk(node, 'b/keys/k', 'one');
    const second = await putOk(node, 'b/keys/k', 'two', { 'if-match': `"${first}"` });
    expect((await get(node, 'b/keys/k')).body).toBe('two');
    const versions = await history(node, 'b/keys/k');
    expect(versions[0]).toMatchObject({ version: second, parents: [first] });
    // A bare version is accepted too; a weak tag never matches (strong comparison, RFC 9110 §13.1.1).
    const before = await digest(node);
    for (const method of ['PUT', 'DELETE'] as const) {
      const weak = await node.app.inject({
        method,
        url: '/v1/buckets/b/keys/k',
        headers: { ...auth, 'if-match': `W/"${second}"` },
        payload: 'three',
      });
      expectError(weak, 412, 'STRATA_PRECONDITION_FAILED');
      expect(weak.json().error.message).toContain('weak tag');
    }
    expect(await digest(node)).toBe(before);
    await putOk(node, 'b/keys/k', 'four', { 'if-match': second });
  });

  it('with If-Match of a version that is not the current one, answers 412 and writes nothing', async () => {
    const node = startNode();
    const first = await putOk(node, 'b/keys/k', 'one');
    const second = await putOk(node, 'b/keys/k', 'two', { 'if-match': `"${first}"` });
    const before = await digest(node);

    expectError(
      await put(node, 'b/keys/k', 'stale', { 'if-match': `"${first}"` }),
      412,
      'STRATA_PRECONDITION_FAILED',
    );
    const unknown = `${'0'.repeat(64)}.0`;
    expectError(
      await put(node, 'b/keys/k', 'x', { 'if-match': `"${unknown}"` }),
      412,
      'STRATA_PRECONDITION_FAILED',
    );
    expectError(
      await put(node, 'b/keys/new', 'x', { 'if-match': `"${second}"` }),
      412,
      'STRATA_PRECONDITION_FAILED',
    );

    expect(await digest(node)).toBe(before);
    const read = await get(node, 'b/keys/k');
    expect(read.body).toBe('two');
    expect(read.headers['strata-version']).toBe(second);
  });

  it('refuses a malformed If-Match with 400', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'one');
    const before = await digest(node);
    for (const value of ['"not-a-version"', '"a", "b"', `"${'0'.repeat(64)}"`, '"unterminated']) {
      expectError(await put(node, 'b/keys/k', 'x', { 'if-match': value }), 400, 'STRATA_BAD_REQUEST');
    }
    expect(await digest(node)).toBe(before);
  });

  it('with If-Match: *, writes only when a live value exists', async () => {
    const node = startNode();
    expectError(await put(node, 'b/keys/k', 'x', { 'if-match': '*' }), 412, 'STRATA_PRECONDITION_FAILED');
    expect((await get(node, 'b/keys/k')).statusCode).toBe(404);
    await putOk(node, 'b/keys/k', 'one');
    await putOk(node, 'b/keys/k', 'two', { 'if-match': '*' });
    expect((await get(node, 'b/keys/k')).body).toBe('two');
  });

  it('with If-None-Match: *, writes only when there is no live value', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'one', { 'if-none-match': '*' });
    expectError(
      await put(node, 'b/keys/k', 'two', { 'if-none-match': '*' }),
      412,
      'STRATA_PRECONDITION_FAILED',
    );
    expect((await get(node, 'b/keys/k')).body).toBe('one');
    await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/k', headers: auth });
    await putOk(node, 'b/keys/k', 'three', { 'if-none-match': '*' });
    expect((await get(node, 'b/keys/k')).body).toBe('three');
    expectError(
      await put(node, 'b/keys/other', 'x', { 'if-none-match': '"abc"' }),
      400,
      'STRATA_BAD_REQUEST',
    );
  });

  it('takes Strata-Effective-At as RFC 3339 or epoch milliseconds', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    await putOk(node, 'b/keys/rfc', 'x', { 'strata-effective-at': '2029-06-01T12:00:00+02:00' });
    await putOk(node, 'b/keys/ms', 'x', { 'strata-effective-at': String(start - hour) });
    await putOk(node, 'b/keys/fraction', 'x', { 'strata-effective-at': '2029-12-31T23:00:00.123456Z' });
    expect((await get(node, 'b/keys/rfc')).headers['strata-effective-at']).toBe('2029-06-01T10:00:00.000Z');
    expect((await get(node, 'b/keys/ms')).headers['strata-effective-at']).toBe(iso(start - hour));
    expect((await get(node, 'b/keys/fraction')).headers['strata-effective-at']).toBe(
      '2029-12-31T23:00:00.123Z',
    );
  });

  it('refuses impossible or malformed effective times with 400 STRATA_INVALID_TIME', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'kept');
    const before = await digest(node);
    for (const value of [
      '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:00:60Z',
      '2026-01-01T00:00:00+25:00',
      '2026-01-01',
      'tomorrow',
      '-1',
      '1e12',
      '99999999999999999',
    ]) {
      expectError(
        await put(node, 'b/keys/k', 'x', { 'strata-effective-at': value }),
        400,
        'STRATA_INVALID_TIME',
      );
    }
    expect(await digest(node)).toBe(before);
    expect((await get(node, 'b/keys/k')).body).toBe('kept');
  });

  it('refuses a Content-Type over the limit', async () => {
    const node = startNode();
    const contentType = `text/plain; x=${'a'.repeat(contentTypeBytesMax)}`;
    expectError(await put(node, 'b/keys/k', 'x', { 'content-type': contentType }), 400, 'STRATA_BAD_REQUEST');
    expect((await get(node, 'b/keys/k')).statusCode).toBe(404);
  });

  it('refuses a Content-Type that is not a media type or could not be sent back as a header', async () => {
    const node = startNode();
    const cases: Array<[string, string]> = [
      ['text/plain; name="caf\u00e9"', 'visible ASCII'],
      ['text/plain; name=caf\u00e9', 'visible ASCII'],
      ['text/\u00ff', 'not a valid media type'],
      ['text', 'not a valid media type'],
      ['text/plain;charset', 'not a valid media type'],
      ['text/plain; =x', 'not a valid media type'],
      ['text/plain; a="unterminated', 'not a valid media type'],
      ['text /plain', 'not a valid media type'],
    ];
    for (const [contentType, explained] of cases) {
      const response = await put(node, 'b/keys/k', 'x', { 'content-type': contentType });
      expectError(response, 400, 'STRATA_BAD_REQUEST');
      expect(response.json().error.message).toContain(explained);
    }
    expect((await get(node, 'b/keys/k')).statusCode).toBe(404);
    for (const contentType of [
      'text/plain',
      'text/plain;',
      'text/plain; charset=utf-8; a="b \\"c\\""',
      'a/b ;x=y ',
    ]) {
      const response = await put(node, 'b/keys/ok', 'x', { 'content-type': contentType });
      expect(response.statusCode, `${contentType}: ${response.body}`).toBe(201);
    }
  });

  it('serves a stored Content-Type that is not a valid header (from a peer) as application/octet-stream', async () => {
    const node = startNode();
    // A peer running older code could have accepted it; reads must still answer, not fail.
    const blob = await node.store.blobs.fromBuffer(Buffer.from('bytes'));
    await node.store.write({
      ops: [{ kind: 'put', bucket: 'b', key: 'k', blob, contentType: 'text/plain\r\nX-Injected: 1' }],
    });
    for (const method of ['GET', 'HEAD'] as const) {
      const response = await node.app.inject({ method, url: '/v1/buckets/b/keys/k', headers: auth });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers['content-type']).toBe('application/octet-stream');
      expect(response.headers['x-injected']).toBeUndefined();
      if (method === 'GET') expect(response.body).toBe('bytes');
    }
    const [version] = await history(node, 'b/keys/k');
    expect(version?.contentType).toBe('text/plain\r\nX-Injected: 1');
  });

  it('refuses an object over the limit with 413 and keeps what was there', async () => {
    const node = startNode({ limits: { objectBytesMax: 1024 } });
    const kept = await putOk(node, 'b/keys/k', Buffer.alloc(1024, 1));
    const before = await digest(node);

    expectError(await put(node, 'b/keys/k', Buffer.alloc(1025, 2)), 413, 'STRATA_TOO_LARGE');
    expectError(await put(node, 'b/keys/other', Buffer.alloc(10_000, 3)), 413, 'STRATA_TOO_LARGE');
    // Without a Content-Length the limit is enforced while the body streams in.
    const chunked = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/streamed',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: Readable.from([Buffer.alloc(600, 4), Buffer.alloc(600, 5)]),
    });
    expectError(chunked, 413, 'STRATA_TOO_LARGE');
    const posted = await node.app.inject({
      method: 'POST',
      url: '/v1/buckets/b/keys',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(2048),
    });
    expectError(posted, 413, 'STRATA_TOO_LARGE');

    expect(await digest(node)).toBe(before);
    const read = await get(node, 'b/keys/k');
    expect(read.headers['strata-version']).toBe(kept);
    expect(Buffer.compare(read.rawPayload, Buffer.alloc(1024, 1))).toBe(0);
    expect((await get(node, 'b/keys/streamed')).statusCode).toBe(404);
  });
});

describe('POST /v1/buckets/{bucket}/keys', () => {
  it('writes under a new UUIDv7 key and answers 201 with Location', async () => {
    const node = startNode();
    const response = await node.app.inject({
      method: 'POST',
      url: '/v1/buckets/uploads/keys',
      headers: { ...auth, 'content-type': 'image/png' },
      payload: Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    });
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json() as { key: string; version: string; commit: string };
    expect(body.key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(body.version).toMatch(versionPattern);
    expect(response.headers.location).toBe(`/v1/buckets/uploads/keys/${body.key}`);
    expect(response.headers.etag).toBe(`"${body.version}"`);

    const read = await node.app.inject({ url: response.headers.location as string, headers: auth });
    expect(read.statusCode).toBe(200);
    expect(read.headers['content-type']).toBe('image/png');
    expect([...read.rawPayload]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    const second = await node.app.inject({
      method: 'POST',
      url: '/v1/buckets/uploads/keys',
      headers: auth,
      payload: 'x',
    });
    expect((second.json() as { key: string }).key).not.toBe(body.key);
  });

  it('takes If-None-Match: * (a new key has no value) and refuses If-Match, which has nothing to match', async () => {
    const node = startNode();
    const post = (headers: Record<string, string>) =>
      node.app.inject({
        method: 'POST',
        url: '/v1/buckets/uploads/keys',
        headers: { ...auth, ...headers },
        payload: 'x',
      });
    expect((await post({ 'if-none-match': '*' })).statusCode).toBe(201);
    const before = await digest(node);
    const version = (await post({})).json().version as string;
    const afterOne = await digest(node);
    expect(afterOne).not.toBe(before);
    expectError(await post({ 'if-match': `"${version}"` }), 400, 'STRATA_BAD_REQUEST');
    expectError(await post({ 'if-match': '*' }), 400, 'STRATA_BAD_REQUEST');
    expectError(await post({ 'if-none-match': `"${version}"` }), 400, 'STRATA_BAD_REQUEST');
    expect(await digest(node)).toBe(afterOne);
  });

  it('refuses an invalid bucket name', async () => {
    const node = startNode();
    for (const bucket of ['Uploads', '_auth', 'a'.repeat(64), '-x']) {
      const response = await node.app.inject({
        method: 'POST',
        url: `/v1/buckets/${bucket}/keys`,
        headers: auth,
        payload: 'x',
      });
      expectError(response, 400, 'STRATA_INVALID_NAME');
    }
  });
});

describe('GET and HEAD /v1/buckets/{bucket}/keys/{key}', () => {
  it('answers 404 STRATA_NOT_FOUND for a key that never existed', async () => {
    const node = startNode();
    expectError(await get(node, 'b/keys/missing'), 404, 'STRATA_NOT_FOUND');
    const head = await node.app.inject({ method: 'HEAD', url: '/v1/buckets/b/keys/missing', headers: auth });
    expect(head.statusCode).toBe(404);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const node = startNode();
    const version = await putOk(node, 'b/keys/k', 'hello world');
    const head = await node.app.inject({ method: 'HEAD', url: '/v1/buckets/b/keys/k', headers: auth });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('11');
    expect(head.headers['content-type']).toBe('text/plain');
    expect(head.headers.etag).toBe(`"${version}"`);
    expect(head.headers['strata-version']).toBe(version);
    expect(head.body).toBe('');
  });

  it('serves single byte ranges with 206 and refuses unsatisfiable ones with 416', async () => {
    const node = startNode();
    const version = await putOk(node, 'b/keys/k', 'hello world');
    const first = await get(node, 'b/keys/k', { range: 'bytes=0-4' });
    expect(first.statusCode).toBe(206);
    expect(first.body).toBe('hello');
    expect(first.headers['content-range']).toBe('bytes 0-4/11');
    expect(first.headers['content-length']).toBe('5');

    const tail = await get(node, 'b/keys/k', { range: 'bytes=6-' });
    expect(tail.statusCode).toBe(206);
    expect(tail.body).toBe('world');
    const suffix = await get(node, 'b/keys/k', { range: 'bytes=-3' });
    expect(suffix.body).toBe('rld');
    const clipped = await get(node, 'b/keys/k', { range: 'bytes=6-1000' });
    expect(clipped.headers['content-range']).toBe('bytes 6-10/11');

    const outside = await get(node, 'b/keys/k', { range: 'bytes=11-' });
    expectError(outside, 416, 'STRATA_RANGE_NOT_SATISFIABLE');
    expect(outside.headers['content-range']).toBe('bytes */11');
    expectError(await get(node, 'b/keys/k', { range: 'bytes=-0' }), 416, 'STRATA_RANGE_NOT_SATISFIABLE');

    // Malformed, reversed and multiple ranges are answered with the whole object (RFC 9110 §14.2).
    for (const range of ['bytes=5-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=x-y']) {
      const whole = await get(node, 'b/keys/k', { range });
      expect(whole.statusCode, range).toBe(200);
      expect(whole.body).toBe('hello world');
    }
    // If-Range with another tag: the representation changed, send it whole.
    const stale = await get(node, 'b/keys/k', { range: 'bytes=0-4', 'if-range': '"other"' });
    expect(stale.statusCode).toBe(200);
    const fresh = await get(node, 'b/keys/k', { range: 'bytes=0-4', 'if-range': `"${version}"` });
    expect(fresh.statusCode).toBe(206);
  });

  it('answers If-None-Match with the current ETag (or *) with 304', async () => {
    const node = startNode();
    const version = await putOk(node, 'b/keys/k', 'hello');
    const cached = await get(node, 'b/keys/k', { 'if-none-match': `"${version}"` });
    expect(cached.statusCode).toBe(304);
    expect(cached.body).toBe('');
    expect((await get(node, 'b/keys/k', { 'if-none-match': `"other", "${version}"` })).statusCode).toBe(304);
    expect((await get(node, 'b/keys/k', { 'if-none-match': '*' })).statusCode).toBe(304);
    // If-None-Match compares weakly: a cache may hand the tag back marked W/.
    expect((await get(node, 'b/keys/k', { 'if-none-match': `W/"${version}"` })).statusCode).toBe(304);
    const changed = await get(node, 'b/keys/k', { 'if-none-match': '"something-else"' });
    expect(changed.statusCode).toBe(200);
    expect(changed.body).toBe('hello');
  });

  it('reads a given version with version=, immutable', async () => {
    const node = startNode();
    const first = await putOk(node, 'b/keys/k', 'one');
    await putOk(node, 'b/keys/k', 'two');
    await putOk(node, 'b/keys/other', 'other');
    const old = await get(node, `b/keys/k?version=${first}`);
    expect(old.statusCode).toBe(200);
    expect(old.body).toBe('one');
    expect(old.headers['strata-version']).toBe(first);
    expect(old.headers['cache-control']).toContain('immutable');

    expectError(await get(node, 'b/keys/k?version=nonsense'), 400, 'STRATA_BAD_REQUEST');
    expectError(await get(node, `b/keys/k?version=${'0'.repeat(64)}.0`), 404, 'STRATA_NOT_FOUND');
    expectError(await get(node, `b/keys/other?version=${first}`), 404, 'STRATA_NOT_FOUND');
    expectError(await get(node, `b/keys/k?version=${first}&at=${Date.now()}`), 400, 'STRATA_BAD_REQUEST');
    expectError(await get(node, `b/keys/k?version=${first}&version=${first}`), 400, 'STRATA_BAD_REQUEST');
  });

  it('addresses keys containing "/", encoded characters and Unicode', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/a/b/c.txt', 'nested');
    expect((await get(node, 'b/keys/a/b/c.txt')).body).toBe('nested');
    expect((await get(node, 'b/keys/a%2Fb%2Fc.txt')).body).toBe('nested');

    const key = 'été/naïve ?#&%.json';
    await putOk(node, `b/keys/${encodeURIComponent(key)}`, 'unicode');
    expect((await get(node, `b/keys/${encodeURIComponent(key)}`)).body).toBe('unicode');
    const listing = await get(node, 'b/keys');
    expect((listing.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual([
      'a/b/c.txt',
      key,
    ]);
  });

  it('tells the history of a key from a key ending in /versions, sent as %2Fversions', async () => {
    const node = startNode();
    const base = await putOk(node, 'b/keys/doc', 'the doc');
    // On a write the whole path is the key.
    const suffixed = await putOk(node, 'b/keys/doc/versions', 'a key named doc/versions');

    const value = await get(node, 'b/keys/doc%2Fversions');
    expect(value.statusCode).toBe(200);
    expect(value.body).toBe('a key named doc/versions');

    const ofDoc = await history(node, 'b/keys/doc');
    expect(ofDoc.map((entry) => entry.version)).toEqual([base]);
    const ofSuffixed = await history(node, 'b/keys/doc%2Fversions');
    expect(ofSuffixed.map((entry) => entry.version)).toEqual([suffixed]);
    expect(ofSuffixed[0]).toMatchObject({ key: 'doc/versions' });
  });

  it('treats percent-encoded unreserved characters in the fixed path like the characters themselves', async () => {
    // RFC 3986 §6.2.2.2: "%76" and "v" are the same URI. The router normalises them, so the
    // request reaches the key route, and it must then address the same key.
    const node = startNode();
    await putOk(node, 'b/keys/k', 'value');
    const response = await node.app.inject({ url: '/%761/buckets/b/keys/k', headers: auth });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe('value');
  });

  it('refuses invalid bucket and key names with 400 STRATA_INVALID_NAME', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'kept');
    const before = await digest(node);
    const cases = [
      'Upper/keys/k',
      '_auth/keys/k',
      '_system/keys/k',
      `${'a'.repeat(64)}/keys/k`,
      '-dash/keys/k',
      '.dot/keys/k',
      'b%2Fc/keys/k',
      'b/keys/',
      `b/keys/${'k'.repeat(1025)}`,
      `b/keys/${'%C3%A9'.repeat(513)}`,
      'b/keys/%00',
      'b/keys/line%0Abreak',
      'b/keys/tab%09',
      'b/keys/del%7F',
    ];
    for (const path of cases) {
      expectError(await get(node, path), 400, 'STRATA_INVALID_NAME');
      expectError(await put(node, path, 'x'), 400, 'STRATA_INVALID_NAME');
      const deleted = await node.app.inject({ method: 'DELETE', url: `/v1/buckets/${path}`, headers: auth });
      expectError(deleted, 400, 'STRATA_INVALID_NAME');
    }
    expect(await digest(node)).toBe(before);
    expect((await get(node, 'b/keys/k')).body).toBe('kept');
    // The longest valid names are accepted.
    await putOk(node, `${'a'.repeat(63)}/keys/${'k'.repeat(1024)}`, 'longest');
    await putOk(node, `b/keys/${'%C3%A9'.repeat(512)}`, 'two-byte characters');
  });

  it('refuses a malformed percent-encoding with a Strata error', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'kept');
    const before = await digest(node);
    // The last one is well-formed percent-encoding of bytes that are not UTF-8 (a lone surrogate).
    for (const path of ['b/keys/%ZZ', 'b/keys/%E0%A4%A', 'b/keys/100%', 'b%G1/keys/k', 'b/keys/%ED%A0%80']) {
      expectError(await get(node, path), 400, 'STRATA_BAD_REQUEST');
      expectError(await put(node, path, 'x'), 400, 'STRATA_BAD_REQUEST');
    }
    // The same in the query string, which the parser would otherwise keep as literal text.
    for (const query of ['?at=%ZZ', '?at=%FF', '?version=%ED%A0%80', '?at=100%']) {
      const response = await get(node, `b/keys/k${query}`);
      expectError(response, 400, 'STRATA_BAD_REQUEST');
      expect(response.json().error.message).toContain('query string');
    }
    expect(await digest(node)).toBe(before);
    expect((await get(node, 'b/keys/k')).body).toBe('kept');
  });

  it('answers an over-long bucket segment with a Strata error', async () => {
    const node = startNode();
    const response = await get(node, `${'a'.repeat(5000)}/keys`);
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(response.json()).toMatchObject({ error: { code: expect.stringMatching(/^STRATA_/) } });
  });

  it('refuses repeated and malformed query parameters', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'kept');
    expectError(await get(node, 'b/keys/k?at=1&at=2'), 400, 'STRATA_BAD_REQUEST');
    expectError(await get(node, 'b/keys/k?asOf=1&asOf=2'), 400, 'STRATA_BAD_REQUEST');
    expectError(await get(node, 'b/keys/k?at=2026-02-30T00:00:00Z'), 400, 'STRATA_INVALID_TIME');
    expectError(await get(node, 'b/keys/k?asOf=yesterday'), 400, 'STRATA_INVALID_TIME');
    expectError(await get(node, 'b/keys/k?at=-5'), 400, 'STRATA_INVALID_TIME');
    expect((await get(node, 'b/keys/k?at=')).body).toBe('kept');
  });
});

describe('DELETE /v1/buckets/{bucket}/keys/{key}', () => {
  it('writes a tombstone: 200 with the version, then reads answer 404', async () => {
    const node = startNode();
    const put1 = await putOk(node, 'b/keys/k', 'one');
    const response = await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/k', headers: auth });
    expect(response.statusCode).toBe(200);
    const { version } = response.json() as { version: string };
    expect(version).toMatch(versionPattern);

    const read = await get(node, 'b/keys/k');
    expectError(read, 404, 'STRATA_NOT_FOUND');
    expect(read.headers['strata-version']).toBe(version);
    const versions = await history(node, 'b/keys/k');
    expect(versions.map((entry) => [entry.version, entry.kind])).toEqual([
      [version, 'delete'],
      [put1, 'put'],
    ]);
    expect(versions[0]).toMatchObject({ parents: [put1] });
    // The old value is still there by version.
    expect((await get(node, `b/keys/k?version=${put1}`)).body).toBe('one');
  });

  it('reports a put concurrent with a scheduled delete as a conflict of the 404, until a write resolves it', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    await putOk(node, 'b/keys/k', 'one');
    const scheduled = await remove(node, 'b/keys/k', { 'strata-effective-at': iso(start + hour) });
    expect(scheduled.statusCode, scheduled.body).toBe(200);
    const { version: deletion } = scheduled.json() as { version: string };
    // A hotfix today does not see the delete scheduled for later: its parent is today's value.
    const hotfix = await putOk(node, 'b/keys/k', 'hotfix');
    expect((await get(node, 'b/keys/k')).body).toBe('hotfix');

    clock.set(start + hour);
    for (const method of ['GET', 'HEAD'] as const) {
      const read = await node.app.inject({ method, url: '/v1/buckets/b/keys/k', headers: auth });
      expect(read.statusCode, method).toBe(404);
      expect(read.headers['strata-version'], method).toBe(deletion);
      expect(read.headers['strata-conflicts'], method).toBe(hotfix);
    }
    const read = await get(node, 'b/keys/k');
    expectError(read, 404, 'STRATA_NOT_FOUND');
    expect(read.json().error.conflicts).toEqual([hotfix]);
    expect(read.json().error.message).toMatch(/was deleted, but a version written concurrently/);
    expect((await get(node, `b/keys/k?version=${hotfix}`)).body).toBe('hotfix');

    // A blind delete takes the delete and the hotfix as parents: no conflict is left.
    const resolved = await remove(node, 'b/keys/k');
    expect(resolved.statusCode, resolved.body).toBe(200);
    const after = await get(node, 'b/keys/k');
    expectError(after, 404, 'STRATA_NOT_FOUND');
    expect(after.headers['strata-conflicts']).toBeUndefined();
    expect(after.json().error.message).toBe('b/k was deleted');
  });

  it('resolves two concurrent deletes with a third', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    await putOk(node, 'b/keys/k', 'one');
    const later = await remove(node, 'b/keys/k', { 'strata-effective-at': iso(start + hour) });
    const now = await remove(node, 'b/keys/k');
    expect([later.statusCode, now.statusCode]).toEqual([200, 200]);
    clock.set(start + hour);
    const read = await get(node, 'b/keys/k');
    expect(read.headers['strata-conflicts']).toBe(now.json().version);
    const resolved = await remove(node, 'b/keys/k');
    expect(resolved.statusCode, resolved.body).toBe(200);
    expect((await get(node, 'b/keys/k')).headers['strata-conflicts']).toBeUndefined();
  });

  it('answers 404 when there is nothing to delete', async () => {
    const node = startNode();
    const before = await digest(node);
    const missing = await node.app.inject({
      method: 'DELETE',
      url: '/v1/buckets/b/keys/never',
      headers: auth,
    });
    expectError(missing, 404, 'STRATA_NOT_FOUND');
    await putOk(node, 'b/keys/k', 'one');
    await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/k', headers: auth });
    const afterDelete = await digest(node);
    const again = await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/k', headers: auth });
    expectError(again, 404, 'STRATA_NOT_FOUND');
    expect(await digest(node)).toBe(afterDelete);
    expect(afterDelete).not.toBe(before);
  });

  it('honours If-Match', async () => {
    const node = startNode();
    const first = await putOk(node, 'b/keys/k', 'one');
    const second = await putOk(node, 'b/keys/k', 'two');
    const stale = await node.app.inject({
      method: 'DELETE',
      url: '/v1/buckets/b/keys/k',
      headers: { ...auth, 'if-match': `"${first}"` },
    });
    expectError(stale, 412, 'STRATA_PRECONDITION_FAILED');
    expect((await get(node, 'b/keys/k')).body).toBe('two');
    const malformed = await node.app.inject({
      method: 'DELETE',
      url: '/v1/buckets/b/keys/k',
      headers: { ...auth, 'if-match': '"zzz"' },
    });
    expectError(malformed, 400, 'STRATA_BAD_REQUEST');
    for (const ifNoneMatch of ['*', `"${second}"`]) {
      const refused = await node.app.inject({
        method: 'DELETE',
        url: '/v1/buckets/b/keys/k',
        headers: { ...auth, 'if-none-match': ifNoneMatch },
      });
      expectError(refused, 400, 'STRATA_BAD_REQUEST');
      expect(refused.json().error.message).toContain('If-Match');
      expect((await get(node, 'b/keys/k')).body).toBe('two');
    }
    const current = await node.app.inject({
      method: 'DELETE',
      url: '/v1/buckets/b/keys/k',
      headers: { ...auth, 'if-match': `"${second}"` },
    });
    expect(current.statusCode).toBe(200);
    expect((await get(node, 'b/keys/k')).statusCode).toBe(404);
    await putOk(node, 'b/keys/k', 'again');
    expect((await get(node, 'b/keys/k')).body).toBe('again');
  });
});

describe('GET /v1/buckets/{bucket}/keys/{key}/versions', () => {
  it('lists every version, newest transaction first, with its fields', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const first = await putOk(node, 'b/keys/k', 'one', { 'content-type': 'text/plain' });
    clock.advance(1000);
    const second = await putOk(node, 'b/keys/k', 'second', { 'content-type': 'application/json' });
    clock.advance(1000);
    const response = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: auth,
      payload: { ops: [{ kind: 'retract', target: second }] },
    });
    expect(response.statusCode, response.body).toBe(201);
    const retraction = (response.json() as { versions: string[] }).versions[0];

    const versions = await history(node, 'b/keys/k');
    expect(versions.map((entry) => entry.version)).toEqual([retraction, second, first]);
    const [withdrawn, original] = [versions[1], versions[2]];
    expect(original).toMatchObject({
      version: first,
      commit: first.split('.')[0],
      kind: 'put',
      parents: [],
      contentType: 'text/plain',
      size: 3,
      blob: createHash('sha256').update('one').digest('hex'),
      txTime: iso(start),
      effectiveAt: iso(start),
    });
    expect(original?.origin).toMatch(/^[0-9a-f]{16}$/);
    expect(original?.hlc).toMatch(/^\d{15}\.\d{6}\.[0-9a-f]{16}$/);
    expect(original?.retracted).toBeUndefined();
    expect(withdrawn).toMatchObject({
      version: second,
      parents: [first],
      contentType: 'application/json',
      size: 6,
      retracted: true,
      retractedBy: retraction,
      txTime: iso(start + 1000),
    });
    expect(versions[0]).toMatchObject({ kind: 'retract', target: second });
    for (const entry of versions) {
      expect(entry.txTime).toMatch(rfc3339Pattern);
      expect(entry.effectiveAt).toMatch(rfc3339Pattern);
    }
    // The retracted version no longer wins.
    expect((await get(node, 'b/keys/k')).body).toBe('one');
    // The retraction itself, read as a version, is said to be one, not a delete.
    const asVersion = await node.app.inject({
      url: `/v1/buckets/b/keys/k?version=${retraction}`,
      headers: auth,
    });
    expectError(asVersion, 404, 'STRATA_NOT_FOUND');
    expect(asVersion.json().error.message).toContain('is a retraction');
  });
});

describe('GET /v1/buckets/{bucket}/keys (listing)', () => {
  it('lists live keys in key order with their winners', async () => {
    const node = startNode();
    const version = await putOk(node, 'b/keys/b', 'bb', { 'content-type': 'text/x-b' });
    await putOk(node, 'b/keys/a', 'a');
    await putOk(node, 'b/keys/c', 'c');
    await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/c', headers: auth });
    await putOk(node, 'other/keys/x', 'x');

    const response = await get(node, 'b/keys');
    expect(response.statusCode).toBe(200);
    const body = response.json() as { keys: Array<Record<string, unknown>>; next?: string };
    expect(body.keys.map((entry) => entry.key)).toEqual(['a', 'b']);
    expect(body.keys[1]).toMatchObject({ key: 'b', version, size: 2, contentType: 'text/x-b' });
    expect(body.keys[1]?.txTime).toMatch(rfc3339Pattern);
    expect(body.keys[1]?.effectiveAt).toMatch(rfc3339Pattern);
    expect(body.next).toBeUndefined();

    const empty = await get(node, 'nothing/keys');
    expect(empty.json()).toEqual({ keys: [] });
  });

  it('filters by prefix and pages with limit, next and after', async () => {
    const node = startNode();
    const keys = ['img/1', 'img/2', 'img/3', 'img/4', 'img/5', 'index.html', 'js/app.js'];
    for (const key of keys) await putOk(node, `b/keys/${key}`, key);

    const prefixed = await get(node, 'b/keys?prefix=img/');
    expect((prefixed.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual(
      keys.slice(0, 5),
    );

    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page += 1) {
      const query = `prefix=img/&limit=2${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`;
      const response = await get(node, `b/keys?${query}`);
      expect(response.statusCode).toBe(200);
      const body = response.json() as { keys: Array<{ key: string }>; next?: string };
      expect(body.keys.length).toBeLessThanOrEqual(2);
      seen.push(...body.keys.map((entry) => entry.key));
      if (body.next === undefined) break;
      after = body.next;
    }
    expect(seen).toEqual(keys.slice(0, 5));

    const afterAll = await get(node, 'b/keys?after=index.html');
    expect((afterAll.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual([
      'js/app.js',
    ]);
  });

  it('refuses bad limits, repeated parameters and bad times', async () => {
    const node = startNode();
    await putOk(node, 'b/keys/k', 'kept');
    for (const query of [
      'limit=0',
      'limit=-1',
      'limit=1001',
      'limit=abc',
      'limit=1.5',
      'limit=1e2',
      'limit=1&limit=2',
      'prefix=a&prefix=b',
      'after=a&after=b',
      'page=2',
      'offset=100',
    ]) {
      expectError(await get(node, `b/keys?${query}`), 400, 'STRATA_BAD_REQUEST');
    }
    expectError(await get(node, 'b/keys?at=2026-02-30T10:00:00Z'), 400, 'STRATA_INVALID_TIME');
    expectError(await get(node, 'B/keys'), 400, 'STRATA_INVALID_NAME');
    expectError(await get(node, '_auth/keys'), 400, 'STRATA_INVALID_NAME');
    expect((await get(node, 'b/keys?limit=1000')).statusCode).toBe(200);
  });
});

describe('GET /v1/buckets', () => {
  it('lists the buckets, without the system buckets', async () => {
    const node = startNode();
    await putOk(node, 'beta/keys/k', 'x');
    await putOk(node, 'alpha/keys/k', 'x');
    // A token is stored in a system bucket, which the list leaves out.
    await createToken(node, 'read', 'r');
    const response = await node.app.inject({ url: '/v1/buckets', headers: auth });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      buckets: [
        { name: 'alpha', publicRead: false },
        { name: 'beta', publicRead: false },
      ],
    });
  });
});

describe('bucket settings', () => {
  it('are written and read by an admin', async () => {
    const node = startNode();
    const initial = await node.app.inject({ url: '/v1/buckets/site/settings', headers: auth });
    expect(initial.json()).toEqual({ bucket: 'site', publicRead: false });
    const written = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/site/settings',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"publicRead":true}',
    });
    expect(written.statusCode, written.body).toBe(200);
    expect(written.json()).toMatchObject({
      bucket: 'site',
      publicRead: true,
      version: expect.stringMatching(versionPattern),
    });
    const read = await node.app.inject({ url: '/v1/buckets/site/settings', headers: auth });
    expect(read.json()).toEqual({ bucket: 'site', publicRead: true });
  });

  it('refuse malformed bodies and invalid bucket names', async () => {
    const node = startNode();
    const before = await digest(node);
    const bodies: Array<[string | undefined, number, string]> = [
      ['{"publicRead":"yes"}', 400, 'STRATA_BAD_REQUEST'],
      ['{}', 400, 'STRATA_BAD_REQUEST'],
      ['[true]', 400, 'STRATA_BAD_REQUEST'],
      ['null', 400, 'STRATA_BAD_REQUEST'],
      ['{"publicRead":tru', 400, 'STRATA_BAD_REQUEST'],
      ['{"publicRead":true,"publicWrite":true}', 400, 'STRATA_BAD_REQUEST'],
      ['', 400, 'STRATA_BAD_REQUEST'],
      [undefined, 400, 'STRATA_BAD_REQUEST'],
      [`{"publicRead":true,"pad":"${'x'.repeat(70 * 1024)}"}`, 413, 'STRATA_TOO_LARGE'],
    ];
    for (const [payload, status, code] of bodies) {
      const response = await node.app.inject({
        method: 'PUT',
        url: '/v1/buckets/site/settings',
        headers: { ...auth, 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { payload }),
      });
      expectError(response, status, code);
    }
    const misspelt = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/site/settings',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"PublicRead":true}',
    });
    expectError(misspelt, 400, 'STRATA_BAD_REQUEST');
    expect(misspelt.json().error.message).toContain('unknown field "PublicRead"');
    for (const headers of [{ 'content-type': 'text/plain' }, {}]) {
      const response = await node.app.inject({
        method: 'PUT',
        url: '/v1/buckets/site/settings',
        headers: { ...auth, ...headers },
        payload: '{"publicRead":true}',
      });
      expectError(response, 415, 'STRATA_UNSUPPORTED_MEDIA_TYPE');
    }
    for (const bucket of ['Site', '_auth', 'a'.repeat(64)]) {
      const response = await node.app.inject({
        method: 'PUT',
        url: `/v1/buckets/${bucket}/settings`,
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{"publicRead":true}',
      });
      expectError(response, 400, 'STRATA_INVALID_NAME');
      expectError(
        await node.app.inject({ url: `/v1/buckets/${bucket}/settings`, headers: auth }),
        400,
        'STRATA_INVALID_NAME',
      );
    }
    expect(await digest(node)).toBe(before);
  });
});

describe('effective time', () => {
  it('refuses to create a key with . or .. segments, but reads and deletes one written before', async () => {
    const node = startNode();
    // Sent as written: app.inject, like fetch, would fold the dot segments before the node saw them.
    const origin = await node.app.listen({ port: 0, host: '127.0.0.1' });
    const client = new Client(origin);
    try {
      for (const path of ['a/../c', 'a/%2E%2E/c', 'x/%2e', '%2E%2E']) {
        const refused = await client.request({
          method: 'PUT',
          path: `/v1/buckets/b/keys/${path}`,
          headers: { ...auth, 'content-type': 'text/plain' },
          body: 'x',
        });
        const body = JSON.parse(await refused.body.text()) as { error: { code: string } };
        expect([refused.statusCode, body.error.code], path).toEqual([400, 'STRATA_INVALID_NAME']);
      }
      const viaCommit = await node.app.inject({
        method: 'POST',
        url: '/v1/commits',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: JSON.stringify({ ops: [{ kind: 'put', bucket: 'b', key: 'a/../c', value: 'x' }] }),
      });
      expectError(viaCommit, 400, 'STRATA_INVALID_NAME');
      // Written before the rule (straight into the store): still readable and deletable.
      const blob = await node.store.blobs.fromBuffer(Buffer.from('old'));
      await node.store.write({
        ops: [{ kind: 'put', bucket: 'b', key: 'a/../c', blob, contentType: 'text/plain' }],
      });
      const read = await client.request({
        method: 'GET',
        path: '/v1/buckets/b/keys/a/%2E%2E/c',
        headers: auth,
      });
      expect(await read.body.text()).toBe('old');
      const removed = await client.request({
        method: 'DELETE',
        path: '/v1/buckets/b/keys/a/%2E%2E/c',
        headers: auth,
      });
      await removed.body.dump();
      expect(removed.statusCode).toBe(200);
    } finally {
      await client.close();
    }
  });

  it('hides a future-dated value until its time, and shows it with at= after it', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const now = await putOk(node, 'b/keys/k', 'current');
    const future = await putOk(node, 'b/keys/k', 'scheduled', { 'strata-effective-at': iso(start + hour) });
    await putOk(node, 'b/keys/later', 'only later', { 'strata-effective-at': String(start + hour) });

    const read = await get(node, 'b/keys/k');
    expect(read.body).toBe('current');
    expect(read.headers['strata-version']).toBe(now);
    const notYet = await get(node, 'b/keys/later');
    expectError(notYet, 404, 'STRATA_NOT_FOUND');
    expect(notYet.json().error.message).toBe(
      `b/later has no value in effect at ${iso(start)}; one takes effect at ${iso(start + hour)} (read it ahead with at=)`,
    );
    expect((await get(node, 'b/keys/never')).json().error.message).toBe('b/never does not exist');

    const atRelease = await get(node, `b/keys/k?at=${encodeURIComponent(iso(start + hour))}`);
    expect(atRelease.body).toBe('scheduled');
    expect(atRelease.headers['strata-version']).toBe(future);
    expect(atRelease.headers['strata-effective-at']).toBe(iso(start + hour));
    expect((await get(node, `b/keys/k?at=${start + hour - 1}`)).body).toBe('current');
    expect((await get(node, `b/keys/later?at=${start + 2 * hour}`)).body).toBe('only later');

    const listNow = await get(node, 'b/keys');
    expect((listNow.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual([
      'k',
    ]);
    const listLater = await get(node, `b/keys?at=${start + hour}`);
    expect((listLater.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual([
      'k',
      'later',
    ]);

    clock.set(start + hour);
    expect((await get(node, 'b/keys/k')).body).toBe('scheduled');
    expect((await get(node, 'b/keys/later')).body).toBe('only later');
  });

  it('with asOf before a write, reads as if the write had not happened', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const first = await putOk(node, 'b/keys/k', 'one');
    clock.advance(60_000);
    await putOk(node, 'b/keys/k', 'two');

    expect((await get(node, 'b/keys/k')).body).toBe('two');
    const before = await get(node, `b/keys/k?asOf=${encodeURIComponent(iso(start + 30_000))}`);
    expect(before.body).toBe('one');
    expect(before.headers['strata-version']).toBe(first);
    expect((await get(node, `b/keys/k?asOf=${start}`)).body).toBe('one');
    expectError(await get(node, `b/keys/k?asOf=${start - 1}`), 404, 'STRATA_NOT_FOUND');
    expect((await get(node, `b/keys/k?asOf=${start + 60_000}`)).body).toBe('two');
  });

  it('lets a retroactive write change the past view only', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    await putOk(node, 'b/keys/k', 'v1');
    clock.advance(2 * hour);
    await putOk(node, 'b/keys/k', 'v2');
    clock.advance(hour);
    await putOk(node, 'b/keys/k', 'correction', { 'strata-effective-at': iso(start + hour) });

    expect((await get(node, 'b/keys/k')).body).toBe('v2');
    expect((await get(node, `b/keys/k?at=${start + hour}`)).body).toBe('correction');
    // Known as of before the correction was written, the past looked as it did then.
    expect((await get(node, `b/keys/k?at=${start + hour}&asOf=${start + 2 * hour}`)).body).toBe('v1');
  });

  it('deletes with Strata-Effective-At take effect at that time', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    await putOk(node, 'b/keys/k', 'v1');
    const response = await remove(node, 'b/keys/k', { 'strata-effective-at': iso(start + hour) });
    expect(response.statusCode).toBe(200);
    expect((await get(node, 'b/keys/k')).body).toBe('v1');
    expectError(await get(node, `b/keys/k?at=${start + hour}`), 404, 'STRATA_NOT_FOUND');
  });
});

describe('conflicts', () => {
  it('two writes on the same parent give one winner and a Strata-Conflicts header; a write on both clears it', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const base = await putOk(node, 'app/keys/index.html', 'base');
    // A release staged for later, and a hotfix now: both descend from the base.
    const release = await putOk(node, 'app/keys/index.html', 'release', {
      'if-match': `"${base}"`,
      'strata-effective-at': iso(start + hour),
    });
    const hotfix = await putOk(node, 'app/keys/index.html', 'hotfix', { 'if-match': `"${base}"` });

    const today = await get(node, 'app/keys/index.html');
    expect(today.body).toBe('hotfix');
    expect(today.headers['strata-conflicts']).toBeUndefined();

    clock.set(start + 2 * hour);
    const later = await get(node, 'app/keys/index.html');
    expect(later.body).toBe('release');
    expect(later.headers['strata-version']).toBe(release);
    expect(later.headers['strata-conflicts']).toBe(hotfix);
    const listing = await get(node, 'app/keys');
    expect(listing.json()).toMatchObject({ keys: [{ key: 'index.html', version: release, conflicts: 1 }] });

    // A blind write takes the winner and its conflicts as parents, so it resolves the conflict.
    const merged = await putOk(node, 'app/keys/index.html', 'merged');
    const versions = await history(node, 'app/keys/index.html');
    expect(versions[0]).toMatchObject({ version: merged, parents: [release, hotfix] });
    const resolved = await get(node, 'app/keys/index.html');
    expect(resolved.body).toBe('merged');
    expect(resolved.headers['strata-conflicts']).toBeUndefined();
    const relisted = await get(node, 'app/keys');
    expect((relisted.json() as { keys: Array<Record<string, unknown>> }).keys[0]?.conflicts).toBeUndefined();
  });

  it('a blind hotfix made before a scheduled release shows up as its conflict', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const base = await putOk(node, 'b/keys/k', 'base');
    const release = await putOk(node, 'b/keys/k', 'release', { 'strata-effective-at': iso(start + hour) });
    const hotfix = await putOk(node, 'b/keys/k', 'hotfix');
    const versions = await history(node, 'b/keys/k');
    expect(versions.find((entry) => entry.version === release)).toMatchObject({ parents: [base] });
    expect(versions.find((entry) => entry.version === hotfix)).toMatchObject({ parents: [base] });

    const atRelease = await get(node, `b/keys/k?at=${start + hour}`);
    expect(atRelease.headers['strata-version']).toBe(release);
    expect(atRelease.headers['strata-conflicts']).toBe(hotfix);
  });
});
