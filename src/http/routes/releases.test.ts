import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectError, expectJsonOnly, postJson, tokenHeaders } from '../../../test/support/api.js';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';

const versionPattern = /^[0-9a-f]{64}\.\d+$/;
const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;
const iso = (ms: number) => new Date(ms).toISOString();
const unknownVersion = `${'0'.repeat(64)}.0`;

let clock: ManualClock;
let node: TempNode;

beforeEach(() => {
  clock = new ManualClock(start);
  node = tempNode({ clock });
});
afterEach(async () => {
  await node.dispose();
});

async function putFile(
  path: string,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): Promise<string> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/${path}`,
    headers: { ...auth, 'content-type': contentType },
    payload: body,
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

/** POST `url` on this test's node with `body` as JSON (a string as it is). */
async function post(url: string, body: unknown, headers: Record<string, string> = auth) {
  return postJson(node, url, body, headers);
}

async function get(url: string, headers: Record<string, string> = auth) {
  return node.app.inject({ url, headers });
}

async function createRelease(
  app: string,
  body: Record<string, unknown>,
): Promise<{ release: string; effectiveAt: string }> {
  const response = await post(`/v1/apps/${app}/releases`, body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as { release: string; effectiveAt: string };
}

/** One release of one page, a minute after the previous one. */
async function release(app: string, text: string, extra: Record<string, unknown> = {}) {
  clock.advance(minute);
  const version = await putFile(`application/keys/${app}/index.html`, text, 'text/html');
  return createRelease(app, { routes: { '/index.html': version }, ...extra });
}

interface TimelineEntry {
  release: string;
  effectiveAt: string;
  txTime: string;
  message?: string;
  author?: string;
  routes: number;
  state: string;
  conflicts: string[];
}

async function timeline(app: string): Promise<TimelineEntry[]> {
  const response = await get(`/v1/apps/${app}/releases`);
  expect(response.statusCode, response.body).toBe(200);
  const body = response.json() as { app: string; releases: TimelineEntry[] };
  expect(body.app).toBe(app);
  return body.releases;
}

describe('POST /v1/apps/{app}/releases', () => {
  it('creates a release from versions and {bucket, key} routes', async () => {
    const index = await putFile('application/keys/index.html', '<p>hi</p>', 'text/html');
    await putFile('objects/keys/data.json', '{"v":1}', 'application/json');
    clock.advance(1);
    const data = await putFile('objects/keys/data.json', '{"v":2}', 'application/json');
    clock.advance(minute);
    const response = await post('/v1/apps/site/releases', {
      routes: { '/index.html': index, '/data.json': { bucket: 'objects', key: 'data.json' } },
      message: 'first',
    });
    expect(response.statusCode, response.body).toBe(201);
    const created = response.json() as { release: string; effectiveAt: string };
    expect(created).toEqual({
      release: expect.stringMatching(versionPattern),
      effectiveAt: iso(clock.now()),
    });

    const detail = await get(`/v1/apps/site/releases/${created.release}`);
    expect(detail.statusCode).toBe(200);
    expect(detail.json()).toMatchObject({
      release: created.release,
      effectiveAt: iso(clock.now()),
      txTime: iso(clock.now()),
      message: 'first',
      author: 'admin',
      routes: { '/data.json': data, '/index.html': index },
      state: 'active',
      conflicts: [],
      entry: '/index.html',
      spa: false,
      files: {
        '/index.html': { bucket: 'application', key: 'index.html', contentType: expect.any(String) },
        '/data.json': { bucket: 'objects', key: 'data.json' },
      },
    });
  });

  it('takes effectiveAt as RFC 3339 or epoch milliseconds', async () => {
    const version = await putFile('objects/keys/a.txt', 'a');
    const rfc = await createRelease('site', {
      routes: { '/a.txt': version },
      effectiveAt: '2030-01-02T01:00:00+01:00',
    });
    expect(rfc.effectiveAt).toBe('2030-01-02T00:00:00.000Z');
    const epoch = await createRelease('site', { routes: { '/a.txt': version }, effectiveAt: start + hour });
    expect(epoch.effectiveAt).toBe(iso(start + hour));
    const epochString = await createRelease('site', {
      routes: { '/a.txt': version },
      effectiveAt: String(start),
    });
    expect(epochString.effectiveAt).toBe(iso(start));
  });

  it('stores entry and spa', async () => {
    const index = await putFile('application/keys/index.html', 'i', 'text/html');
    const app = await putFile('application/keys/app.html', 'a', 'text/html');
    const created = await createRelease('site', {
      routes: { '/index.html': index, '/app.html': app },
      entry: '/app.html',
      spa: true,
    });
    const detail = (await get(`/v1/apps/site/releases/${created.release}`)).json();
    expect(detail).toMatchObject({
      entry: '/app.html',
      spa: true,
      routes: { '/app.html': app, '/index.html': index },
    });
  });

  it('answers 422 listing every missing version', async () => {
    const present = await putFile('objects/keys/a.txt', 'a');
    const missing = Array.from({ length: 11 }, (_, i) => `${String(i).padStart(64, 'f')}.0`);
    const response = await post('/v1/apps/site/releases', {
      routes: {
        '/a.txt': present,
        ...Object.fromEntries(missing.map((version, i) => [`/m${i}`, version])),
        '/gone': { bucket: 'objects', key: 'never-written' },
      },
    });
    expectError(response, 422, 'STRATA_UNKNOWN_VERSION');
    const listed = (response.json() as { error: { missing: string[] } }).error.missing;
    expect(new Set(listed)).toEqual(new Set([...missing, 'objects/never-written']));
    expect(listed).toHaveLength(12);
    // The message names the first ten; the list holds them all.
    expect(response.json().error.message).toMatch(/, and 2 more \(all in missing\)$/);
    expectError(await get('/v1/apps/site/releases'), 404, 'STRATA_NOT_FOUND');
  });

  it('says how to write an entry that lacks its slash, and refuses spa without an entry', async () => {
    const version = await putFile('objects/keys/a.txt', 'a');
    const bare = await post('/v1/apps/site/releases', {
      routes: { '/index.html': version },
      entry: 'index.html',
    });
    expectError(bare, 400, 'STRATA_BAD_REQUEST');
    expect(bare.json().error.message).toBe(
      'entry "index.html" is not one of the routes: a route path starts with /, so give "/index.html"',
    );
    const empty = await post('/v1/apps/site/releases', { routes: { '/a.txt': version }, entry: '' });
    expect(empty.json().error.message).toBe(
      'entry "" is not one of the routes: give the path of one of them, such as "/index.html"',
    );
    const spa = await post('/v1/apps/site/releases', { routes: { '/a.txt': version }, spa: true });
    expectError(spa, 400, 'STRATA_BAD_REQUEST');
    expect(spa.json().error.message).toMatch(
      /^spa serves the entry document .* route \/index\.html, or give entry$/,
    );
    expectError(await get('/v1/apps/site/releases'), 404, 'STRATA_NOT_FOUND');
    // With /index.html routed, spa needs no entry.
    expect(
      (await post('/v1/apps/site/releases', { routes: { '/index.html': version }, spa: true })).statusCode,
    ).toBe(201);
  });

  it.each([
    ['relative', 'index.html'],
    ['dot-dot', '/a/../index.html'],
    ['dot', '/./index.html'],
    ['empty segment', '//index.html'],
    ['pinned prefix', '/@x'],
    ['pinned prefix with a path', '/@r/index.html'],
    ['route table', '/_routes.json'],
    ['query', '/index.html?v=1'],
    ['tab', '/index\t.html'],
    ['no-break space', '/index\u00a0.html'],
    ['DEL', '/a\u007fb'],
    ['C1 control', '/a\u0085b'],
    ['lone surrogate', '/a\ud800b'],
  ])('refuses a %s route path', async (_why, path) => {
    const version = await putFile('objects/keys/a.txt', 'a');
    expectError(
      await post('/v1/apps/site/releases', { routes: { [path]: version } }),
      400,
      'STRATA_BAD_REQUEST',
    );
  });

  it('refuses an entry that is not among the routes, built-in object properties included', async () => {
    const version = await putFile('objects/keys/a.txt', 'a');
    for (const entry of ['/index.html', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const response = await post('/v1/apps/site/releases', {
        routes: { '/a.txt': version },
        entry,
        spa: true,
      });
      expectError(response, 400, 'STRATA_BAD_REQUEST');
      expect(response.json().error.message).toContain('is not one of the routes');
    }
    expectError(await get('/v1/apps/site/releases'), 404, 'STRATA_NOT_FOUND');
  });

  it.each([
    ['no routes', {}],
    ['empty routes', { routes: {} }],
    ['routes as an array', { routes: ['/a'] }],
    ['routes as a string', { routes: '/a' }],
    ['routes null', { routes: null }],
    ['a route to a number', { routes: { '/a': 42 } }],
    ['a route to an incomplete target', { routes: { '/a': { bucket: 'objects' } } }],
    ['a non-string entry', { routes: { '/a': 'x' }, entry: 3 }],
    ['a non-boolean spa', { routes: { '/a': 'x' }, spa: 'yes' }],
    ['a non-string message', { routes: { '/a': 'x' }, message: 42 }],
    ['a too long message', { routes: { '/a': 'x' }, message: 'x'.repeat(1024 * 1024) }],
    ['a misspelt field', { routes: { '/a': 'x' }, efectiveAt: '2030-01-01T00:00:00Z' }],
    ['a route target with a stray field', { routes: { '/a': { bucket: 'objects', key: 'a', at: 1 } } }],
  ])('refuses a body with %s', async (_why, body) => {
    const response = await post('/v1/apps/site/releases', body);
    expectError(response, 400, 'STRATA_BAD_REQUEST');
  });

  it.each([
    ['an unparseable date', 'tomorrow'],
    ['a date without a zone', '2030-01-01T00:00:00'],
    ['February 30th', '2030-02-30T00:00:00Z'],
    ['hour 25', '2030-01-01T25:00:00Z'],
    ['an impossible offset', '2030-01-01T00:00:00+24:00'],
    ['a negative epoch', '-1'],
    ['a boolean', true],
    ['an object', { at: 1 }],
  ])('refuses %s as effectiveAt', async (_why, effectiveAt) => {
    const version = await putFile('objects/keys/a.txt', 'a');
    const response = await post('/v1/apps/site/releases', { routes: { '/a.txt': version }, effectiveAt });
    expectError(response, 400, 'STRATA_INVALID_TIME');
  });

  it('refuses invalid app names', async () => {
    const version = await putFile('objects/keys/a.txt', 'a');
    for (const app of ['Site', '_releases', '-x', 'a%20b']) {
      expectError(
        await post(`/v1/apps/${app}/releases`, { routes: { '/a': version } }),
        400,
        'STRATA_INVALID_NAME',
      );
    }
  });

  it('takes JSON only', async () => {
    const version = await putFile('objects/keys/a.txt', 'a');
    const body = JSON.stringify({ routes: { '/a.txt': version } });
    await expectJsonOnly(node, '/v1/apps/site/releases', body);
    expectError(await post('/v1/apps/site/releases', '{"routes": '), 400, 'STRATA_BAD_REQUEST');
    expectError(await post('/v1/apps/site/releases', '[]'), 400, 'STRATA_BAD_REQUEST');
    expectError(await post('/v1/apps/site/releases', '"text"'), 400, 'STRATA_BAD_REQUEST');
    expectError(await post('/v1/apps/site/releases', ''), 400, 'STRATA_BAD_REQUEST');
    expectError(await get('/v1/apps/site/releases'), 404, 'STRATA_NOT_FOUND');
  });
});

describe('authorization', () => {
  it('needs a token for every release endpoint, and a write token for changes', async () => {
    const r1 = await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: iso(start + hour) });
    const reader = await tokenHeaders(node, 'read');
    const writer = await tokenHeaders(node, 'write');
    const version = await putFile('objects/keys/a.txt', 'a');

    const reads = [
      '/v1/apps',
      '/v1/apps/site/releases',
      `/v1/apps/site/releases/${r1.release}`,
      `/v1/apps/site/diff?from=${r1.release}&to=${staged.release}`,
    ];
    for (const url of reads) {
      expectError(await get(url, {}), 401, 'STRATA_UNAUTHORIZED');
      expectError(await get(url, { authorization: 'Bearer wrong' }), 401, 'STRATA_UNAUTHORIZED');
      expect((await get(url, reader)).statusCode, url).toBe(200);
    }

    const writes: Array<[string, string, unknown]> = [
      ['POST', '/v1/apps/site/releases', { routes: { '/a.txt': version } }],
      ['POST', '/v1/apps/site/rollback', {}],
      ['DELETE', `/v1/apps/site/releases/${staged.release}`, undefined],
    ];
    for (const [method, url, body] of writes) {
      const headers = body === undefined ? {} : { 'content-type': 'application/json' };
      const send = (extra: Record<string, string>) =>
        node.app.inject({
          method: method as 'POST' | 'DELETE',
          url,
          headers: { ...headers, ...extra },
          ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        });
      expectError(await send({}), 401, 'STRATA_UNAUTHORIZED');
      expectError(await send(reader), 403, 'STRATA_FORBIDDEN');
    }
    // Nothing above changed the timeline.
    expect((await timeline('site')).map((r) => r.release)).toEqual([staged.release, r1.release]);

    // A write token may release, roll back and cancel.
    const created = await post('/v1/apps/site/releases', { routes: { '/a.txt': version } }, writer);
    expect(created.statusCode, created.body).toBe(201);
    const writerName = (await timeline('site')).find(
      (r) => r.release === (created.json() as { release: string }).release,
    );
    expect(writerName?.author).toBe('write token');
    const cancelled = await node.app.inject({
      method: 'DELETE',
      url: `/v1/apps/site/releases/${staged.release}`,
      headers: writer,
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
  });
});

describe('GET /v1/apps', () => {
  it('lists apps with releases, in name order', async () => {
    expect((await get('/v1/apps')).json()).toEqual({ apps: [] });
    await release('zeta', 'z');
    await release('alpha', 'a');
    await release('later', 'l', { effectiveAt: iso(start + 24 * hour) });
    expect((await get('/v1/apps')).json()).toEqual({ apps: ['alpha', 'later', 'zeta'] });
  });
});

describe('GET /v1/apps/{app}/releases', () => {
  it('lists the timeline newest effective first, with states and metadata', async () => {
    const r1 = await release('site', 'one', { message: 'first' });
    const r2 = await release('site', 'two');
    const scheduled = await release('site', 'three', { effectiveAt: iso(start + hour) });
    const cancelled = await release('site', 'four', { effectiveAt: iso(start + 2 * hour) });
    const deleted = await node.app.inject({
      method: 'DELETE',
      url: `/v1/apps/site/releases/${cancelled.release}`,
      headers: auth,
    });
    expect(deleted.statusCode).toBe(200);

    const releases = await timeline('site');
    expect(releases.map((r) => [r.release, r.state])).toEqual([
      [cancelled.release, 'cancelled'],
      [scheduled.release, 'scheduled'],
      [r2.release, 'active'],
      [r1.release, 'past'],
    ]);
    expect(releases[3]).toEqual({
      release: r1.release,
      effectiveAt: iso(start + minute),
      txTime: iso(start + minute),
      message: 'first',
      author: 'admin',
      routes: 1,
      state: 'past',
      conflicts: [],
    });
    expect(releases[1]).toMatchObject({ effectiveAt: iso(start + hour), txTime: iso(start + 3 * minute) });
    expect(releases[2]?.message).toBe('release site');
  });

  it('answers 404 for an app without releases and 400 for an invalid name', async () => {
    expectError(await get('/v1/apps/nothing/releases'), 404, 'STRATA_NOT_FOUND');
    expectError(await get('/v1/apps/No/releases'), 400, 'STRATA_INVALID_NAME');
  });

  it('shows a hotfix made after a release was staged as a conflict of the staged release', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two (staged)', { effectiveAt: iso(start + 24 * hour) });
    const hotfix = await release('site', 'one with a hotfix');
    const releases = await timeline('site');
    expect(releases.map((r) => [r.release, r.state, r.conflicts])).toEqual([
      [r2.release, 'scheduled', [hotfix.release]],
      [hotfix.release, 'active', []],
      [r1.release, 'past', []],
    ]);
    const detail = (await get(`/v1/apps/site/releases/${r2.release}`)).json() as TimelineEntry;
    expect(detail.conflicts).toEqual([hotfix.release]);

    // Once R2 is in effect the hotfix is still reported beside it, and H is no longer served.
    clock.set(start + 24 * hour);
    const later = await timeline('site');
    expect(later[0]).toMatchObject({ release: r2.release, state: 'active', conflicts: [hotfix.release] });
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('two (staged)');
  });
});

describe('GET /v1/apps/{app}/releases/{release}', () => {
  it('answers 404 for an unknown release or one of another app, 400 for a malformed id', async () => {
    const r1 = await release('site', 'one');
    const other = await release('other', 'x');
    const file = await putFile('objects/keys/a.txt', 'a');
    expectError(await get(`/v1/apps/site/releases/${unknownVersion}`), 404, 'STRATA_NOT_FOUND');
    expectError(await get(`/v1/apps/site/releases/${other.release}`), 404, 'STRATA_NOT_FOUND');
    expectError(await get(`/v1/apps/site/releases/${file}`), 404, 'STRATA_NOT_FOUND');
    expectError(await get(`/v1/apps/nothing/releases/${r1.release}`), 404, 'STRATA_NOT_FOUND');
    for (const bad of [
      'latest',
      'abc.0',
      `${'0'.repeat(64)}`,
      `${'0'.repeat(64)}.01`,
      `${'A'.repeat(64)}.0`,
    ]) {
      expectError(await get(`/v1/apps/site/releases/${bad}`), 400, 'STRATA_BAD_REQUEST');
    }
  });
});

describe('POST /v1/apps/{app}/rollback', () => {
  it('re-issues the previous release, effective now; rolling back again goes further back', async () => {
    const r0 = await release('site', 'zero');
    const r1 = await release('site', 'one');
    await release('site', 'two');
    clock.advance(minute);
    const response = await node.app.inject({ method: 'POST', url: '/v1/apps/site/rollback', headers: auth });
    expect(response.statusCode, response.body).toBe(201);
    const rolled = response.json() as { release: string; effectiveAt: string; rolledBackTo: string };
    expect(rolled).toEqual({
      release: expect.stringMatching(versionPattern),
      effectiveAt: iso(clock.now()),
      rolledBackTo: r1.release,
      state: 'active',
    });
    const releases = await timeline('site');
    expect(releases[0]).toMatchObject({
      release: rolled.release,
      state: 'active',
      message: `rollback to ${r1.release}`,
      author: 'admin',
    });
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('one');

    clock.advance(minute);
    const again = await post('/v1/apps/site/rollback', {});
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({ rolledBackTo: r0.release });
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('zero');

    // Nothing is left before r0.
    clock.advance(minute);
    expectError(await post('/v1/apps/site/rollback', {}), 409, 'STRATA_CONFLICT');
  });

  it('rolls back to a named release at a chosen time', async () => {
    const r1 = await release('site', 'one');
    await release('site', 'two');
    await release('site', 'three');
    const response = await post('/v1/apps/site/rollback', { to: r1.release, effectiveAt: iso(start + hour) });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({
      rolledBackTo: r1.release,
      effectiveAt: iso(start + hour),
      state: 'scheduled',
    });
    expect((await timeline('site'))[0]).toMatchObject({ state: 'scheduled', effectiveAt: iso(start + hour) });
    // Effective before the active release, a rollback is history: the answer says so.
    const behind = await post('/v1/apps/site/rollback', { to: r1.release, effectiveAt: iso(start - hour) });
    expect(behind.json()).toMatchObject({ rolledBackTo: r1.release, state: 'past' });
  });

  it('answers 409 when there is no earlier release to go back to', async () => {
    await release('site', 'one');
    expectError(await post('/v1/apps/site/rollback', {}), 409, 'STRATA_CONFLICT');
    await release('future', 'f', { effectiveAt: iso(start + hour) });
    expectError(await post('/v1/apps/future/rollback', {}), 409, 'STRATA_CONFLICT');
  });

  it('refuses unknown apps and releases, cancelled targets and bad input', async () => {
    expectError(await post('/v1/apps/nothing/rollback', {}), 404, 'STRATA_NOT_FOUND');
    await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: iso(start + hour) });
    await node.app.inject({
      method: 'DELETE',
      url: `/v1/apps/site/releases/${staged.release}`,
      headers: auth,
    });
    expectError(await post('/v1/apps/site/rollback', { to: staged.release }), 409, 'STRATA_CONFLICT');
    expectError(await post('/v1/apps/site/rollback', { to: unknownVersion }), 404, 'STRATA_NOT_FOUND');
    expectError(await post('/v1/apps/site/rollback', { to: 'previous' }), 400, 'STRATA_BAD_REQUEST');
    expectError(await post('/v1/apps/site/rollback', { effectiveAt: 'soon' }), 400, 'STRATA_INVALID_TIME');
    expectError(
      await post('/v1/apps/site/rollback', { effectiveAt: '2030-04-31T00:00:00Z' }),
      400,
      'STRATA_INVALID_TIME',
    );
    expectError(await post('/v1/apps/site/rollback', '[]'), 400, 'STRATA_BAD_REQUEST');
    const notString = await post('/v1/apps/site/rollback', { to: { release: staged.release } });
    expectError(notString, 400, 'STRATA_BAD_REQUEST');
    expect(notString.json().error.message).not.toContain('[object Object]');
    const misspelt = await post('/v1/apps/site/rollback', { too: staged.release });
    expectError(misspelt, 400, 'STRATA_BAD_REQUEST');
    expect(misspelt.json().error.message).toContain('"too"');
    expectError(await post('/v1/apps/Bad/rollback', {}), 400, 'STRATA_INVALID_NAME');
    expect(await timeline('site')).toHaveLength(2);
  });
});

describe('DELETE /v1/apps/{app}/releases/{release}', () => {
  async function cancel(app: string, release: string, headers: Record<string, string> = auth) {
    return node.app.inject({ method: 'DELETE', url: `/v1/apps/${app}/releases/${release}`, headers });
  }

  it('cancels a scheduled release', async () => {
    const r1 = await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: iso(start + hour) });
    const response = await cancel('site', staged.release);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      release: staged.release,
      cancelled: true,
      version: expect.stringMatching(versionPattern),
    });
    expect((await timeline('site')).map((r) => r.state)).toEqual(['cancelled', 'active']);
    clock.set(start + 2 * hour);
    const served = await node.app.inject({ url: '/apps/site/' });
    expect(served.headers['strata-release']).toBe(r1.release);
  });

  it('answers 409 for a release in effect, a past one or one already cancelled', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two');
    expectError(await cancel('site', r2.release), 409, 'STRATA_CONFLICT');
    expectError(await cancel('site', r1.release), 409, 'STRATA_CONFLICT');
    const staged = await release('site', 'three', { effectiveAt: iso(start + hour) });
    expect((await cancel('site', staged.release)).statusCode).toBe(200);
    expectError(await cancel('site', staged.release), 409, 'STRATA_CONFLICT');
    // A scheduled release whose time has come is in effect: too late to cancel.
    const soon = await release('site', 'four', { effectiveAt: iso(start + 2 * hour) });
    clock.set(start + 2 * hour);
    expectError(await cancel('site', soon.release), 409, 'STRATA_CONFLICT');
  });

  it('answers 404 for unknown releases and apps, 400 for malformed ids', async () => {
    const r1 = await release('site', 'one');
    expectError(await cancel('site', unknownVersion), 404, 'STRATA_NOT_FOUND');
    expectError(await cancel('other', r1.release), 404, 'STRATA_NOT_FOUND');
    expectError(await cancel('site', 'not-a-version'), 400, 'STRATA_BAD_REQUEST');
  });
});

describe('GET /v1/apps/{app}/diff', () => {
  it('lists added, removed and changed paths with a unified diff for text', async () => {
    const page1 = await putFile('application/keys/index.html', '<h1>one</h1>\n', 'text/html');
    const img1 = await putFile('images/keys/logo.png', '\u0001\u0002', 'image/png');
    const old = await putFile('objects/keys/old.txt', 'old');
    const r1 = await createRelease('site', {
      routes: { '/index.html': page1, '/logo.png': img1, '/old.txt': old },
    });
    const page2 = await putFile('application/keys/index.html', '<h1>two</h1>\n', 'text/html');
    const img2 = await putFile('images/keys/logo.png', '\u0003\u0004', 'image/png');
    const added = await putFile('objects/keys/new.txt', 'new');
    const r2 = await createRelease('site', {
      routes: { '/index.html': page2, '/logo.png': img2, '/new.txt': added },
    });

    const response = await get(`/v1/apps/site/diff?from=${r1.release}&to=${r2.release}`);
    expect(response.statusCode, response.body).toBe(200);
    const diff = response.json() as {
      from: string;
      to: string;
      added: string[];
      removed: string[];
      changed: Array<{ path: string; from: string; to: string; diff: string | null }>;
    };
    expect(diff).toMatchObject({
      from: r1.release,
      to: r2.release,
      added: ['/new.txt'],
      removed: ['/old.txt'],
    });
    expect(diff.changed.map((c) => [c.path, c.from, c.to])).toEqual([
      ['/index.html', page1, page2],
      ['/logo.png', img1, img2],
    ]);
    expect(diff.changed[0]?.diff).toMatch(/^-<h1>one<\/h1>$/m);
    expect(diff.changed[0]?.diff).toMatch(/^\+<h1>two<\/h1>$/m);
    expect(diff.changed[1]?.diff).toBeNull();
  });

  it('refuses missing, repeated, malformed and unknown releases', async () => {
    const r1 = await release('site', 'one');
    const other = await release('other', 'x');
    expectError(await get(`/v1/apps/site/diff?from=${r1.release}`), 400, 'STRATA_BAD_REQUEST');
    expectError(await get(`/v1/apps/site/diff?to=${r1.release}`), 400, 'STRATA_BAD_REQUEST');
    expectError(
      await get(`/v1/apps/site/diff?from=${r1.release}&from=${r1.release}&to=${r1.release}`),
      400,
      'STRATA_BAD_REQUEST',
    );
    expectError(await get(`/v1/apps/site/diff?from=x&to=${r1.release}`), 400, 'STRATA_BAD_REQUEST');
    expectError(
      await get(`/v1/apps/site/diff?from=${r1.release}&to=${unknownVersion}`),
      404,
      'STRATA_NOT_FOUND',
    );
    expectError(
      await get(`/v1/apps/site/diff?from=${r1.release}&to=${other.release}`),
      404,
      'STRATA_NOT_FOUND',
    );
    expectError(
      await get(`/v1/apps/nothing/diff?from=${r1.release}&to=${r1.release}`),
      404,
      'STRATA_NOT_FOUND',
    );
  });
});
