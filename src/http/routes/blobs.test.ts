import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectError,
  expectJsonOnly,
  makePublic,
  postJson,
  tokenHeaders,
} from '../../../test/support/api.js';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('GET and HEAD /v1/blobs/{hash}', () => {
  let node: TempNode;
  const small = Buffer.from('small blob, stored inline');
  // Over the 64 KiB inline limit: stored as a file and streamed.
  const large = randomBytes(200 * 1024);
  let reader: Record<string, string>;

  beforeAll(async () => {
    node = tempNode();
    for (const [key, bytes] of [
      ['small', small],
      ['large', large],
      ['empty', Buffer.alloc(0)],
    ] as const) {
      const response = await node.app.inject({
        method: 'PUT',
        url: `/v1/buckets/files/keys/${key}`,
        headers: { ...auth, 'content-type': 'application/x-test' },
        payload: bytes,
      });
      expect(response.statusCode).toBe(201);
    }
    reader = await tokenHeaders(node, 'read', 'reader');
  });
  afterAll(async () => {
    await node.dispose();
  });

  it('serves a blob named in a key history by its hash, as immutable bytes', async () => {
    const history = await node.app.inject({ url: '/v1/buckets/files/keys/small/versions', headers: auth });
    const blob = (history.json() as { versions: Array<{ blob: string }> }).versions[0]?.blob;
    expect(blob).toBe(sha256(small));

    const response = await node.app.inject({ url: `/v1/blobs/${blob}`, headers: reader });
    expect(response.statusCode).toBe(200);
    expect(Buffer.compare(response.rawPayload, small)).toBe(0);
    expect(response.headers['content-type']).toBe('application/octet-stream');
    expect(response.headers['cache-control']).toContain('immutable');
    expect(response.headers.etag).toBe(`"${blob}"`);
    expect(response.headers['content-length']).toBe(String(small.length));
  });

  it('streams a large, file-backed blob and its ranges', async () => {
    const hash = sha256(large);
    const whole = await node.app.inject({ url: `/v1/blobs/${hash}`, headers: auth });
    expect(whole.statusCode).toBe(200);
    expect(sha256(whole.rawPayload)).toBe(hash);

    const part = await node.app.inject({
      url: `/v1/blobs/${hash}`,
      headers: { ...auth, range: 'bytes=100000-100099' },
    });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100000-100099/${large.length}`);
    expect(Buffer.compare(part.rawPayload, large.subarray(100000, 100100))).toBe(0);

    const suffix = await node.app.inject({
      url: `/v1/blobs/${hash}`,
      headers: { ...auth, range: 'bytes=-10' },
    });
    expect(Buffer.compare(suffix.rawPayload, large.subarray(large.length - 10))).toBe(0);

    const outside = await node.app.inject({
      url: `/v1/blobs/${hash}`,
      headers: { ...auth, range: `bytes=${large.length}-` },
    });
    expectError(outside, 416, 'STRATA_RANGE_NOT_SATISFIABLE');
    expect(outside.headers['content-range']).toBe(`bytes */${large.length}`);
  });

  it('serves the empty blob', async () => {
    const response = await node.app.inject({ url: `/v1/blobs/${sha256('')}`, headers: auth });
    expect(response.statusCode).toBe(200);
    expect(response.rawPayload.length).toBe(0);
    expect(response.headers['content-length']).toBe('0');
  });

  it('answers HEAD with the headers only', async () => {
    const hash = sha256(large);
    const response = await node.app.inject({ method: 'HEAD', url: `/v1/blobs/${hash}`, headers: auth });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(large.length));
    expect(response.headers.etag).toBe(`"${hash}"`);
    expect(response.body).toBe('');
    const missing = await node.app.inject({
      method: 'HEAD',
      url: `/v1/blobs/${'0'.repeat(64)}`,
      headers: auth,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('answers If-None-Match with the blob ETag with 304', async () => {
    const hash = sha256(small);
    const response = await node.app.inject({
      url: `/v1/blobs/${hash}`,
      headers: { ...auth, 'if-none-match': `"${hash}"` },
    });
    expect(response.statusCode).toBe(304);
    expect(response.body).toBe('');
  });

  it('refuses malformed hashes with 400 and answers unknown ones with 404', async () => {
    for (const hash of [
      '',
      'abc',
      sha256(small).toUpperCase(),
      `${sha256(small)}0`,
      'z'.repeat(64),
      '%20'.repeat(3),
    ]) {
      expectError(
        await node.app.inject({ url: `/v1/blobs/${hash}`, headers: auth }),
        400,
        'STRATA_BAD_REQUEST',
      );
    }
    expectError(
      await node.app.inject({ url: `/v1/blobs/${'0'.repeat(64)}`, headers: auth }),
      404,
      'STRATA_NOT_FOUND',
    );
  });

  it('needs a token even when the blob belongs to a public bucket', async () => {
    await makePublic(node, 'files');
    expect((await node.app.inject({ url: '/v1/buckets/files/keys/small' })).statusCode).toBe(200);
    expectError(await node.app.inject({ url: `/v1/blobs/${sha256(small)}` }), 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ url: `/v1/blobs/${sha256(small)}`, headers: { authorization: 'Bearer nope' } }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });

  it('answers POST /v1/blobs/missing with the hashes it does not hold, and refuses other bodies', async () => {
    const unknown = '0'.repeat(64);
    const asked = await postJson(node, '/v1/blobs/missing', {
      hashes: [sha256(small), unknown, sha256(large)],
    });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json()).toEqual({ missing: [unknown] });
    for (const body of [
      {},
      { hashes: 'abc' },
      { hashes: ['abc'] },
      { hashes: [unknown], since: 1 },
      '[]',
      '{"hashes":[',
    ]) {
      expectError(await postJson(node, '/v1/blobs/missing', body), 400, 'STRATA_BAD_REQUEST');
    }
    // A misspelt member is named, not reported as a missing one.
    const misspelt = await postJson(node, '/v1/blobs/missing', { hash: [] });
    expectError(misspelt, 400, 'STRATA_BAD_REQUEST');
    expect(misspelt.json().error.message).toContain('unknown field "hash"');
    await expectJsonOnly(node, '/v1/blobs/missing', JSON.stringify({ hashes: [unknown] }));
    const undeclared = await node.app.inject({
      method: 'POST',
      url: '/v1/blobs/missing',
      headers: auth,
      payload: JSON.stringify({ hashes: [unknown] }),
    });
    expectError(undeclared, 415, 'STRATA_UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('PUT /v1/blobs/{hash}', () => {
  let node: TempNode;
  beforeAll(() => {
    node = tempNode();
  });
  afterAll(async () => {
    await node.close();
  });

  async function upload(hash: string, bytes: Buffer) {
    return node.app.inject({
      method: 'PUT',
      url: `/v1/blobs/${hash}`,
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
  }

  it('refuses bytes that do not hash to the name, whether or not the store holds that hash', async () => {
    for (const bytes of [Buffer.from('inline bytes'), randomBytes(100 * 1024)]) {
      const hash = sha256(bytes);
      const wrong = Buffer.from('garbage');
      expectError(await upload(hash, wrong), 400, 'STRATA_BAD_REQUEST');
      const created = await upload(hash, bytes);
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json()).toMatchObject({ blob: hash, created: true });
      // Held now: the wrong bytes are still wrong, the right ones are taken as stored already.
      const refused = await upload(hash, wrong);
      expectError(refused, 400, 'STRATA_BAD_REQUEST');
      expect(refused.json().error.message).toContain(`body hashes to ${sha256(wrong)}, not ${hash}`);
      const again = await upload(hash, bytes);
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json()).toEqual({ blob: hash, created: false });
      expect(
        (await node.app.inject({ url: `/v1/blobs/${hash}`, headers: auth })).rawPayload.equals(bytes),
      ).toBe(true);
    }
  });

  it('says created once when the same bytes are uploaded several times at once', async () => {
    const bytes = randomBytes(100 * 1024);
    const answers = await Promise.all(Array.from({ length: 6 }, () => upload(sha256(bytes), bytes)));
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    const stored = await node.app.inject({ url: `/v1/blobs/${sha256(bytes)}`, headers: auth });
    expect(stored.rawPayload.equals(bytes)).toBe(true);
  });
});
