import type { InjectOptions } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bearer, createToken, expectError, tokenHeaders } from '../../test/support/api.js';
import { adminToken, auth, type TempNode, tempNode } from '../../test/support/temp-node.js';
import type { Role } from '../auth/tokens.js';

const rank: Record<Role | 'none', number> = { none: 0, read: 1, write: 2, admin: 3 };

describe('roles: admin > write > read', () => {
  let node: TempNode;
  const headersOf: Record<Role | 'none', Record<string, string>> = {
    none: {},
    read: {},
    write: {},
    admin: auth,
  };
  let blob: string;
  let commit: string;
  let spareToken: string;

  beforeAll(async () => {
    node = tempNode();
    headersOf.read = await tokenHeaders(node, 'read');
    headersOf.write = await tokenHeaders(node, 'write');
    spareToken = (await createToken(node, 'read', 'spare')).id;
    const put = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/k',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: 'value',
    });
    commit = (put.json() as { commit: string }).commit;
    const history = await node.app.inject({ url: '/v1/buckets/b/keys/k/versions', headers: auth });
    blob = (history.json() as { versions: Array<{ blob: string }> }).versions[0]?.blob as string;
  });
  afterAll(async () => {
    await node.dispose();
  });

  const json = { 'content-type': 'application/json' };
  const endpoints: Array<[string, Role | 'none', () => InjectOptions]> = [
    ['GET a key', 'read', () => ({ url: '/v1/buckets/b/keys/k' })],
    ['HEAD a key', 'read', () => ({ method: 'HEAD', url: '/v1/buckets/b/keys/k' })],
    ['GET a key history', 'read', () => ({ url: '/v1/buckets/b/keys/k/versions' })],
    ['GET the keys of a bucket', 'read', () => ({ url: '/v1/buckets/b/keys' })],
    ['GET the buckets', 'read', () => ({ url: '/v1/buckets' })],
    ['GET bucket settings', 'read', () => ({ url: '/v1/buckets/b/settings' })],
    ['GET a commit', 'read', () => ({ url: `/v1/commits/${commit}` })],
    ['GET the change feed', 'read', () => ({ url: '/v1/changes' })],
    ['GET a bucket change feed', 'read', () => ({ url: '/v1/changes?bucket=b' })],
    ['GET a blob', 'read', () => ({ url: `/v1/blobs/${blob}` })],
    ['GET the digest', 'read', () => ({ url: '/v1/admin/digest' })],
    ['PUT a key', 'write', () => ({ method: 'PUT', url: '/v1/buckets/b/keys/k', payload: 'value' })],
    ['POST a key', 'write', () => ({ method: 'POST', url: '/v1/buckets/b/keys', payload: 'new' })],
    ['DELETE a key', 'write', () => ({ method: 'DELETE', url: '/v1/buckets/b/keys/deletable' })],
    [
      'POST a commit',
      'write',
      () => ({
        method: 'POST',
        url: '/v1/commits',
        headers: json,
        payload: JSON.stringify({ ops: [{ kind: 'put', bucket: 'b', key: 'c', value: 'v' }] }),
      }),
    ],
    [
      'PUT bucket settings',
      'admin',
      () => ({
        method: 'PUT',
        url: '/v1/buckets/other/settings',
        headers: json,
        payload: '{"publicRead":false}',
      }),
    ],
    [
      'POST a token',
      'admin',
      () => ({ method: 'POST', url: '/v1/tokens', headers: json, payload: '{"role":"read","name":"n"}' }),
    ],
    ['GET the tokens', 'admin', () => ({ url: '/v1/tokens' })],
    ['DELETE a token', 'admin', () => ({ method: 'DELETE', url: `/v1/tokens/${spareToken}` })],
    ['POST reindex', 'admin', () => ({ method: 'POST', url: '/v1/admin/reindex' })],
    ['GET /health', 'none', () => ({ url: '/health' })],
    ['GET /metrics', 'none', () => ({ url: '/metrics' })],
  ];

  for (const [name, needed, request] of endpoints) {
    const article = needed === 'admin' ? 'an' : 'a';
    it(`${name} needs ${needed === 'none' ? 'no token' : `${article} ${needed} token`}`, async () => {
      for (const role of ['none', 'read', 'write', 'admin'] as const) {
        const options = request();
        const response = await node.app.inject({
          ...options,
          headers: { ...(options.headers as Record<string, string>), ...headersOf[role] },
        } as InjectOptions);
        if (rank[role] >= rank[needed]) {
          expect([401, 403], `${role}: ${response.body}`).not.toContain(response.statusCode);
          expect(response.statusCode, `${role}: ${response.body}`).toBeLessThan(500);
        } else if (options.method === 'HEAD') {
          // A HEAD response has no body to carry the error code.
          expect(response.statusCode, role).toBe(role === 'none' ? 401 : 403);
        } else if (role === 'none') {
          expectError(response, 401, 'STRATA_UNAUTHORIZED');
        } else {
          expectError(response, 403, 'STRATA_FORBIDDEN');
        }
      }
    });
  }
});

describe('the Authorization header', () => {
  let node: TempNode;
  beforeEach(() => {
    node = tempNode();
  });
  afterEach(async () => {
    await node.dispose();
  });

  it('accepts "Bearer <token>" with any case of the scheme', async () => {
    for (const value of [`Bearer ${adminToken}`, `bearer ${adminToken}`, `BEARER   ${adminToken}  `]) {
      expect(
        (await node.app.inject({ url: '/v1/tokens', headers: { authorization: value } })).statusCode,
      ).toBe(200);
    }
  });

  it('refuses anything else with 401 STRATA_UNAUTHORIZED, even on public endpoints', async () => {
    const reader = await createToken(node, 'read');
    const values = [
      `Basic ${Buffer.from(`admin:${adminToken}`).toString('base64')}`,
      '',
      'Bearer',
      'Bearer ',
      `Bearer ${adminToken} extra`,
      `Token ${adminToken}`,
      adminToken,
      'Bearer wrong-token',
      `Bearer ${adminToken}x`,
      `Bearer ${'a'.repeat(300)}`,
      // The last character changed (to a different one: a random token may already end in A).
      `Bearer ${reader.token.slice(0, -1)}${reader.token.endsWith('A') ? 'B' : 'A'}`,
      `Bearer strata_0123456789abcdef_${'A'.repeat(43)}`,
      `Bearer ${reader.token.replace(reader.id, '0123456789abcdef')}`,
    ];
    for (const value of values) {
      for (const url of ['/v1/buckets/b/keys/k', '/health']) {
        expectError(
          await node.app.inject({ url, headers: { authorization: value } }),
          401,
          'STRATA_UNAUTHORIZED',
        );
      }
    }
    const put = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/k',
      headers: { authorization: 'Bearer wrong-token' },
      payload: 'x',
    });
    expectError(put, 401, 'STRATA_UNAUTHORIZED');
    expect((await node.app.inject({ url: '/v1/buckets/b/keys/k', headers: auth })).statusCode).toBe(404);
  });

  it('refuses a revoked token with 401', async () => {
    const writer = await createToken(node, 'write');
    const put = () =>
      node.app.inject({
        method: 'PUT',
        url: '/v1/buckets/b/keys/k',
        headers: bearer(writer.token),
        payload: 'x',
      });
    expect((await put()).statusCode).toBe(201);
    const revoked = await node.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${writer.id}`,
      headers: auth,
    });
    expect(revoked.statusCode).toBe(200);
    expectError(await put(), 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ url: '/v1/buckets/b/keys/k', headers: bearer(writer.token) }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });

  it('does not let a write token reinstate a revoked token by retracting its revocation', async () => {
    // Tokens live in the system bucket `_auth`; only admins manage them. A retract names a
    // version, not a bucket, so it must be checked against the bucket of the version it withdraws.
    const writer = await createToken(node, 'write');
    const reader = await createToken(node, 'read');
    const revoked = await node.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${reader.id}`,
      headers: auth,
    });
    const revocation = (revoked.json() as { version: string }).version;

    const retract = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: bearer(writer.token),
      payload: { ops: [{ kind: 'retract', target: revocation }] },
    });
    expectError(retract, 403, 'STRATA_FORBIDDEN');
    // Nor an admin: a revocation is final.
    const byAdmin = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: auth,
      payload: { ops: [{ kind: 'retract', target: revocation }] },
    });
    expectError(byAdmin, 409, 'STRATA_CONFLICT');
    expect(byAdmin.json().error.message).toBe(
      `${revocation} revokes a token, and a revocation is final: create a new token instead`,
    );
    expectError(
      await node.app.inject({ url: '/v1/buckets/b/keys', headers: bearer(reader.token) }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });
});

describe('public buckets', () => {
  let node: TempNode;
  beforeEach(async () => {
    node = tempNode();
    for (const bucket of ['site', 'private']) {
      const response = await node.app.inject({
        method: 'PUT',
        url: `/v1/buckets/${bucket}/keys/index.html`,
        headers: { ...auth, 'content-type': 'text/html' },
        payload: `<h1>${bucket}</h1>`,
      });
      expect(response.statusCode).toBe(201);
    }
  });
  afterEach(async () => {
    await node.dispose();
  });

  async function setPublic(bucket: string, publicRead: unknown, headers: Record<string, string> = auth) {
    return node.app.inject({
      method: 'PUT',
      url: `/v1/buckets/${bucket}/settings`,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: JSON.stringify({ publicRead }),
    });
  }

  it('are readable without a token; everything else still needs one', async () => {
    expectError(
      await node.app.inject({ url: '/v1/buckets/site/keys/index.html' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expect((await setPublic('site', true)).statusCode).toBe(200);

    const page = await node.app.inject({ url: '/v1/buckets/site/keys/index.html' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toBe('<h1>site</h1>');
    expect(
      (await node.app.inject({ method: 'HEAD', url: '/v1/buckets/site/keys/index.html' })).statusCode,
    ).toBe(200);
    expect((await node.app.inject({ url: '/v1/buckets/site/keys/index.html/versions' })).statusCode).toBe(
      200,
    );
    const listing = await node.app.inject({ url: '/v1/buckets/site/keys' });
    expect((listing.json() as { keys: Array<{ key: string }> }).keys.map((entry) => entry.key)).toEqual([
      'index.html',
    ]);
    expect((await node.app.inject({ url: '/v1/buckets/site/settings' })).json()).toEqual({
      bucket: 'site',
      publicRead: true,
    });
    expect((await node.app.inject({ url: '/v1/buckets' })).json()).toEqual({
      buckets: [{ name: 'site', publicRead: true }],
    });
    expectError(await node.app.inject({ url: '/v1/buckets/site/keys/missing' }), 404, 'STRATA_NOT_FOUND');

    // Writes, other buckets and the blob store still need a token.
    const write = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/site/keys/index.html',
      payload: 'defaced',
    });
    expectError(write, 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ method: 'DELETE', url: '/v1/buckets/site/keys/index.html' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expectError(
      await node.app.inject({ url: '/v1/buckets/private/keys/index.html' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expectError(await node.app.inject({ url: '/v1/buckets/private/keys' }), 401, 'STRATA_UNAUTHORIZED');
    expect((await node.app.inject({ url: '/v1/buckets/site/keys/index.html', headers: auth })).body).toBe(
      '<h1>site</h1>',
    );

    // Turning it off again closes it.
    expect((await setPublic('site', false)).statusCode).toBe(200);
    expectError(
      await node.app.inject({ url: '/v1/buckets/site/keys/index.html' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expectError(await node.app.inject({ url: '/v1/buckets' }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('can be made public by an admin only', async () => {
    const writer = await createToken(node, 'write');
    expectError(await setPublic('site', true, bearer(writer.token)), 403, 'STRATA_FORBIDDEN');
    expectError(await setPublic('site', true, {}), 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ url: '/v1/buckets/site/keys/index.html' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });
});
