import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createToken, expectError, tokenHeaders } from '../../../test/support/api.js';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';

const start = Date.UTC(2030, 0, 1);
const hour = 3_600_000;

let clock: ManualClock;
let node: TempNode;
beforeEach(() => {
  clock = new ManualClock(start);
  node = tempNode({ clock });
});
afterEach(async () => {
  await node.dispose();
});

async function digest(): Promise<{ node: string; digest: string }> {
  const response = await node.app.inject({ url: '/v1/admin/digest', headers: auth });
  expect(response.statusCode).toBe(200);
  return response.json() as { node: string; digest: string };
}

async function put(key: string, value: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/b/keys/${key}`,
    headers: { ...auth, 'content-type': 'text/plain', ...headers },
    payload: value,
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

/** Everything a client can see of the bucket: listing, values and histories at a few read points. */
async function observe(): Promise<unknown> {
  const seen: unknown[] = [];
  for (const query of ['', `?at=${start + 2 * hour}`]) {
    const listing = await node.app.inject({ url: `/v1/buckets/b/keys${query}`, headers: auth });
    seen.push(listing.json());
  }
  for (const key of ['a', 'b', 'c', 'future']) {
    for (const query of ['', `?at=${start + 2 * hour}`, `?asOf=${start}`]) {
      const read = await node.app.inject({ url: `/v1/buckets/b/keys/${key}${query}`, headers: auth });
      seen.push([
        read.statusCode,
        read.body,
        read.headers['strata-version'],
        read.headers['strata-conflicts'],
      ]);
    }
    seen.push((await node.app.inject({ url: `/v1/buckets/b/keys/${key}/versions`, headers: auth })).json());
  }
  seen.push((await node.app.inject({ url: '/v1/changes', headers: auth })).json());
  return seen;
}

describe('GET /v1/admin/digest', () => {
  it('names the node and digests its state; the digest moves with every write and only then', async () => {
    const first = await digest();
    expect(first.node).toMatch(/^[0-9a-f]{16}$/);
    expect(first.digest).toMatch(/^[0-9a-f]{64}$/);
    await put('a', 'one');
    const second = await digest();
    expect(second.digest).not.toBe(first.digest);
    expect(second.node).toBe(first.node);
    const refused = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/a',
      headers: { ...auth, 'if-none-match': '*' },
      payload: 'two',
    });
    expect(refused.statusCode).toBe(412);
    expect((await digest()).digest).toBe(second.digest);
  });
});

describe('POST /v1/admin/reindex', () => {
  it('rebuilds the derived state from the log: the digest and every read are unchanged', async () => {
    const a = await put('a', 'one');
    clock.advance(1000);
    await put('a', 'two', { 'if-match': `"${a}"` });
    await put('b', 'bee');
    await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/b', headers: auth });
    const c = await put('c', 'sea');
    await put('future', 'later', { 'strata-effective-at': new Date(start + hour).toISOString() });
    await put('c', 'hotfix');
    const retract = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: auth,
      payload: { ops: [{ kind: 'retract', target: c }] },
    });
    expect(retract.statusCode).toBe(201);
    await createToken(node, 'read', 'reader');

    const before = await digest();
    const seen = await observe();
    const response = await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as {
      commits: number;
      versions: number;
      ms: number;
      before: string;
      after: string;
    };
    expect(body.before).toBe(before.digest);
    expect(body.after).toBe(before.digest);
    expect(body.commits).toBe(9);
    expect(body.versions).toBe(9);
    expect(body.ms).toBeGreaterThanOrEqual(0);

    expect((await digest()).digest).toBe(before.digest);
    const after = await observe();
    // The change feed's cursors are local positions; everything else must be identical.
    expect(after).toEqual(seen);

    // Twice in a row is fine too, and writes go on afterwards.
    const again = (
      await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth })
    ).json() as {
      after: string;
    };
    expect(again.after).toBe(before.digest);
    await put('d', 'after reindex');
    expect((await node.app.inject({ url: '/v1/buckets/b/keys/d', headers: auth })).body).toBe(
      'after reindex',
    );
  });

  it('works on an empty node', async () => {
    const response = await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth });
    expect(response.json()).toMatchObject({ commits: 0, versions: 0 });
    expect((response.json() as { before: string }).before).toBe((response.json() as { after: string }).after);
  });

  it('needs an admin token; the digest needs a read token', async () => {
    const writer = await tokenHeaders(node, 'write', 'writer');
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: writer }),
      403,
      'STRATA_FORBIDDEN',
    );
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/admin/reindex' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    expect((await node.app.inject({ url: '/v1/admin/digest', headers: writer })).statusCode).toBe(200);
    expectError(await node.app.inject({ url: '/v1/admin/digest' }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('is not reachable with other methods', async () => {
    expectError(await node.app.inject({ url: '/v1/admin/reindex', headers: auth }), 404, 'STRATA_NOT_FOUND');
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/admin/digest', headers: auth }),
      404,
      'STRATA_NOT_FOUND',
    );
  });
});
