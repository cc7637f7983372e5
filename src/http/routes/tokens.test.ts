import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bearer, expectError, expectJsonOnly, postJson } from '../../../test/support/api.js';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';

const tokenPattern = /^strata_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;

let node: TempNode;
beforeEach(() => {
  node = tempNode();
});
afterEach(async () => {
  await node.dispose();
});

interface Created {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  token: string;
}

/** POST /v1/tokens with `body` as JSON (a string as it is). */
async function create(
  body: unknown,
  headers: Record<string, string> = auth,
): Promise<LightMyRequestResponse> {
  return postJson(node, '/v1/tokens', body, headers);
}

async function createOk(role: string, name: string): Promise<Created> {
  const response = await create({ role, name });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as Created;
}

async function digest(): Promise<string> {
  return ((await node.app.inject({ url: '/v1/admin/digest', headers: auth })).json() as { digest: string })
    .digest;
}

describe('POST /v1/tokens', () => {
  it('creates a token of the given role, shown once', async () => {
    const created = await createOk('write', 'ci deploy');
    expect(created).toMatchObject({ name: 'ci deploy', role: 'write' });
    expect(created.token).toMatch(tokenPattern);
    expect(tokenPattern.exec(created.token)?.[1]).toBe(created.id);
    expect(new Date(created.createdAt).toISOString()).toBe(created.createdAt);

    const write = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/k',
      headers: bearer(created.token),
      payload: 'x',
    });
    expect(write.statusCode).toBe(201);
  });

  it('refuses bodies of the wrong shape, creating nothing', async () => {
    const before = await digest();
    const cases: unknown[] = [
      {},
      { role: 'read' },
      { name: 'n' },
      { role: 'root', name: 'n' },
      { role: 'READ', name: 'n' },
      { role: 'read', name: '' },
      { role: 'read', name: 'n'.repeat(129) },
      { role: 'read', name: '😀'.repeat(129) },
      { role: 'read', name: 5 },
      { role: ['read'], name: 'n' },
      [{ role: 'read', name: 'n' }],
      'null',
      '"read"',
      '{"role":"read",',
      { role: 'read', name: 'n', expires: '2030-01-01' },
      { role: 'read', name: 'red\u001b[31m\r\nX-Injected: 1' },
      { role: 'read', name: 'bell\u0007' },
      { role: 'read', name: 'c1\u0085' },
      { role: 'read', name: 'lone \ud800' },
    ];
    for (const body of cases) expectError(await create(body), 400, 'STRATA_BAD_REQUEST');
    const misspelt = await create({ role: 'read', nmae: 'x' });
    expect(misspelt.json().error.message).toContain('unknown field "nmae"');
    await expectJsonOnly(node, '/v1/tokens', '{"role":"read","name":"n"}');
    const empty = await node.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...auth, 'content-type': 'application/json' },
    });
    expectError(empty, 400, 'STRATA_BAD_REQUEST');
    expect(await digest()).toBe(before);
    expect((await node.app.inject({ url: '/v1/tokens', headers: auth })).json()).toEqual({ tokens: [] });
    // The longest name is fine, counted in characters whatever their UTF-16 length.
    await createOk('read', 'n'.repeat(128));
    await createOk('read', '😀'.repeat(128));
    await createOk('read', '𝒳'.repeat(100));
  });
});

describe('GET /v1/tokens', () => {
  it('lists tokens without their secrets', async () => {
    const reader = await createOk('read', 'reader');
    const writer = await createOk('write', 'writer');
    const response = await node.app.inject({ url: '/v1/tokens', headers: auth });
    expect(response.statusCode).toBe(200);
    const { tokens } = response.json() as { tokens: Array<Record<string, unknown>> };
    const byId = new Map(tokens.map((token) => [token.id, token]));
    expect(byId.get(reader.id)).toEqual({
      id: reader.id,
      name: 'reader',
      role: 'read',
      createdAt: reader.createdAt,
    });
    expect(byId.get(writer.id)).toMatchObject({ role: 'write' });
    expect(response.body).not.toContain(reader.token);
    expect(response.body).not.toContain('hash');
  });
});

describe('DELETE /v1/tokens/{id}', () => {
  it('revokes a token: it is refused with 401 from then on', async () => {
    const reader = await createOk('read', 'reader');
    expect(
      (await node.app.inject({ url: '/v1/buckets/b/keys', headers: bearer(reader.token) })).statusCode,
    ).toBe(200);

    const revoked = await node.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${reader.id}`,
      headers: auth,
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ id: reader.id, revoked: true, version: expect.any(String) });

    expectError(
      await node.app.inject({ url: '/v1/buckets/b/keys', headers: bearer(reader.token) }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expectError(
      await node.app.inject({ url: '/health', headers: bearer(reader.token) }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    const listed = (await node.app.inject({ url: '/v1/tokens', headers: auth })).json() as {
      tokens: Array<{ id: string }>;
    };
    expect(listed.tokens.map((token) => token.id)).not.toContain(reader.id);
  });

  it('answers 404 for unknown, malformed and already revoked ids, and 409 for the admin token', async () => {
    const reader = await createOk('read', 'reader');
    await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${reader.id}`, headers: auth });
    const before = await digest();
    for (const id of [reader.id, '0123456789abcdef', 'not-an-id', reader.id.toUpperCase()]) {
      expectError(
        await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: auth }),
        404,
        'STRATA_NOT_FOUND',
      );
    }
    // The admin token lives outside the token store: the answer says where to change it.
    const admin = await node.app.inject({ method: 'DELETE', url: '/v1/tokens/admin', headers: auth });
    expectError(admin, 409, 'STRATA_CONFLICT');
    expect(admin.json().error.message).toContain('STRATA_ADMIN_TOKEN');
    expect(await digest()).toBe(before);
  });

  it('leaves other tokens working', async () => {
    const first = await createOk('read', 'first');
    const second = await createOk('read', 'second');
    await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${first.id}`, headers: auth });
    expect(
      (await node.app.inject({ url: '/v1/buckets/b/keys', headers: bearer(second.token) })).statusCode,
    ).toBe(200);
  });
});

describe('token management needs the admin role', () => {
  it('refuses write and read tokens with 403 and no token with 401', async () => {
    const writer = await createOk('write', 'writer');
    const reader = await createOk('read', 'reader');
    for (const headers of [bearer(writer.token), bearer(reader.token)]) {
      expectError(await create({ role: 'admin', name: 'escalate' }, headers), 403, 'STRATA_FORBIDDEN');
      expectError(await node.app.inject({ url: '/v1/tokens', headers }), 403, 'STRATA_FORBIDDEN');
      expectError(
        await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${reader.id}`, headers }),
        403,
        'STRATA_FORBIDDEN',
      );
    }
    expectError(await create({ role: 'admin', name: 'escalate' }, {}), 401, 'STRATA_UNAUTHORIZED');
    expectError(await node.app.inject({ url: '/v1/tokens' }), 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${reader.id}` }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });

  it('lets a created admin token manage tokens', async () => {
    const admin = await createOk('admin', 'second admin');
    const response = await create({ role: 'read', name: 'made by the second admin' }, bearer(admin.token));
    expect(response.statusCode).toBe(201);
  });
});
