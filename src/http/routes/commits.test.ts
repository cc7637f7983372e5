import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectError, expectJsonOnly, postJson, tokenHeaders } from '../../../test/support/api.js';
import { auth, type TempNode, tempNodesPerTest } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';
import { contentTypeBytesMax, messageBytesMax, opsPerCommitMax } from '../../core/commit.js';

const start = Date.UTC(2030, 0, 1);
const hour = 3_600_000;
const unknownVersion = `${'0'.repeat(64)}.0`;

const startNode = tempNodesPerTest();

interface CommitResult {
  commit: string;
  versions: string[];
}

/** POST /v1/commits with `body` as JSON (a string as it is). */
async function postCommit(
  node: TempNode,
  body: unknown,
  headers: Record<string, string> = auth,
): Promise<LightMyRequestResponse> {
  return postJson(node, '/v1/commits', body, headers);
}

async function commitOk(node: TempNode, body: unknown): Promise<CommitResult> {
  const response = await postCommit(node, body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as CommitResult;
}

async function read(node: TempNode, bucket: string, key: string, query = '') {
  return node.app.inject({ url: `/v1/buckets/${bucket}/keys/${key}${query}`, headers: auth });
}

async function digest(node: TempNode): Promise<string> {
  return ((await node.app.inject({ url: '/v1/admin/digest', headers: auth })).json() as { digest: string })
    .digest;
}

describe('POST /v1/commits', () => {
  it('writes every op in one commit and answers 201 with the commit and its versions', async () => {
    const node = startNode();
    await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'gone', value: 'x' }] });
    const result = await commitOk(node, {
      message: 'first release',
      ops: [
        { kind: 'put', bucket: 'b', key: 'index.html', value: '<h1>hi</h1>', contentType: 'text/html' },
        {
          kind: 'put',
          bucket: 'b',
          key: 'logo.bin',
          valueBase64: Buffer.from([0, 1, 2, 255]).toString('base64'),
        },
        { kind: 'delete', bucket: 'b', key: 'gone' },
        { kind: 'put', bucket: 'other', key: 'notes.txt', value: 'plain' },
      ],
    });
    expect(result.commit).toMatch(/^[0-9a-f]{64}$/);
    expect(result.versions).toEqual([0, 1, 2, 3].map((index) => `${result.commit}.${index}`));

    const html = await read(node, 'b', 'index.html');
    expect(html.body).toBe('<h1>hi</h1>');
    expect(html.headers['content-type']).toBe('text/html');
    expect(html.headers['strata-version']).toBe(result.versions[0]);
    const logo = await read(node, 'b', 'logo.bin');
    expect([...logo.rawPayload]).toEqual([0, 1, 2, 255]);
    expect(logo.headers['content-type']).toBe('application/octet-stream');
    expect((await read(node, 'b', 'gone')).statusCode).toBe(404);
    expect((await read(node, 'other', 'notes.txt')).headers['content-type']).toBe(
      'text/plain; charset=utf-8',
    );

    // All ops share the commit's transaction time.
    const history = await node.app.inject({ url: '/v1/buckets/b/keys/index.html/versions', headers: auth });
    const other = await node.app.inject({ url: '/v1/buckets/other/keys/notes.txt/versions', headers: auth });
    const [first] = (history.json() as { versions: Array<{ hlc: string }> }).versions;
    const [second] = (other.json() as { versions: Array<{ hlc: string }> }).versions;
    expect(first?.hlc).toBe(second?.hlc);
  });

  it('honours ifMatch and effectiveAt per op', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const { versions } = await commitOk(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'one' }],
    });
    const current = versions[0] as string;
    const next = await commitOk(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'k', value: 'two', ifMatch: current },
        {
          kind: 'put',
          bucket: 'b',
          key: 'later',
          value: 'soon',
          effectiveAt: new Date(start + hour).toISOString(),
        },
        { kind: 'put', bucket: 'b', key: 'ms', value: 'soon', effectiveAt: start + hour },
      ],
    });
    expect((await read(node, 'b', 'k')).body).toBe('two');
    expect((await read(node, 'b', 'later')).statusCode).toBe(404);
    expect((await read(node, 'b', 'later', `?at=${start + hour}`)).body).toBe('soon');
    expect((await read(node, 'b', 'ms', `?at=${start + hour}`)).body).toBe('soon');

    const stale = await postCommit(node, {
      ops: [{ kind: 'delete', bucket: 'b', key: 'k', ifMatch: current }],
    });
    expectError(stale, 412, 'STRATA_PRECONDITION_FAILED');
    await commitOk(node, { ops: [{ kind: 'delete', bucket: 'b', key: 'k', ifMatch: next.versions[0] }] });
    expect((await read(node, 'b', 'k')).statusCode).toBe(404);
  });

  it('is atomic: one failed precondition refuses the whole commit with 412', async () => {
    const node = startNode();
    const { versions } = await commitOk(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'one' }],
    });
    await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'two' }] });
    const before = await digest(node);

    const response = await postCommit(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'new-1', value: 'x' },
        { kind: 'put', bucket: 'b', key: 'k', value: 'three', ifMatch: versions[0] },
        { kind: 'put', bucket: 'b', key: 'new-2', value: 'y' },
      ],
    });
    expectError(response, 412, 'STRATA_PRECONDITION_FAILED');
    expect(await digest(node)).toBe(before);
    expect((await read(node, 'b', 'new-1')).statusCode).toBe(404);
    expect((await read(node, 'b', 'new-2')).statusCode).toBe(404);
    expect((await read(node, 'b', 'k')).body).toBe('two');

    // Other refusals inside a commit are atomic as well.
    const missingDelete = await postCommit(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'new-1', value: 'x' },
        { kind: 'delete', bucket: 'b', key: 'never-existed' },
      ],
    });
    expectError(missingDelete, 404, 'STRATA_NOT_FOUND');
    const twice = await postCommit(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'new-1', value: 'x' },
        { kind: 'put', bucket: 'b', key: 'new-1', value: 'y' },
      ],
    });
    expectError(twice, 400, 'STRATA_BAD_REQUEST');
    const badRetract = await postCommit(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'new-1', value: 'x' },
        { kind: 'retract', target: unknownVersion },
      ],
    });
    expectError(badRetract, 422, 'STRATA_UNKNOWN_VERSION');
    expect(await digest(node)).toBe(before);
    expect((await read(node, 'b', 'new-1')).statusCode).toBe(404);
  });

  it('retracts a version: reads fall back to the previous one, history keeps both', async () => {
    const node = startNode();
    const first = (await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'good' }] }))
      .versions[0] as string;
    const bad = (await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'bad' }] }))
      .versions[0] as string;
    const retraction = await commitOk(node, { message: 'withdraw', ops: [{ kind: 'retract', target: bad }] });

    const current = await read(node, 'b', 'k');
    expect(current.body).toBe('good');
    expect(current.headers['strata-version']).toBe(first);
    const history = await node.app.inject({ url: '/v1/buckets/b/keys/k/versions', headers: auth });
    const versions = (history.json() as { versions: Array<Record<string, unknown>> }).versions;
    expect(versions.map((entry) => entry.version)).toEqual([retraction.versions[0], bad, first]);
    expect(versions[1]).toMatchObject({ retracted: true, retractedBy: retraction.versions[0] });
    // The commit that wrote it says so too, as history does.
    const written = await node.app.inject({ url: `/v1/commits/${bad.split('.')[0]}`, headers: auth });
    expect((written.json() as { versions: unknown[] }).versions).toEqual([
      expect.objectContaining({ version: bad, retracted: true, retractedBy: retraction.versions[0] }),
    ]);

    const before = await digest(node);
    expectError(await postCommit(node, { ops: [{ kind: 'retract', target: bad }] }), 409, 'STRATA_CONFLICT');
    expectError(
      await postCommit(node, { ops: [{ kind: 'retract', target: retraction.versions[0] }] }),
      400,
      'STRATA_BAD_REQUEST',
    );
    expectError(
      await postCommit(node, { ops: [{ kind: 'retract', target: unknownVersion }] }),
      422,
      'STRATA_UNKNOWN_VERSION',
    );
    expect(await digest(node)).toBe(before);
  });

  it('records the message and the author, readable with GET /v1/commits/{id}', async () => {
    const clock = new ManualClock(start);
    const node = startNode({ clock });
    const writer = await tokenHeaders(node, 'write', 'deploy-bot');
    const response = await postCommit(
      node,
      {
        message: 'deploy 42',
        ops: [
          { kind: 'put', bucket: 'site', key: 'a', value: 'alpha', contentType: 'text/plain' },
          { kind: 'put', bucket: 'site', key: 'b', value: 'beta' },
        ],
      },
      writer,
    );
    expect(response.statusCode, response.body).toBe(201);
    const { commit, versions } = response.json() as CommitResult;

    const fetched = await node.app.inject({ url: `/v1/commits/${commit}`, headers: auth });
    expect(fetched.statusCode).toBe(200);
    const body = fetched.json() as Record<string, unknown> & { versions: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ commit, message: 'deploy 42', author: 'deploy-bot' });
    expect(body.origin).toMatch(/^[0-9a-f]{16}$/);
    expect(body.seq).toBeTypeOf('number');
    expect(body.hlc).toMatch(/^\d{15}\.\d{6}\.[0-9a-f]{16}$/);
    expect(body.versions.map((entry) => entry.version)).toEqual(versions);
    expect(body.versions[0]).toMatchObject({
      bucket: 'site',
      key: 'a',
      kind: 'put',
      contentType: 'text/plain',
      size: 5,
      txTime: new Date(start).toISOString(),
      effectiveAt: new Date(start).toISOString(),
    });
  });

  it('answers 422 listing every blob the ops name that the store lacks, writing nothing', async () => {
    const node = startNode();
    const uploaded = createHash('sha256').update('uploaded').digest('hex');
    const put = await node.app.inject({
      method: 'PUT',
      url: `/v1/blobs/${uploaded}`,
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: 'uploaded',
    });
    expect(put.statusCode, put.body).toBe(201);
    const before = await digest(node);
    const [first, second] = ['1'.repeat(64), '2'.repeat(64)];
    const response = await postCommit(node, {
      ops: [
        { kind: 'put', bucket: 'b', key: 'ok', blob: uploaded },
        { kind: 'put', bucket: 'b', key: 'x', blob: first },
        { kind: 'put', bucket: 'b', key: 'y', blob: second },
        { kind: 'put', bucket: 'b', key: 'z', blob: first },
      ],
    });
    expectError(response, 422, 'STRATA_UNKNOWN_BLOB');
    expect(response.json().error.missing).toEqual([first, second]);
    expect(await digest(node)).toBe(before);
  });

  it('refuses a field the kind of op does not take, and an op content type that is not a media type', async () => {
    const node = startNode();
    const { versions } = await commitOk(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'live', value: 'kept' }],
    });
    const before = await digest(node);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ kind: 'retract', target: versions[0], ifMatch: `${'0'.repeat(64)}.0` }, '"ifMatch"'],
      [{ kind: 'retract', target: versions[0], bucket: 'other' }, '"bucket"'],
      [{ kind: 'delete', bucket: 'b', key: 'live', value: 'x' }, '"value"'],
      [{ kind: 'delete', bucket: 'b', key: 'live', contentType: 'text/plain' }, '"contentType"'],
      [{ kind: 'put', bucket: 'b', key: 'k', value: 'x', target: versions[0] }, '"target"'],
      [
        { kind: 'put', bucket: 'b', key: 'k', value: 'x', contentType: 'not a media type' },
        'not a valid media type',
      ],
      [{ kind: 'put', bucket: 'b', key: 'k', value: 'x', contentType: '' }, 'not a valid media type'],
      [{ kind: 'toString', bucket: 'b', key: 'k' }, 'kind must be'],
    ];
    for (const [op, named] of cases) {
      const response = await postCommit(node, { ops: [op] });
      expectError(response, 400, 'STRATA_BAD_REQUEST');
      expect(response.json().error.message, JSON.stringify(op)).toContain(named);
    }
    expect(await digest(node)).toBe(before);
  });

  it('refuses malformed JSON, other media types and oversized bodies', async () => {
    const node = startNode({ limits: { jsonBodyBytesMax: 4096, objectBytesMax: 1024 } });
    await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'anchor', value: 'kept' }] });
    const before = await digest(node);

    expectError(await postCommit(node, '{"ops": ['), 400, 'STRATA_BAD_REQUEST');
    expectError(await postCommit(node, '{"ops": [] "x"}'), 400, 'STRATA_BAD_REQUEST');
    expectError(
      await postCommit(node, '{"__proto__": {"polluted": true}, "ops": []}'),
      400,
      'STRATA_BAD_REQUEST',
    );
    expectError(await postCommit(node, ''), 400, 'STRATA_BAD_REQUEST');
    // A stray byte inside a string would otherwise be stored as U+FFFD.
    const latin1 = Buffer.from(
      '{"ops":[{"kind":"put","bucket":"b","key":"anchor","value":"caf\xe9"}]}',
      'latin1',
    );
    const notUtf8 = await postCommit(node, latin1);
    expectError(notUtf8, 400, 'STRATA_BAD_REQUEST');
    expect(notUtf8.json().error.message).toContain('UTF-8');
    await expectJsonOnly(node, '/v1/commits', '{"ops":[{"kind":"put","bucket":"b","key":"x","value":"x"}]}');
    const noType = await node.app.inject({ method: 'POST', url: '/v1/commits', headers: auth, payload: 'x' });
    expectError(noType, 415, 'STRATA_UNSUPPORTED_MEDIA_TYPE');
    const bodyTooLarge = await postCommit(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'x', value: 'x'.repeat(5000) }],
    });
    expectError(bodyTooLarge, 413, 'STRATA_TOO_LARGE');
    expect(bodyTooLarge.json().error.message).toContain('limit of 4096 bytes');
    const valueTooLarge = await postCommit(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'x', value: 'x'.repeat(1025) }],
    });
    expectError(valueTooLarge, 413, 'STRATA_TOO_LARGE');
    const base64TooLarge = await postCommit(node, {
      ops: [{ kind: 'put', bucket: 'b', key: 'x', valueBase64: Buffer.alloc(1100).toString('base64') }],
    });
    expectError(base64TooLarge, 413, 'STRATA_TOO_LARGE');

    expect(await digest(node)).toBe(before);
    expect((await read(node, 'b', 'anchor')).body).toBe('kept');
  });

  describe('refuses bodies of the wrong shape, writing nothing', () => {
    let node: TempNode;
    let before: string;
    beforeEach(async () => {
      node = startNode();
      await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'anchor', value: 'kept' }] });
      before = await digest(node);
    });
    afterEach(async () => {
      expect(await digest(node)).toBe(before);
      expect((await read(node, 'b', 'anchor')).body).toBe('kept');
    });

    const put = { kind: 'put', bucket: 'b', key: 'k', value: 'v' };
    const cases: Array<[string, unknown, number, string]> = [
      ['an array', [put], 400, 'STRATA_BAD_REQUEST'],
      ['a string', '"ops"', 400, 'STRATA_BAD_REQUEST'],
      ['null', 'null', 400, 'STRATA_BAD_REQUEST'],
      ['a number', '42', 400, 'STRATA_BAD_REQUEST'],
      ['no ops', { message: 'm' }, 400, 'STRATA_BAD_REQUEST'],
      ['empty ops', { ops: [] }, 400, 'STRATA_BAD_REQUEST'],
      ['ops as an object', { ops: { 0: put } }, 400, 'STRATA_BAD_REQUEST'],
      [
        'more ops than a commit may hold',
        { ops: Array.from({ length: opsPerCommitMax + 1 }, (_, index) => ({ ...put, key: `k${index}` })) },
        400,
        'STRATA_BAD_REQUEST',
      ],
      ['a message that is not a string', { message: 7, ops: [put] }, 400, 'STRATA_BAD_REQUEST'],
      [
        'a message over the limit',
        { message: 'm'.repeat(messageBytesMax + 1), ops: [put] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      [
        'a message over the limit in bytes',
        { message: 'é'.repeat(messageBytesMax / 2 + 1), ops: [put] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      ['an op that is not an object', { ops: ['put'] }, 400, 'STRATA_BAD_REQUEST'],
      ['an op that is null', { ops: [null] }, 400, 'STRATA_BAD_REQUEST'],
      ['an unknown op field', { ops: [{ ...put, parents: [] }] }, 400, 'STRATA_BAD_REQUEST'],
      ['an unknown kind', { ops: [{ ...put, kind: 'upsert' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['no kind', { ops: [{ bucket: 'b', key: 'k', value: 'v' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['no bucket', { ops: [{ kind: 'put', key: 'k', value: 'v' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['a numeric key', { ops: [{ ...put, key: 5 }] }, 400, 'STRATA_BAD_REQUEST'],
      ['an invalid bucket', { ops: [{ ...put, bucket: 'Bad' }] }, 400, 'STRATA_INVALID_NAME'],
      ['a system bucket', { ops: [{ ...put, bucket: '_auth' }] }, 400, 'STRATA_INVALID_NAME'],
      ['a 64-character bucket', { ops: [{ ...put, bucket: 'b'.repeat(64) }] }, 400, 'STRATA_INVALID_NAME'],
      ['an empty key', { ops: [{ ...put, key: '' }] }, 400, 'STRATA_INVALID_NAME'],
      ['a key over 1024 bytes', { ops: [{ ...put, key: 'é'.repeat(513) }] }, 400, 'STRATA_INVALID_NAME'],
      ['a key with a control character', { ops: [{ ...put, key: 'a\nb' }] }, 400, 'STRATA_INVALID_NAME'],
      [
        'a delete of an invalid key',
        { ops: [{ kind: 'delete', bucket: 'b', key: '' }] },
        400,
        'STRATA_INVALID_NAME',
      ],
      ['a value that is not a string', { ops: [{ ...put, value: 12 }] }, 400, 'STRATA_BAD_REQUEST'],
      ['both value and valueBase64', { ops: [{ ...put, valueBase64: 'AA==' }] }, 400, 'STRATA_BAD_REQUEST'],
      [
        'neither value nor valueBase64',
        { ops: [{ kind: 'put', bucket: 'b', key: 'k' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      [
        'invalid base64',
        { ops: [{ kind: 'put', bucket: 'b', key: 'k', valueBase64: 'a*b=' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      [
        'base64 of a wrong length',
        { ops: [{ kind: 'put', bucket: 'b', key: 'k', valueBase64: 'AAA' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      ['a numeric contentType', { ops: [{ ...put, contentType: 1 }] }, 400, 'STRATA_BAD_REQUEST'],
      [
        'a contentType over the limit',
        { ops: [{ ...put, contentType: 'x'.repeat(contentTypeBytesMax + 1) }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      [
        'a contentType with a line break, which could not be sent back as a header',
        { ops: [{ ...put, contentType: 'text/plain\r\nX-Injected: 1' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      [
        'a contentType with non-ASCII',
        { ops: [{ ...put, contentType: 'text/é' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
      ['a misspelt top-level field', { ops: [put], mesage: 'typo' }, 400, 'STRATA_BAD_REQUEST'],
      ['a value with a lone surrogate', { ops: [{ ...put, value: 'a\ud800b' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['a message with a lone surrogate', { ops: [put], message: 'x\udc00' }, 400, 'STRATA_BAD_REQUEST'],
      ['a malformed ifMatch', { ops: [{ ...put, ifMatch: 'abc' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['a numeric ifMatch', { ops: [{ ...put, ifMatch: 12 }] }, 400, 'STRATA_BAD_REQUEST'],
      [
        'an ifMatch of an unknown version',
        { ops: [{ ...put, ifMatch: unknownVersion }] },
        412,
        'STRATA_PRECONDITION_FAILED',
      ],
      [
        'an impossible date',
        { ops: [{ ...put, effectiveAt: '2026-02-30T00:00:00Z' }] },
        400,
        'STRATA_INVALID_TIME',
      ],
      ['a date without a time', { ops: [{ ...put, effectiveAt: '2026-02-01' }] }, 400, 'STRATA_INVALID_TIME'],
      ['a negative effectiveAt', { ops: [{ ...put, effectiveAt: -1 }] }, 400, 'STRATA_INVALID_TIME'],
      ['a fractional effectiveAt', { ops: [{ ...put, effectiveAt: 1.5 }] }, 400, 'STRATA_INVALID_TIME'],
      ['a boolean effectiveAt', { ops: [{ ...put, effectiveAt: true }] }, 400, 'STRATA_INVALID_TIME'],
      ['a retract without target', { ops: [{ kind: 'retract' }] }, 400, 'STRATA_BAD_REQUEST'],
      ['a malformed retract target', { ops: [{ kind: 'retract', target: 'v1' }] }, 400, 'STRATA_BAD_REQUEST'],
      [
        'a retract of an unknown version',
        { ops: [{ kind: 'retract', target: unknownVersion }] },
        422,
        'STRATA_UNKNOWN_VERSION',
      ],
      [
        'one bad op after good ones',
        { ops: [put, { ...put, key: 'k2', kind: 'nope' }] },
        400,
        'STRATA_BAD_REQUEST',
      ],
    ];
    it.each(cases)('%s', async (_name, body, status, code) => {
      expectError(await postCommit(node, body), status, code);
    });
  });
});

describe('GET /v1/commits/{id}', () => {
  it('refuses malformed ids with 400 and answers unknown ones with 404', async () => {
    const node = startNode();
    const { commit } = await commitOk(node, { ops: [{ kind: 'put', bucket: 'b', key: 'k', value: 'v' }] });
    for (const id of ['abc', commit.toUpperCase(), `${commit}0`, `${commit}.0`, 'g'.repeat(64)]) {
      expectError(
        await node.app.inject({ url: `/v1/commits/${id}`, headers: auth }),
        400,
        'STRATA_BAD_REQUEST',
      );
    }
    expectError(
      await node.app.inject({ url: `/v1/commits/${'0'.repeat(64)}`, headers: auth }),
      404,
      'STRATA_NOT_FOUND',
    );
    expect((await node.app.inject({ url: `/v1/commits/${commit}`, headers: auth })).statusCode).toBe(200);
  });

  it('needs read access to every bucket the commit touches', async () => {
    const node = startNode();
    const { commit } = await commitOk(node, {
      ops: [{ kind: 'put', bucket: 'private', key: 'k', value: 'v' }],
    });
    expectError(await node.app.inject({ url: `/v1/commits/${commit}` }), 401, 'STRATA_UNAUTHORIZED');

    const reader = await tokenHeaders(node, 'read', 'reader');
    expect((await node.app.inject({ url: `/v1/commits/${commit}`, headers: reader })).statusCode).toBe(200);

    // The commit that created the token lives in a system bucket: admins only.
    const changes = await node.app.inject({ url: '/v1/changes', headers: auth });
    const tokenCommit = (
      changes.json() as { changes: Array<{ bucket: string; commit: string }> }
    ).changes.find((change) => change.bucket === '_auth')?.commit;
    expect(tokenCommit).toBeDefined();
    expectError(
      await node.app.inject({ url: `/v1/commits/${tokenCommit}`, headers: reader }),
      403,
      'STRATA_FORBIDDEN',
    );
    expect((await node.app.inject({ url: `/v1/commits/${tokenCommit}`, headers: auth })).statusCode).toBe(
      200,
    );
  });
});
