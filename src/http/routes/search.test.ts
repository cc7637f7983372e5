import { describe, expect, it } from 'vitest';
import { expectError, makePublic, tokenHeaders } from '../../../test/support/api.js';
import { auth, type TempNode, tempNodesPerTest } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';

/** GET /v1/search and GET /v1/recent over HTTP (DESIGN §4); index semantics: src/search/search-index.test.ts. */
const start = Date.UTC(2030, 0, 1);
const hour = 3_600_000;
const day = 24 * hour;
const versionPattern = /^[0-9a-f]{64}\.\d+$/;

interface Hit {
  bucket: string;
  key: string;
  version: string;
  commit: string;
  txTime: string;
  effectiveAt: string;
  score: number;
  snippet: string;
  truncated?: boolean;
  lines?: { added: string[]; removed: string[] };
  retracted?: true;
}

interface Change {
  bucket: string;
  key: string;
  version: string;
  kind: string;
  txTime: string;
  effectiveAt: string;
}

type Headers = Record<string, string>;

const tempNodeForTest = tempNodesPerTest();
/** A node for this test on a manual clock, returned with the clock. */
function startNode(clock = new ManualClock(start)): { node: TempNode; clock: ManualClock } {
  return { node: tempNodeForTest({ clock }), clock };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function put(
  node: TempNode,
  bucket: string,
  key: string,
  body: string,
  headers: Headers = {},
): Promise<string> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/${bucket}/keys/${key}`,
    headers: { ...auth, 'content-type': 'text/plain; charset=utf-8', ...headers },
    payload: body,
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

async function remove(node: TempNode, bucket: string, key: string): Promise<string> {
  const response = await node.app.inject({
    method: 'DELETE',
    url: `/v1/buckets/${bucket}/keys/${key}`,
    headers: auth,
  });
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { version: string }).version;
}

function query(parameters: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters))
    if (value !== undefined) search.set(name, String(value));
  return search.toString();
}

async function searchPage(
  node: TempNode,
  parameters: Record<string, string | number | undefined>,
  headers: Headers = auth,
): Promise<{ hits: Hit[]; cursor?: string }> {
  const response = await node.app.inject({ url: `/v1/search?${query(parameters)}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { hits: Hit[]; cursor?: string };
}

async function hits(
  node: TempNode,
  parameters: Record<string, string | number | undefined>,
  headers: Headers = auth,
): Promise<Hit[]> {
  return (await searchPage(node, parameters, headers)).hits;
}

async function keys(
  node: TempNode,
  parameters: Record<string, string | number | undefined>,
  headers: Headers = auth,
): Promise<string[]> {
  return (await hits(node, parameters, headers)).map((hit) => `${hit.bucket}/${hit.key}`).sort();
}

async function recent(
  node: TempNode,
  parameters: Record<string, string | number | undefined> = {},
  headers: Headers = auth,
): Promise<Change[]> {
  const response = await node.app.inject({ url: `/v1/recent?${query(parameters)}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { changes: Change[] }).changes;
}

describe('GET /v1/search', () => {
  it('answers hits with bucket, key, version, commit, times, score and a marked snippet', async () => {
    const { node } = startNode();
    const version = await put(node, 'docs', 'lighthouse.txt', 'The lighthouse keeper lit the lamp at dusk.');
    const body = await searchPage(node, { q: 'keeper' });
    expect(body).toEqual({
      hits: [
        {
          bucket: 'docs',
          key: 'lighthouse.txt',
          version,
          commit: version.split('.')[0],
          txTime: iso(start),
          effectiveAt: iso(start),
          score: expect.any(Number),
          snippet: expect.stringContaining('«keeper»'),
        },
      ],
    });
    expect(version).toMatch(versionPattern);
    expect(body.hits[0]?.score).toBeGreaterThan(0);
    expect(await hits(node, { q: 'nothingsuch' })).toEqual([]);
  });

  it('orders hits by score, best first', async () => {
    const { node } = startNode();
    await put(node, 'docs', 'once', 'a beacon among a great many other words of a rather long sentence here');
    await put(node, 'docs', 'often', 'beacon beacon beacon');
    const found = await hits(node, { q: 'beacon' });
    expect(found.map((hit) => hit.key)).toEqual(['often', 'once']);
    expect(found[0]?.score).toBeGreaterThan(found[1]?.score as number);
  });

  it('takes FTS5 syntax: phrases, prefixes, OR, NOT, NEAR and columns', async () => {
    const { node } = startNode();
    await put(node, 'docs', 'a', 'the lighthouse keeper');
    await put(node, 'docs', 'b', 'the keeper of the lighthouse');
    await put(node, 'docs', 'c', 'a lightship');
    expect(await keys(node, { q: '"lighthouse keeper"' })).toEqual(['docs/a']);
    expect(await keys(node, { q: 'light*' })).toEqual(['docs/a', 'docs/b', 'docs/c']);
    expect(await keys(node, { q: 'lightship OR "keeper of"' })).toEqual(['docs/b', 'docs/c']);
    expect(await keys(node, { q: 'keeper NOT "lighthouse keeper"' })).toEqual(['docs/b']);
    expect(await keys(node, { q: 'NEAR(keeper lighthouse, 1)' })).toEqual(['docs/a']);
    // The text table's own columns are no query's business: body: and fields: name JSON fields.
    expect(await keys(node, { q: 'body:lightship' })).toEqual([]);
    await put(node, 'docs', 'post.json', JSON.stringify({ title: 'lightship', body: 'the keeper' }), {
      'content-type': 'application/json',
    });
    expect(await keys(node, { q: 'body:keeper' })).toEqual(['docs/post.json']);
    expect(await keys(node, { q: 'body:lightship' })).toEqual([]);
    expect(await keys(node, { q: 'fields:title' })).toEqual([]);
  });

  it('answers a two-word phrase exactly as FTS5 answers the phrase', async () => {
    const { node } = startNode();
    const json = { 'content-type': 'application/json' };
    await put(node, 'docs', 'a', 'The Lighthouse Keeper lit the lamp');
    await put(node, 'docs', 'b', 'the keeper of the lighthouse');
    await put(node, 'docs', 'c', 'LIGHTHOUSE, keeper!');
    await put(node, 'docs', 'd', 'lighthouse\nkeeper');
    await put(node, 'docs', 'e', 'a lighthouse and a keeper');
    await put(node, 'docs', 'f', 'Lïghthöuse keeper');
    await put(node, 'books', 'g.json', JSON.stringify({ title: 'Lighthouse keeper', author: 'Ada' }), json);
    const found = await keys(node, { q: '"lighthouse keeper"' });
    expect(found).toEqual(['books/g.json', 'docs/a', 'docs/c', 'docs/d', 'docs/f']);
    // In parentheses it is no longer a bare two-word phrase: FTS5 evaluates it on the text table.
    expect(await keys(node, { q: '("lighthouse keeper")' })).toEqual(found);
    for (const hit of await hits(node, { q: '"lighthouse keeper"' })) {
      expect(hit.snippet, hit.key).toMatch(/«[^»]*»/);
      expect(hit.score, hit.key).toBeGreaterThan(0);
    }
    // Other shapes still work, through the text table.
    expect(await keys(node, { q: '"lighthouse keeper lit"' })).toEqual(['docs/a']);
    expect(await keys(node, { q: '"lighthouse keeper" lamp' })).toEqual(['docs/a']);
    expect(await keys(node, { q: '"keeper of"' })).toEqual(['docs/b']);
    // Every version, and a time range, as for any query.
    await put(node, 'docs', 'a', 'The lamp is out');
    expect(await keys(node, { q: '"lighthouse keeper"' })).not.toContain('docs/a');
    expect(await keys(node, { q: '"lighthouse keeper"', versions: 'all' })).toContain('docs/a');
    expect(await keys(node, { q: '"lighthouse keeper"', versions: 'all', to: iso(start - 1) })).toEqual([]);
  });

  it('finds JSON field:value', async () => {
    const { node } = startNode();
    const json = { 'content-type': 'application/json' };
    await put(node, 'books', 'one.json', JSON.stringify({ title: 'Lighthouse keeper', author: 'Ada' }), json);
    await put(node, 'books', 'two.json', JSON.stringify({ title: 'Harbor', note: 'keeper' }), json);
    expect(await keys(node, { q: 'title:keeper' })).toEqual(['books/one.json']);
    expect(await keys(node, { q: 'note:keeper' })).toEqual(['books/two.json']);
    expect(await keys(node, { q: 'title:"lighthouse keeper"' })).toEqual(['books/one.json']);
    expect(await keys(node, { q: 'title:harb*' })).toEqual(['books/two.json']);
    expect(await keys(node, { q: 'keeper' })).toEqual(['books/one.json', 'books/two.json']);
  });

  it('marks a retracted version among the hits of versions=all, and never shows it as current', async () => {
    const { node } = startNode();
    const leaked = await put(node, 'docs', 'secret', 'the password is swordfish');
    await put(node, 'docs', 'other', 'a swordfish in the sea');
    const retracted = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ ops: [{ kind: 'retract', target: leaked }] }),
    });
    expect(retracted.statusCode, retracted.body).toBe(201);
    const all = await hits(node, { q: 'swordfish', versions: 'all' });
    expect(all.map((hit) => [hit.key, hit.retracted ?? false]).sort()).toEqual([
      ['other', false],
      ['secret', true],
    ]);
    expect((await hits(node, { q: 'swordfish' })).map((hit) => hit.key)).toEqual(['other']);
  });

  it('does not find a JSON field name as a word of the document', async () => {
    const { node } = startNode();
    const json = { 'content-type': 'application/json' };
    await put(
      node,
      'books',
      'nested.json',
      JSON.stringify({ author: { first_name: 'Ada' }, title: 'Lighthouse keeper' }),
      json,
    );
    await put(
      node,
      'books',
      'split.json',
      JSON.stringify({ a: { text: 'lighthouse' }, b: { text: 'keeper' } }),
      json,
    );
    await put(node, 'books', 'plain.txt', 'the title of a text');
    // "title" and "text" are words of plain.txt only; in the JSON documents they are field names.
    expect(await keys(node, { q: 'title' })).toEqual(['books/plain.txt']);
    expect(await keys(node, { q: 'text' })).toEqual(['books/plain.txt']);
    expect(await keys(node, { q: '"title lighthouse"' })).toEqual([]);
    expect(await keys(node, { q: '"text keeper"' })).toEqual([]);
    expect(await keys(node, { q: 'firstname' })).toEqual([]);
    // As field queries they find them, alone or beside plain words.
    expect(await keys(node, { q: 'title:lighthouse' })).toEqual(['books/nested.json']);
    expect(await keys(node, { q: 'text:keeper OR title' })).toEqual(['books/plain.txt', 'books/split.json']);
    expect(await keys(node, { q: 'first_name:ada' })).toEqual(['books/nested.json']);
  });

  it('finds words joined by punctuation as the phrase they are', async () => {
    const { node } = startNode();
    await put(node, 'notes', 'mail.txt', 'send an e-mail to the x-ray lab at lab@example.com');
    await put(node, 'notes', 'apart.txt', 'e is a letter, mail is post');
    expect(await keys(node, { q: 'e-mail' })).toEqual(['notes/mail.txt']);
    expect(await keys(node, { q: 'x-ray lab' })).toEqual(['notes/mail.txt']);
    expect(await keys(node, { q: 'lab@example.com' })).toEqual(['notes/mail.txt']);
    expect(await keys(node, { q: 'e-ma*' })).toEqual(['notes/mail.txt']);
    expect(await badQueryMessage('e -mail')).toContain('write NOT mail');
    expect(await badQueryMessage('title:')).toContain('title: needs what to look for after the colon');
  });

  it('never shows the index-internal pair separator in a snippet of JSON fields', async () => {
    const { node } = startNode();
    const document: Record<string, string> = {};
    for (let index = 0; index < 30; index++) document[`field${index}`] = `value${index}`;
    document.title = 'Lighthouse keeper';
    for (let index = 30; index < 60; index++) document[`field${index}`] = `value${index}`;
    await put(node, 'books', 'wide.json', JSON.stringify(document), { 'content-type': 'application/json' });
    for (const q of ['title:keeper', 'field3:value3', 'field59:value59', 'field20:value20']) {
      const [hit] = await hits(node, { q });
      expect(hit?.snippet, q).toMatch(/«[^»]+»/);
      // The separator between field pairs (documents.ts pairSeparator) is not a word of the document.
      expect(hit?.snippet, q).not.toMatch(/0pair0/);
    }
  });

  it("shows a field query's snippet as the values it matched, without the field names", async () => {
    const { node } = startNode();
    const book = { title: 'Lighthouse keeper', first_name: 'Ada', body: 'the keeper of the light' };
    await put(node, 'books', 'b.json', JSON.stringify(book), { 'content-type': 'application/json' });
    const snippet = async (q: string) => (await hits(node, { q }))[0]?.snippet;
    // Snippets are 16 words of the index at most: the end may be cut (…).
    expect(await snippet('title:keeper')).toMatch(/^Lighthouse «keeper» · Ada · the keeper/);
    expect(await snippet('title:"lighthouse keeper"')).toMatch(/^«Lighthouse keeper» · Ada · the keeper/);
    expect(await snippet('first_name:ada')).toMatch(/^Lighthouse keeper · «Ada» · the keeper/);
  });

  it('searches code identifiers with kind=code, def= and ref=', async () => {
    const { node } = startNode();
    const js = { 'content-type': 'text/javascript' };
    await put(node, 'app', 'render.js', 'export function renderScene(scene) { drawMesh(scene.mesh); }', js);
    await put(node, 'app', 'main.js', "import { renderScene } from './render.js';\nrenderScene(world);", js);
    await put(node, 'app', 'shade.frag', 'vec3 shadeSurface(vec3 n) { return n; }');
    expect(await keys(node, { kind: 'code', def: 'renderScene' })).toEqual(['app/render.js']);
    expect(await keys(node, { kind: 'code', def: 'scene' })).toEqual(['app/render.js']);
    expect(await keys(node, { kind: 'code', ref: 'renderScene' })).toEqual(['app/main.js']);
    expect(await keys(node, { kind: 'code', ref: 'mesh' })).toEqual(['app/render.js']);
    expect(await keys(node, { kind: 'code', def: 'shade' })).toEqual(['app/shade.frag']);
    expect(await keys(node, { kind: 'code', q: 'renderScene' })).toEqual(['app/main.js', 'app/render.js']);
    expect(await keys(node, { kind: 'code', q: 'world', def: 'renderScene' })).toEqual([]);
  });

  it('searches diffs with kind=diff, showing the changed lines that hold the terms', async () => {
    const { node } = startNode();
    const first = await put(node, 'docs', 'poem', 'alpha\nbeta\ngamma\n');
    const second = await put(node, 'docs', 'poem', 'alpha\nbeta gone wild\ngamma\n');
    const found = await hits(node, { kind: 'diff', q: 'beta' });
    expect(found.map((hit) => hit.version)).toEqual([second]);
    expect(found[0]?.lines).toEqual({ added: ['beta gone wild'], removed: ['beta'] });
    expect(found[0]?.snippet).toContain('«beta»');
    const all = await hits(node, { kind: 'diff', q: 'gamma', versions: 'all' });
    expect(all.map((hit) => [hit.version, hit.lines])).toEqual([[first, { added: ['gamma'], removed: [] }]]);
    // Hits of other kinds carry no lines.
    expect((await hits(node, { q: 'beta' }))[0]).not.toHaveProperty('lines');
  });

  it('filters by bucket and prefix', async () => {
    const { node } = startNode();
    for (const bucket of ['docs', 'notes'])
      for (const key of ['guides/intro', 'guides/setup', 'blog/post'])
        await put(node, bucket, key, 'compass');
    expect(await keys(node, { q: 'compass', bucket: 'notes' })).toEqual([
      'notes/blog/post',
      'notes/guides/intro',
      'notes/guides/setup',
    ]);
    expect(await keys(node, { q: 'compass', prefix: 'guides/' })).toEqual([
      'docs/guides/intro',
      'docs/guides/setup',
      'notes/guides/intro',
      'notes/guides/setup',
    ]);
    expect(await keys(node, { q: 'compass', bucket: 'docs', prefix: 'blog/' })).toEqual(['docs/blog/post']);
    expect(await keys(node, { q: 'compass', bucket: 'unknown' })).toEqual([]);
    expect(await keys(node, { q: 'compass', prefix: '' })).toHaveLength(6);
  });

  it('searches current versions by default, every version with versions=all, and the past with at=', async () => {
    const { node, clock } = startNode();
    const v1 = await put(node, 'docs', 'plan', 'first draft');
    clock.set(start + hour);
    const v2 = await put(node, 'docs', 'plan', 'second draft');
    const future = await put(node, 'docs', 'plan', 'final draft', {
      'strata-effective-at': iso(start + day),
    });
    clock.set(start + 2 * hour);
    const gone = await put(node, 'docs', 'gone', 'a draft to delete');
    await remove(node, 'docs', 'gone');

    const versions = async (parameters: Record<string, string | number | undefined>) =>
      (await hits(node, { q: 'draft', ...parameters })).map((hit) => hit.version).sort();
    expect(await versions({})).toEqual([v2]);
    expect(await versions({ versions: 'current' })).toEqual([v2]);
    expect(await versions({ versions: 'all' })).toEqual([v1, v2, future, gone].sort());
    expect(await versions({ at: iso(start + 30 * 60_000) })).toEqual([v1]);
    expect(await versions({ at: String(start + day) })).toEqual([future]);
    expect(await versions({ at: iso(start - 1) })).toEqual([]);
    expect(await versions({ at: iso(start + 2 * hour) })).toEqual([v2]);
    const futureHit = (await hits(node, { q: 'final', versions: 'all' }))[0];
    expect(futureHit).toMatchObject({ txTime: iso(start + hour), effectiveAt: iso(start + day) });
  });

  it('filters by transaction time with from= and to= (inclusive)', async () => {
    const { node, clock } = startNode();
    const one = await put(node, 'docs', 'one', 'harbor');
    clock.set(start + hour);
    const two = await put(node, 'docs', 'two', 'harbor');
    clock.set(start + 2 * hour);
    const three = await put(node, 'docs', 'three', 'harbor');
    const versions = async (parameters: Record<string, string | number | undefined>) =>
      (await hits(node, { q: 'harbor', versions: 'all', ...parameters })).map((hit) => hit.version).sort();
    expect(await versions({ from: iso(start + hour) })).toEqual([two, three].sort());
    expect(await versions({ to: iso(start + hour) })).toEqual([one, two].sort());
    expect(await versions({ from: iso(start + hour), to: iso(start + hour) })).toEqual([two]);
    expect(await versions({ from: String(start + 1), to: String(start + hour - 1) })).toEqual([]);
    expect(await versions({ from: '2031-01-01T00:00:00Z' })).toEqual([]);
    expect(await versions({ from: '2029-12-31T23:00:00-01:00', to: iso(start) })).toEqual([one]);
    expect(await versions({ from: '', to: '' })).toEqual([one, two, three].sort());
  });

  it('pages with limit and cursor, covering every hit exactly once', async () => {
    const { node } = startNode();
    const written: string[] = [];
    for (let index = 0; index < 30; index++)
      written.push(await put(node, 'docs', `tide/${index}`, 'tide table'));
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const body = await searchPage(node, { q: 'tide', limit: 4, cursor });
      expect(body.hits.length).toBeLessThanOrEqual(4);
      seen.push(...body.hits.map((hit) => hit.version));
      cursor = body.cursor;
      if (cursor === undefined) break;
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    expect(seen.sort()).toEqual(written.sort());
    expect(await hits(node, { q: 'tide', limit: 1000 })).toHaveLength(30);
    expect(await hits(node, { q: 'tide' })).toHaveLength(20);
  });

  it("pages through the hits of the first page's moment, whatever is written in between", async () => {
    const { node } = startNode();
    const written: string[] = [];
    for (let index = 0; index < 6; index++) written.push(await put(node, 'docs', `z${index}`, 'zebra'));
    const first = await searchPage(node, { q: 'zebra', versions: 'all', limit: 2 });
    // Two new matches, which rank first (newest first among equal scores).
    await put(node, 'docs', 'new-1', 'zebra');
    await put(node, 'docs', 'new-2', 'zebra');
    const seen = first.hits.map((hit) => hit.version);
    let cursor = first.cursor;
    while (cursor !== undefined) {
      const page = await searchPage(node, { q: 'zebra', versions: 'all', limit: 2, cursor });
      seen.push(...page.hits.map((hit) => hit.version));
      cursor = page.cursor;
    }
    expect(seen).toHaveLength(6);
    expect([...seen].sort()).toEqual([...written].sort());
    // A fresh search sees the new ones.
    expect(await hits(node, { q: 'zebra', versions: 'all', limit: 100 })).toHaveLength(8);
  });

  it("refuses a cursor from a position this node has not reached (another node's)", async () => {
    const { node } = startNode();
    await put(node, 'docs', 'a', 'lighthouse');
    const cursor = Buffer.from(JSON.stringify({ offset: 1, pos: 1_000_000, at: start })).toString(
      'base64url',
    );
    const response = await node.app.inject({
      url: `/v1/search?q=lighthouse&cursor=${cursor}`,
      headers: auth,
    });
    expectError(response, 400, 'STRATA_BAD_REQUEST');
    expect(response.json().error.message).toContain('cursors count per node');
  });

  it.each<[string, string, number, string]>([
    ['an unknown kind', 'q=x&kind=regex', 400, 'STRATA_BAD_REQUEST'],
    ['def= with the default kind', 'def=renderScene', 400, 'STRATA_BAD_REQUEST'],
    ['def= with kind=text', 'q=x&kind=text&def=renderScene', 400, 'STRATA_BAD_REQUEST'],
    ['ref= with kind=diff', 'q=x&kind=diff&ref=renderScene', 400, 'STRATA_BAD_REQUEST'],
    ['an unknown versions=', 'q=x&versions=latest', 400, 'STRATA_BAD_REQUEST'],
    ['at= with versions=all', 'q=x&versions=all&at=2030-01-01T00:00:00Z', 400, 'STRATA_BAD_REQUEST'],
    ['from= after to=', 'q=x&from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z', 400, 'STRATA_BAD_REQUEST'],
    ['February 30th', 'q=x&at=2030-02-30T00:00:00Z', 400, 'STRATA_INVALID_TIME'],
    ['hour 25', 'q=x&to=2030-01-01T25:00:00Z', 400, 'STRATA_INVALID_TIME'],
    ['a word for a time', 'q=x&from=yesterday', 400, 'STRATA_INVALID_TIME'],
    ['a negative epoch', 'q=x&from=-5', 400, 'STRATA_INVALID_TIME'],
    ['year 10000', 'q=x&at=253402300800000', 400, 'STRATA_INVALID_TIME'],
    ['limit=0', 'q=x&limit=0', 400, 'STRATA_BAD_REQUEST'],
    ['limit=1001', 'q=x&limit=1001', 400, 'STRATA_BAD_REQUEST'],
    ['limit=-1', 'q=x&limit=-1', 400, 'STRATA_BAD_REQUEST'],
    ['limit=1.5', 'q=x&limit=1.5', 400, 'STRATA_BAD_REQUEST'],
    ['limit=ten', 'q=x&limit=ten', 400, 'STRATA_BAD_REQUEST'],
    ['a made-up cursor', 'q=x&cursor=not-a-cursor', 400, 'STRATA_BAD_REQUEST'],
    [
      'a negative cursor',
      `q=x&cursor=${Buffer.from('{"offset":-3}').toString('base64url')}`,
      400,
      'STRATA_BAD_REQUEST',
    ],
    ['a repeated parameter', 'q=x&q=y', 400, 'STRATA_BAD_REQUEST'],
    ['an unterminated phrase', 'q=%22lighthouse', 400, 'STRATA_BAD_QUERY'],
    ['a dangling AND', 'q=lighthouse%20AND', 400, 'STRATA_BAD_QUERY'],
    ['a lone operator', 'q=OR', 400, 'STRATA_BAD_QUERY'],
    ['an unclosed parenthesis', 'q=(lighthouse', 400, 'STRATA_BAD_QUERY'],
    ['an unclosed NEAR', 'q=NEAR(a%20b', 400, 'STRATA_BAD_QUERY'],
    ['a lone star', 'q=*', 400, 'STRATA_BAD_QUERY'],
    ['an unknown column of code', 'kind=code&q=title:keeper', 400, 'STRATA_BAD_QUERY'],
    ['no q= at all', '', 400, 'STRATA_BAD_QUERY'],
    ['a blank q=', 'q=%20%20', 400, 'STRATA_BAD_QUERY'],
    ['a def= with no identifier in it', 'kind=code&def=%21%21', 400, 'STRATA_BAD_QUERY'],
    ['an invalid bucket name', 'q=x&bucket=Bad%20Name', 400, 'STRATA_INVALID_NAME'],
    ['an upper-case bucket name', 'q=x&bucket=Docs', 400, 'STRATA_INVALID_NAME'],
    ['a too long bucket name', `q=x&bucket=${'b'.repeat(64)}`, 400, 'STRATA_INVALID_NAME'],
    ['an empty bucket name', 'q=x&bucket=', 400, 'STRATA_INVALID_NAME'],
    ['offset paging, which it does not do', 'q=x&offset=20', 400, 'STRATA_BAD_REQUEST'],
    ['a misspelt cursor', 'q=x&curser=abc', 400, 'STRATA_BAD_REQUEST'],
    ['a NUL in q', 'q=a%00b', 400, 'STRATA_BAD_QUERY'],
  ])('refuses %s', async (_what, parameters, status, code) => {
    const { node } = startNode();
    await put(node, 'docs', 'a', 'lighthouse keeper');
    expectError(await node.app.inject({ url: `/v1/search?${parameters}`, headers: auth }), status, code);
  });

  /** The message of the 400 STRATA_BAD_QUERY that a search for `q` answers. */
  async function badQueryMessage(q: string): Promise<string> {
    const { node } = startNode();
    await put(node, 'docs', 'a', 'lighthouse keeper');
    const response = await node.app.inject({ url: `/v1/search?q=${encodeURIComponent(q)}`, headers: auth });
    expectError(response, 400, 'STRATA_BAD_QUERY');
    return (response.json() as { error: { message: string } }).error.message;
  }

  it('says where a malformed query broke, in the terms of the query as typed', async () => {
    expect(await badQueryMessage('lighthouse AND (keeper')).toBe('1 ( is not closed: add the missing )');
    expect(await badQueryMessage('a (b')).toBe('1 ( is not closed: add the missing )');
    expect(await badQueryMessage('lighthouse AND')).toBe(
      'the query is not valid FTS5 syntax: the query ends too early: an AND, OR, NOT, NEAR( or ( is missing what should follow it',
    );
    // q goes into the expression in parentheses: the message must not name the closing one.
    expect(await badQueryMessage('a AND')).toContain('the query ends too early');
    expect(await badQueryMessage('a OR NOT')).toBe(
      'the query is not valid FTS5 syntax: syntax error near "NOT", at character 6',
    );
    expect(await badQueryMessage('keeper ) lighthouse')).toBe(
      'the ) at character 8 closes no (: remove it, or open one before it',
    );
    expect(await badQueryMessage('e-mail ) x')).toBe(
      'the ) at character 8 closes no (: remove it, or open one before it',
    );
    // An operator found twice in q is placed where no operand precedes it.
    expect(await badQueryMessage('a OR OR b')).toBe(
      'the query is not valid FTS5 syntax: syntax error near "OR", at character 6 (OR must follow a word, a phrase or a ))',
    );
    expect(await badQueryMessage('a NOT b OR (NOT c)')).toBe(
      'the query is not valid FTS5 syntax: syntax error near "NOT", at character 13 (NOT must follow a word, a phrase or a ))',
    );
    expect(await badQueryMessage('a NOT NOT b')).toContain('at character 7');
    expect(await badQueryMessage('"lighthouse')).toContain('a phrase\'s closing " is missing');
    expect(await badQueryMessage('title:"')).toContain('a phrase\'s closing " is missing');
    expect(await badQueryMessage('a"b')).toContain('a phrase\'s closing " is missing');
    // A character the query never held is not named: FTS5 saw the filter put before a phrase.
    const caret = await badQueryMessage('alpha^');
    expect(caret).not.toContain('":"');
    expect(caret).toContain('a ^ must start a phrase');
    expect(await badQueryMessage('*')).toContain('a * must end a word');
  });

  it('places the error in q when def= joins it', async () => {
    const { node } = startNode();
    const response = await node.app.inject({
      url: `/v1/search?kind=code&def=render&q=${encodeURIComponent('scene AND')}`,
      headers: auth,
    });
    expectError(response, 400, 'STRATA_BAD_QUERY');
    const error = (response.json() as { error: { message: string; query?: string } }).error;
    expect(error.message).toContain('the query ends too early');
    expect(error.query).toBe('scene AND');
  });

  it('says how to query a JSON field when a name is read as a column', async () => {
    // A nested path is not a field query: FTS5 reads `meta:` as a column filter.
    const message = await badQueryMessage('meta:title:keeper');
    expect(message).toContain('no such column: meta');
    expect(message).toContain('name:"some words"');
  });

  describe('who sees what', () => {
    async function setUp() {
      const { node } = startNode();
      await put(node, 'private', 'note', 'compass in a private bucket');
      await put(node, 'pub', 'note', 'compass in a public bucket');
      const reader = await tokenHeaders(node, 'read', 'zebracrossing');
      const writer = await tokenHeaders(node, 'write');
      return { node, reader, writer };
    }

    it('needs a token when no bucket is public', async () => {
      const { node } = await setUp();
      expectError(await node.app.inject({ url: '/v1/search?q=compass' }), 401, 'STRATA_UNAUTHORIZED');
      expectError(
        await node.app.inject({ url: '/v1/search?q=compass&bucket=pub' }),
        401,
        'STRATA_UNAUTHORIZED',
      );
      expectError(
        await node.app.inject({ url: '/v1/search?q=compass', headers: { authorization: 'Bearer nope' } }),
        401,
        'STRATA_UNAUTHORIZED',
      );
    });

    it('shows anonymous readers the public buckets only', async () => {
      const { node } = await setUp();
      await makePublic(node, 'pub');
      expect(await keys(node, { q: 'compass' }, {})).toEqual(['pub/note']);
      expect(await keys(node, { q: 'compass', bucket: 'pub' }, {})).toEqual(['pub/note']);
      expectError(
        await node.app.inject({ url: '/v1/search?q=compass&bucket=private' }),
        401,
        'STRATA_UNAUTHORIZED',
      );
      // Settings live in the system bucket _buckets: never shown to anyone but admins.
      expect(await keys(node, { q: 'publicRead:true' }, {})).toEqual([]);
    });

    it('shows read and write tokens every user bucket, never a system bucket', async () => {
      const { node, reader, writer } = await setUp();
      await makePublic(node, 'pub');
      for (const headers of [reader, writer]) {
        expect(await keys(node, { q: 'compass' }, headers)).toEqual(['private/note', 'pub/note']);
        expect(await keys(node, { q: 'compass', bucket: 'private' }, headers)).toEqual(['private/note']);
        // The token's own record (in _auth) holds its name.
        expect(await hits(node, { q: 'zebracrossing' }, headers)).toEqual([]);
        expect(await hits(node, { q: 'zebracrossing', versions: 'all' }, headers)).toEqual([]);
        expect(await hits(node, { q: 'publicRead:true' }, headers)).toEqual([]);
        expectError(
          await node.app.inject({ url: '/v1/search?q=zebracrossing&bucket=_auth', headers }),
          403,
          'STRATA_FORBIDDEN',
        );
      }
    });

    it('shows the admin every bucket, system buckets included', async () => {
      const { node } = await setUp();
      await makePublic(node, 'pub');
      expect(await keys(node, { q: 'compass' })).toEqual(['private/note', 'pub/note']);
      const tokenHits = await hits(node, { q: 'zebracrossing' });
      expect(tokenHits.map((hit) => hit.bucket)).toEqual(['_auth']);
      expect(await keys(node, { q: 'publicRead:true' })).toEqual(['_buckets/pub']);
      // A system bucket may be named as the filter.
      expect(await keys(node, { q: 'publicRead:true', bucket: '_buckets' })).toEqual(['_buckets/pub']);
      expect(await keys(node, { q: 'publicRead:true', bucket: '_auth' })).toEqual([]);
    });
  });

  it('POST /v1/admin/reindex rebuilds the search index to the same answers', async () => {
    const { node, clock } = startNode();
    await put(node, 'docs', 'story', 'the old lighthouse');
    clock.advance(hour);
    await put(node, 'docs', 'story', 'the new lighthouse');
    await put(node, 'app', 'main.js', 'function renderScene() {}', { 'content-type': 'text/javascript' });
    await put(node, 'docs', 'gone', 'a lighthouse gone');
    await remove(node, 'docs', 'gone');
    const battery = [
      { q: 'lighthouse' },
      { q: 'lighthouse', versions: 'all' },
      { q: 'old', kind: 'diff', versions: 'all' },
      { kind: 'code', def: 'render' },
      { q: 'lighthouse', versions: 'all', to: iso(start) },
    ];
    const before = await Promise.all(battery.map((parameters) => searchPage(node, parameters)));
    const recentBefore = await recent(node);
    const response = await node.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth });
    expect(response.statusCode, response.body).toBe(200);
    expect(await Promise.all(battery.map((parameters) => searchPage(node, parameters)))).toEqual(before);
    expect(await recent(node)).toEqual(recentBefore);
  });
});

describe('GET /v1/recent', () => {
  it('lists changed keys newest first, one entry per key, with their latest change', async () => {
    const { node, clock } = startNode();
    await put(node, 'docs', 'a', 'one');
    clock.set(start + 1_000);
    const b = await put(node, 'notes', 'b', 'two');
    clock.set(start + 2_000);
    const a2 = await put(node, 'docs', 'a', 'three');
    clock.set(start + 3_000);
    await put(node, 'docs', 'c', 'four');
    const deleted = await remove(node, 'docs', 'c');
    clock.set(start + 4_000);
    const future = await put(node, 'docs', 'later', 'five', { 'strata-effective-at': iso(start + day) });

    expect(await recent(node)).toEqual([
      {
        bucket: 'docs',
        key: 'later',
        version: future,
        kind: 'put',
        txTime: iso(start + 4_000),
        effectiveAt: iso(start + day),
      },
      {
        bucket: 'docs',
        key: 'c',
        version: deleted,
        kind: 'delete',
        txTime: iso(start + 3_000),
        effectiveAt: iso(start + 3_000),
      },
      {
        bucket: 'docs',
        key: 'a',
        version: a2,
        kind: 'put',
        txTime: iso(start + 2_000),
        effectiveAt: iso(start + 2_000),
      },
      {
        bucket: 'notes',
        key: 'b',
        version: b,
        kind: 'put',
        txTime: iso(start + 1_000),
        effectiveAt: iso(start + 1_000),
      },
    ]);
  });

  it('filters with bucket= and since=, and stops at limit=', async () => {
    const { node, clock } = startNode();
    for (let index = 0; index < 5; index++) {
      clock.set(start + index * 1_000);
      await put(node, index % 2 === 0 ? 'docs' : 'notes', `k${index}`, `value ${index}`);
    }
    const names = (changes: Change[]) => changes.map((change) => `${change.bucket}/${change.key}`);
    expect(names(await recent(node, { bucket: 'notes' }))).toEqual(['notes/k3', 'notes/k1']);
    expect(names(await recent(node, { since: iso(start + 2_000) }))).toEqual([
      'docs/k4',
      'notes/k3',
      'docs/k2',
    ]);
    expect(names(await recent(node, { since: String(start + 2_001) }))).toEqual(['docs/k4', 'notes/k3']);
    expect(names(await recent(node, { since: iso(start + 10_000) }))).toEqual([]);
    expect(names(await recent(node, { limit: 2 }))).toEqual(['docs/k4', 'notes/k3']);
    expect(names(await recent(node, { bucket: 'docs', since: iso(start + 1_000), limit: 1 }))).toEqual([
      'docs/k4',
    ]);
    expect(names(await recent(node, { bucket: 'empty' }))).toEqual([]);
    expect(await recent(node, { limit: 1000 })).toHaveLength(5);
  });

  it('shows each reader only the buckets it may read', async () => {
    const { node } = startNode();
    await put(node, 'private', 'note', 'p');
    await put(node, 'pub', 'note', 'q');
    const reader = await tokenHeaders(node, 'read');
    expectError(await node.app.inject({ url: '/v1/recent' }), 401, 'STRATA_UNAUTHORIZED');
    await makePublic(node, 'pub');
    const names = (changes: Change[]) => changes.map((change) => `${change.bucket}/${change.key}`).sort();
    expect(names(await recent(node, {}, {}))).toEqual(['pub/note']);
    expectError(await node.app.inject({ url: '/v1/recent?bucket=private' }), 401, 'STRATA_UNAUTHORIZED');
    expect(names(await recent(node, {}, reader))).toEqual(['private/note', 'pub/note']);
    const all = names(await recent(node, { limit: 1000 }));
    expect(all).toEqual(expect.arrayContaining(['private/note', 'pub/note', '_buckets/pub']));
    expect(all.some((name) => name.startsWith('_auth/'))).toBe(true);
    // An admin may filter by a system bucket; a reader may not.
    expect(names(await recent(node, { bucket: '_buckets' }))).toEqual(['_buckets/pub']);
    expectError(
      await node.app.inject({ url: '/v1/recent?bucket=_auth', headers: reader }),
      403,
      'STRATA_FORBIDDEN',
    );
  });

  it.each<[string, string, number, string]>([
    ['limit=0', 'limit=0', 400, 'STRATA_BAD_REQUEST'],
    ['limit=1001', 'limit=1001', 400, 'STRATA_BAD_REQUEST'],
    ['limit=many', 'limit=many', 400, 'STRATA_BAD_REQUEST'],
    ['an impossible since=', 'since=2030-02-30T00:00:00Z', 400, 'STRATA_INVALID_TIME'],
    ['a word for since=', 'since=today', 400, 'STRATA_INVALID_TIME'],
    ['an invalid bucket', 'bucket=No%20Such', 400, 'STRATA_INVALID_NAME'],
    ['a malformed system bucket', 'bucket=_Auth', 400, 'STRATA_INVALID_NAME'],
    ['a repeated parameter', 'limit=1&limit=2', 400, 'STRATA_BAD_REQUEST'],
    ['from= (recent takes since= and until=)', 'from=2030-01-01T00:00:00Z', 400, 'STRATA_BAD_REQUEST'],
  ])('refuses %s', async (_what, parameters, status, code) => {
    const { node } = startNode();
    await put(node, 'docs', 'a', 'x');
    expectError(await node.app.inject({ url: `/v1/recent?${parameters}`, headers: auth }), status, code);
  });
});
