import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { StrataError } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import { Store, type StoreOptions, type WriteOp } from '../store/store.js';
import { prefixOption, textTokenizer } from './schema.js';
import { textOfPrefix } from './search-index.js';
import type { BucketFilter, SearchHit, SearchRequest } from './search-query.js';

/**
 * The search index through the store's own write path (DESIGN §4): what is indexed, which
 * versions are current at a time, filters, pages and diffs. HTTP parameters are tested in
 * src/http/routes/search.test.ts.
 */
const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

let dataDir: string;
let clock: ManualClock;
let store: Store;
let opened: Store[];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strata-search-'));
  clock = new ManualClock(start);
  opened = [];
  store = open();
});

afterEach(async () => {
  for (const each of opened) await each.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function open(options: Partial<StoreOptions> = {}): Store {
  const created = new Store({ dataDir: mkdtempSync(join(dataDir, 'store-')), clock, ...options });
  opened.push(created);
  return created;
}

interface PutOptions {
  bucket?: string;
  contentType?: string;
  effectiveAt?: number;
  ifNoneMatch?: boolean;
}

async function putOp(key: string, value: string | Buffer, options: PutOptions = {}): Promise<WriteOp> {
  const blob = await store.blobs.fromBuffer(typeof value === 'string' ? Buffer.from(value) : value);
  return {
    kind: 'put',
    bucket: options.bucket ?? 'docs',
    key,
    blob,
    contentType: options.contentType ?? 'text/plain; charset=utf-8',
    ...(options.effectiveAt !== undefined ? { effectiveAt: options.effectiveAt } : {}),
    ...(options.ifNoneMatch ? { ifNoneMatch: true } : {}),
  };
}

async function put(key: string, value: string | Buffer, options: PutOptions = {}): Promise<VersionId> {
  const result = await store.write({ ops: [await putOp(key, value, options)] });
  return result.versions[0] as VersionId;
}

async function remove(key: string, options: { bucket?: string; effectiveAt?: number } = {}) {
  const result = await store.write({
    ops: [
      {
        kind: 'delete',
        bucket: options.bucket ?? 'docs',
        key,
        ...(options.effectiveAt !== undefined ? { effectiveAt: options.effectiveAt } : {}),
      },
    ],
  });
  return result.versions[0] as VersionId;
}

async function retract(target: VersionId): Promise<VersionId> {
  const result = await store.write({ ops: [{ kind: 'retract', target }] });
  return result.versions[0] as VersionId;
}

type Query = Partial<SearchRequest> & { now?: number; visible?: BucketFilter };

function searchPage(query: Query): { hits: SearchHit[]; cursor?: string } {
  const { now, visible, ...rest } = query;
  return store.searches.search(
    store.snapshot(now),
    { kind: 'text', versions: 'current', limit: 100, ...rest },
    visible ?? { kind: 'all' },
  );
}

function search(query: Query): SearchHit[] {
  return searchPage(query).hits;
}

function versionsOf(query: Query): string[] {
  return search(query).map((hit) => hit.version);
}

function keysOf(query: Query): string[] {
  return search(query)
    .map((hit) => `${hit.bucket}/${hit.key}`)
    .sort();
}

/** Every hit of a query, page by page; fails rather than loop forever. */
function allPages(query: Query): { hits: SearchHit[]; pages: number } {
  const hits: SearchHit[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages <= 1_000; pages++) {
    const page = searchPage({ ...query, ...(cursor !== undefined ? { cursor } : {}) });
    expect(page.hits.length).toBeLessThanOrEqual(query.limit ?? 100);
    hits.push(...page.hits);
    if (page.cursor === undefined) return { hits, pages };
    cursor = page.cursor;
  }
  throw new Error('more than 1,000 pages');
}

function refusalOf(action: () => unknown): StrataError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError');
}

describe('what is indexed', () => {
  it('indexes every text-like object by content type or key extension, and no binary object', async () => {
    const word = 'marmalade';
    const byType: Array<[string, string, string]> = [
      ['plain', 'text/plain', `${word} on toast`],
      ['markdown', 'text/markdown; charset=utf-8', `# ${word}`],
      ['page', 'text/html; charset=utf-8', `<p>${word}</p>`],
      ['style', 'text/css', `.${word} { color: orange; }`],
      ['logo', 'image/svg+xml', `<svg><title>${word}</title></svg>`],
      ['feed', 'application/xml', `<feed><title>${word}</title></feed>`],
      ['data', 'application/json', JSON.stringify({ spread: word })],
      ['script', 'text/javascript', `const ${word} = 1;`],
      ['shader', 'text/x-glsl; charset=utf-8', `float ${word} = 1.0;`],
      ['compute', 'text/x-wgsl', `let ${word} = 1.0;`],
    ];
    const byExtension = [
      'notes.txt',
      'page.html',
      'style.css',
      'logo.svg',
      'feed.xml',
      'data.json',
      'app.js',
      'module.mjs',
      'types.ts',
      'readme.md',
      'shader.frag',
      'compute.wgsl',
    ];
    const binary: Array<[string, string]> = [
      ['photo.png', 'image/png'],
      ['blob.bin', 'application/octet-stream'],
      ['no-extension', 'application/octet-stream'],
      ['module.wasm', 'application/wasm'],
      ['song.mp3', 'audio/mpeg'],
    ];
    for (const [key, contentType, text] of byType) await put(key, text, { contentType });
    for (const key of byExtension)
      await put(key, `${word} in ${key}`, { contentType: 'application/octet-stream' });
    for (const [key, contentType] of binary) await put(key, `${word} bytes`, { contentType });

    const textKeys = [
      ...byType.map(([key]) => `docs/${key}`),
      ...byExtension.map((key) => `docs/${key}`),
    ].sort();
    expect(keysOf({ q: word })).toEqual(textKeys);
    expect(keysOf({ q: word, versions: 'all' })).toEqual(textKeys);
    // The first version of each text object adds all of its lines.
    expect(keysOf({ q: word, kind: 'diff', versions: 'all' })).toEqual(textKeys);
  });

  it('indexes code identifiers of JavaScript and, lexically, of other languages', async () => {
    await put('app.js', 'export function renderScene(scene) { drawMesh(scene.mesh); }');
    await put('main.js', "import { renderScene } from './app.js';\nrenderScene(world);");
    await put('shader.frag', 'vec3 shadeSurface(vec3 n) { return normalize(n); }');
    await put('types.ts', 'export interface SceneOptions { width: number }\nrenderScene(options);');
    await put('readme.txt', 'call renderScene to draw');

    expect(keysOf({ kind: 'code', def: 'renderScene' })).toEqual(['docs/app.js']);
    expect(keysOf({ kind: 'code', def: 'render' })).toEqual(['docs/app.js']);
    expect(keysOf({ kind: 'code', def: 'shadeSurface' })).toEqual(['docs/shader.frag']);
    expect(keysOf({ kind: 'code', def: 'surface' })).toEqual(['docs/shader.frag']);
    expect(keysOf({ kind: 'code', def: 'SceneOptions' })).toEqual(['docs/types.ts']);
    expect(keysOf({ kind: 'code', ref: 'renderScene' })).toEqual(['docs/main.js', 'docs/types.ts']);
    expect(keysOf({ kind: 'code', ref: 'drawMesh' })).toEqual(['docs/app.js']);
    expect(keysOf({ kind: 'code', def: 'drawMesh' })).toEqual([]);
    // q= searches both columns; plain text is not code.
    expect(keysOf({ kind: 'code', q: 'renderScene' })).toEqual([
      'docs/app.js',
      'docs/main.js',
      'docs/types.ts',
    ]);
    expect(keysOf({ kind: 'code', def: 'renderScene', q: 'mesh' })).toEqual(['docs/app.js']);
    // Code is text too.
    expect(keysOf({ q: 'drawMesh' })).toEqual(['docs/app.js']);
  });

  it('answers field:value for JSON string, number and boolean values', async () => {
    await put('keeper.json', JSON.stringify({ title: 'Lighthouse keeper', year: 1923, draft: false }), {
      contentType: 'application/json',
    });
    await put('split.json', JSON.stringify({ title: 'Lighthouse', subtitle: 'keeper' }), {
      contentType: 'application/json',
    });
    await put('nested.json', JSON.stringify({ meta: { author: { first_name: 'Ada' } } }), {
      contentType: 'application/json',
    });
    expect(keysOf({ q: 'title:keeper' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'TITLE:Keeper' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'title:lighthouse' })).toEqual(['docs/keeper.json', 'docs/split.json']);
    expect(keysOf({ q: 'subtitle:keeper' })).toEqual(['docs/split.json']);
    expect(keysOf({ q: 'author:keeper' })).toEqual([]);
    expect(keysOf({ q: 'year:1923' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'draft:false' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'first_name:ada' })).toEqual(['docs/nested.json']);
    expect(keysOf({ q: 'title:keeper OR first_name:ada' })).toEqual(['docs/keeper.json', 'docs/nested.json']);
    expect(keysOf({ q: 'keeper' })).toEqual(['docs/keeper.json', 'docs/split.json']);
  });

  it('answers prefixes and phrases within one JSON field', async () => {
    const json = { contentType: 'application/json' };
    await put('keeper.json', JSON.stringify({ title: 'Lighthouse keeper', tags: ['sea light'] }), json);
    await put('split.json', JSON.stringify({ title: 'Lighthouse', subtitle: 'keeper' }), json);
    await put('reversed.json', JSON.stringify({ title: 'keeper of the lighthouse' }), json);
    expect(keysOf({ q: 'title:keep*' })).toEqual(['docs/keeper.json', 'docs/reversed.json']);
    expect(keysOf({ q: 'title:kee *' })).toEqual(['docs/keeper.json', 'docs/reversed.json']);
    expect(keysOf({ q: 'subtitle:keep*' })).toEqual(['docs/split.json']);
    // The words next to each other, in this order, in one value of that field.
    expect(keysOf({ q: 'title:"lighthouse keeper"' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'TITLE:"Lighthouse  KEEPER"' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'title:"keeper lighthouse"' })).toEqual([]);
    expect(keysOf({ q: 'title:"keeper of the"' })).toEqual(['docs/reversed.json']);
    expect(keysOf({ q: 'title:"lighthouse kee"*' })).toEqual(['docs/keeper.json']);
    // Punctuation inside a value is cut as in the text: a one-word value may hold several words.
    expect(keysOf({ q: 'title:lighthouse-keeper' })).toEqual(['docs/keeper.json']);
    // A phrase never runs from one value into the next, nor from one field into another.
    await put('items.json', JSON.stringify({ tags: ['sea', 'light'], note: { tags: 'light sea' } }), json);
    expect(keysOf({ q: 'tags:"sea light"' })).toEqual(['docs/keeper.json']);
    expect(keysOf({ q: 'tags:"light sea"' })).toEqual(['docs/items.json']);
    expect(keysOf({ q: 'tags:"light light"' })).toEqual([]);
    expect(keysOf({ q: 'title:"keeper sea"' })).toEqual([]);
    // A quoted phrase beside a field term keeps its meaning.
    expect(keysOf({ q: 'title:keeper AND "of the"' })).toEqual(['docs/reversed.json']);
    expect(keysOf({ q: 'title:keeper AND "lighthouse keeper"' })).toEqual(['docs/keeper.json']);
  });

  it('cuts a JSON value into words where FTS5 does, combining accents included', async () => {
    const json = { contentType: 'application/json' };
    // "école" written with a combining acute: FTS5 keeps it one word, and folds it to "ecole".
    await put('decomposed.json', JSON.stringify({ name: 'e\u0301cole normale' }), json);
    await put('precomposed.json', JSON.stringify({ name: '\u00e9cole libre' }), json);
    expect(keysOf({ q: 'name:\u00e9cole' })).toEqual(['docs/decomposed.json', 'docs/precomposed.json']);
    expect(keysOf({ q: 'name:e\u0301cole' })).toEqual(['docs/decomposed.json', 'docs/precomposed.json']);
    expect(keysOf({ q: 'name:"\u00e9cole normale"' })).toEqual(['docs/decomposed.json']);
    expect(keysOf({ q: 'name:cole' })).toEqual([]);
  });

  it('indexes a JavaScript file whose syntax tree is too deep to walk (the write must not fail)', async () => {
    const source = `export const chain = start${'.next'.repeat(20_000)};\nfunction uniqueMarker() {}`;
    await put('bundle.js', source, { contentType: 'text/javascript' });
    expect(keysOf({ q: 'uniqueMarker' })).toEqual(['docs/bundle.js']);
    expect(keysOf({ kind: 'code', def: 'uniqueMarker' })).toEqual(['docs/bundle.js']);
  });

  it('indexes deeply nested JSON (the write must not fail)', async () => {
    const depth = 20_000;
    await put('deep.json', `${'{"level":'.repeat(depth)}"abyssal"${'}'.repeat(depth)}`, {
      contentType: 'application/json',
    });
    expect(keysOf({ q: 'abyssal' })).toEqual(['docs/deep.json']);
  });
});

describe.each([
  ['inline blobs', { searchIndexBytesMax: 64 }],
  ['blobs in files', { searchIndexBytesMax: 64, inlineBytesMax: 16 }],
])('truncation with %s', (_name, options) => {
  it('indexes only the first searchIndexBytesMax bytes and marks the hits truncated', async () => {
    store = open(options);
    const long = `beginning ${'filler '.repeat(20)}ending`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(64);
    const exact = `${'x'.repeat(55)} boundary`;
    expect(Buffer.byteLength(exact)).toBe(64);
    await put('long.txt', long);
    await put('exact.txt', exact);
    await put('short.txt', 'short beginning');

    const hits = search({ q: 'beginning' });
    expect(hits.map((hit) => [hit.key, hit.truncated])).toEqual(
      expect.arrayContaining([
        ['long.txt', true],
        ['short.txt', undefined],
      ]),
    );
    expect(hits).toHaveLength(2);
    expect(search({ q: 'ending' })).toEqual([]);
    const boundary = search({ q: 'boundary' });
    expect(boundary.map((hit) => hit.key)).toEqual(['exact.txt']);
    expect(boundary[0]?.truncated).toBeUndefined();
  });

  it('cuts a multi-byte character without failing', async () => {
    store = open(options);
    await put('french.txt', `début ${'é'.repeat(60)} fin`);
    const hits = search({ q: 'début' });
    expect(hits.map((hit) => [hit.key, hit.truncated])).toEqual([['french.txt', true]]);
    expect(search({ q: 'fin' })).toEqual([]);
    // 'début ' is 7 bytes, then 'é' takes 2: the 64-byte cut falls inside the 29th, which is left out.
    const [hit] = search({ q: 'é*' });
    expect(hit?.snippet).not.toContain('\ufffd');
    expect(hit?.snippet).toContain('é'.repeat(28));
  });

  it('leaves out a character the cut splits, whatever its length', () => {
    for (const character of ['é', '€', '😀']) {
      const bytes = Buffer.from(`ab${character}`);
      for (let cut = 3; cut < bytes.length; cut += 1)
        expect(textOfPrefix(bytes.subarray(0, cut)), `${character} cut at ${cut}`).toBe('ab');
      expect(textOfPrefix(bytes)).toBe(`ab${character}`);
    }
    expect(textOfPrefix(Buffer.from('plain'))).toBe('plain');
  });
});

describe('current versions and versions=all', () => {
  it('matches an old version only with versions=all', async () => {
    const v1 = await put('story', 'the old lighthouse');
    const v2 = await put('story', 'the new lighthouse');
    expect(versionsOf({ q: 'old' })).toEqual([]);
    expect(versionsOf({ q: 'old', versions: 'all' })).toEqual([v1]);
    expect(versionsOf({ q: 'new' })).toEqual([v2]);
    expect(versionsOf({ q: 'lighthouse' })).toEqual([v2]);
    expect(versionsOf({ q: 'lighthouse', versions: 'all' }).sort()).toEqual([v1, v2].sort());
  });

  it('never matches a deleted key as current, but keeps its versions for versions=all', async () => {
    const v1 = await put('story', 'a lighthouse tale');
    const v2 = await put('story', 'a lighthouse saga');
    await remove('story');
    expect(versionsOf({ q: 'lighthouse' })).toEqual([]);
    expect(versionsOf({ q: 'lighthouse', versions: 'all' }).sort()).toEqual([v1, v2].sort());
    const v3 = await put('story', 'the lighthouse returns');
    expect(versionsOf({ q: 'lighthouse' })).toEqual([v3]);
  });

  it('a binary overwrite ends the text version being current', async () => {
    const text = await put('picture', 'a drawing of a lighthouse');
    await put('picture', Buffer.from('lighthouse \u0000\u0001 bytes'), { contentType: 'image/png' });
    expect(versionsOf({ q: 'lighthouse' })).toEqual([]);
    expect(versionsOf({ q: 'lighthouse', versions: 'all' })).toEqual([text]);
  });

  it('at= answers what was current at that effective time', async () => {
    const v1 = await put('plan', 'first draft of the plan');
    clock.advance(hour);
    const v2 = await put('plan', 'second draft of the plan');
    clock.advance(hour);
    await remove('plan');
    expect(versionsOf({ q: 'draft', at: start - 1 })).toEqual([]);
    expect(versionsOf({ q: 'draft', at: start })).toEqual([v1]);
    expect(versionsOf({ q: 'draft', at: start + 30 * minute })).toEqual([v1]);
    expect(versionsOf({ q: 'first', at: start + hour + 1 })).toEqual([]);
    expect(versionsOf({ q: 'draft', at: start + hour })).toEqual([v2]);
    expect(versionsOf({ q: 'draft', at: start + 2 * hour - 1 })).toEqual([v2]);
    expect(versionsOf({ q: 'draft', at: start + 2 * hour })).toEqual([]);
    expect(versionsOf({ q: 'draft' })).toEqual([]);
  });

  it('a future-dated version is not current before its time', async () => {
    const today = await put('menu', 'today: soup on the menu');
    const tomorrow = await put('menu', 'tomorrow: salad on the menu', { effectiveAt: start + day });
    expect(versionsOf({ q: 'menu' })).toEqual([today]);
    expect(versionsOf({ q: 'salad' })).toEqual([]);
    expect(versionsOf({ q: 'salad', versions: 'all' })).toEqual([tomorrow]);
    expect(versionsOf({ q: 'menu', at: start + day - 1 })).toEqual([today]);
    expect(versionsOf({ q: 'menu', at: start + day })).toEqual([tomorrow]);
    clock.set(start + day + 1);
    expect(versionsOf({ q: 'menu' })).toEqual([tomorrow]);
    expect(versionsOf({ q: 'soup' })).toEqual([]);
  });

  it('a future-dated delete leaves the version current until then', async () => {
    const notice = await put('notice', 'an ephemeral notice');
    await remove('notice', { effectiveAt: start + hour });
    expect(versionsOf({ q: 'ephemeral' })).toEqual([notice]);
    expect(versionsOf({ q: 'ephemeral', at: start + 2 * hour })).toEqual([]);
    clock.set(start + 2 * hour);
    expect(versionsOf({ q: 'ephemeral' })).toEqual([]);
  });

  it('a retracted version is never current; the one before it is again', async () => {
    const alpha = await put('notes', 'alpha release notes');
    const beta = await put('notes', 'beta release notes');
    expect(versionsOf({ q: 'release' })).toEqual([beta]);
    await retract(beta);
    expect(versionsOf({ q: 'beta' })).toEqual([]);
    expect(versionsOf({ q: 'release' })).toEqual([alpha]);
    expect(versionsOf({ q: 'alpha' })).toEqual([alpha]);
    // A retracted future version does not take over at its time either.
    const gamma = await put('notes', 'gamma release notes', { effectiveAt: start + day });
    await retract(gamma);
    expect(versionsOf({ q: 'release', at: start + 2 * day })).toEqual([alpha]);
    expect(versionsOf({ q: 'gamma', at: start + 2 * day })).toEqual([]);
  });

  it('reads one snapshot: a search in an earlier snapshot does not see later commits', async () => {
    const before = store.snapshot();
    await put('late', 'a late arrival');
    expect(
      store.searches.search(
        before,
        { kind: 'text', versions: 'all', limit: 10, q: 'arrival' },
        { kind: 'all' },
      ).hits,
    ).toEqual([]);
    expect(keysOf({ q: 'arrival' })).toEqual(['docs/late']);
  });
});

describe('time ranges (from, to: transaction time)', () => {
  let versions: { one: VersionId; two: VersionId; three: VersionId };
  const t1 = start;
  const t2 = start + hour;
  const t3 = start + 2 * hour;

  beforeEach(async () => {
    const one = await put('one', 'harbor one');
    clock.set(t2);
    const two = await put('two', 'harbor two');
    clock.set(t3);
    const three = await put('three', 'harbor three');
    versions = { one, two, three };
  });

  it.each<[string, { from?: number; to?: number }, Array<'one' | 'two' | 'three'>]>([
    ['no range', {}, ['one', 'two', 'three']],
    ['from the second', { from: t2 }, ['two', 'three']],
    ['to the second (inclusive)', { to: t2 }, ['one', 'two']],
    ['exactly the second', { from: t2, to: t2 }, ['two']],
    ['between two writes', { from: t1 + 1, to: t2 - 1 }, []],
    ['after everything', { from: t3 + 1 }, []],
    ['before everything', { to: t1 - 1 }, []],
    ['around everything', { from: t1 - day, to: t3 + day }, ['one', 'two', 'three']],
  ])('%s', (_name, range, expected) => {
    for (const current of ['current', 'all'] as const) {
      expect(versionsOf({ q: 'harbor', versions: current, ...range }).sort()).toEqual(
        expected.map((name) => versions[name]).sort(),
      );
    }
  });

  it('with versions=current, an old version in range is still not current', async () => {
    clock.set(t3 + hour);
    const later = await put('one', 'harbor one rewritten');
    expect(versionsOf({ q: 'harbor', to: t2 }).sort()).toEqual([versions.two]);
    expect(versionsOf({ q: 'harbor', to: t2, versions: 'all' }).sort()).toEqual(
      [versions.one, versions.two].sort(),
    );
    expect(versionsOf({ q: 'rewritten', from: t3 + hour })).toEqual([later]);
  });

  it('covers every op of a multi-op commit at the edge of a range', async () => {
    clock.set(t3 + hour);
    const result = await store.write({
      ops: await Promise.all([
        putOp('batch/a', 'harbor batch a'),
        putOp('batch/b', 'harbor batch b'),
        putOp('batch/c', 'harbor batch c'),
      ]),
    });
    const edge = t3 + hour;
    for (const range of [{ from: edge }, { to: edge }, { from: edge, to: edge }]) {
      const found = versionsOf({ q: 'batch', versions: 'all', ...range }).sort();
      expect(found, JSON.stringify(range)).toEqual([...result.versions].sort());
    }
  });
});

describe('bucket, prefix and visibility filters', () => {
  beforeEach(async () => {
    for (const bucket of ['docs', 'notes']) {
      for (const key of ['guides/intro', 'guides/setup', 'blog/post', 'a_b', 'axb']) {
        await put(key, `compass bearing for ${key}`, { bucket });
      }
    }
    await put('secret', 'compass in a system bucket', { bucket: '_system' });
  });

  it('filters by bucket and by key prefix, taken literally', () => {
    expect(keysOf({ q: 'compass', bucket: 'docs' })).toEqual([
      'docs/a_b',
      'docs/axb',
      'docs/blog/post',
      'docs/guides/intro',
      'docs/guides/setup',
    ]);
    expect(keysOf({ q: 'compass', prefix: 'guides/' })).toEqual([
      'docs/guides/intro',
      'docs/guides/setup',
      'notes/guides/intro',
      'notes/guides/setup',
    ]);
    expect(keysOf({ q: 'compass', bucket: 'notes', prefix: 'guides/s' })).toEqual(['notes/guides/setup']);
    // `_` and `%` are not patterns.
    expect(keysOf({ q: 'compass', bucket: 'docs', prefix: 'a_' })).toEqual(['docs/a_b']);
    expect(keysOf({ q: 'compass', prefix: '%' })).toEqual([]);
    expect(keysOf({ q: 'compass', prefix: 'nothing/' })).toEqual([]);
    expect(keysOf({ q: 'compass', bucket: 'empty' })).toEqual([]);
  });

  it('shows only the buckets a reader may see', () => {
    expect(keysOf({ q: 'compass', visible: { kind: 'all' } })).toContain('_system/secret');
    expect(keysOf({ q: 'compass', visible: { kind: 'user' } })).not.toContain('_system/secret');
    expect(keysOf({ q: 'compass', visible: { kind: 'user' } })).toHaveLength(10);
    expect(keysOf({ q: 'compass', visible: { kind: 'only', buckets: ['notes'] } })).toHaveLength(5);
    expect(keysOf({ q: 'compass', visible: { kind: 'only', buckets: [] } })).toEqual([]);
  });
});

describe('pages', () => {
  it('orders hits best first (bm25: higher score is better)', async () => {
    await put('once', 'the word beacon appears once among many other words in this longer sentence');
    await put('often', 'beacon beacon beacon beacon');
    const hits = search({ q: 'beacon' });
    expect(hits.map((hit) => hit.key)).toEqual(['often', 'once']);
    expect(hits[0]?.score).toBeGreaterThan(hits[1]?.score ?? Number.POSITIVE_INFINITY);
    expect(hits[1]?.score).toBeGreaterThan(0);
  });

  it('covers every hit exactly once across pages, even when every score ties', async () => {
    const written: string[] = [];
    for (let index = 0; index < 45; index++) written.push(await put(`same/${index}`, 'identical tide table'));
    for (const limit of [1, 7, 45, 100]) {
      const { hits, pages } = allPages({ q: 'tide', limit });
      expect(hits.map((hit) => hit.version).sort(), `limit ${limit}`).toEqual([...written].sort());
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(45 / limit));
    }
  });

  it('covers every hit exactly once across pages with scores in order', async () => {
    const written: string[] = [];
    for (let index = 0; index < 40; index++) {
      written.push(
        await put(`varied/${index}`, `${'tide '.repeat(1 + (index % 5))}and ${'sand '.repeat(index % 7)}`),
      );
    }
    const { hits } = allPages({ q: 'tide', limit: 6 });
    expect(hits.map((hit) => hit.version).sort()).toEqual([...written].sort());
    for (let index = 1; index < hits.length; index++)
      expect(hits[index]?.score).toBeLessThanOrEqual(hits[index - 1]?.score as number);
  });

  it('pages through current versions when most matches are old versions', async () => {
    const current: string[] = [];
    for (let index = 0; index < 40; index++) await put('churn', `churn value ${index}`);
    current.push(await put('churn', 'churn value final'));
    for (let index = 0; index < 8; index++) current.push(await put(`other/${index}`, `churn other ${index}`));
    const { hits } = allPages({ q: 'churn', limit: 3 });
    expect(hits.map((hit) => hit.version).sort()).toEqual(current.sort());
    expect(allPages({ q: 'churn', limit: 3, versions: 'all' }).hits).toHaveLength(49);
  });

  it('refuses a cursor it did not make', async () => {
    await put('k', 'anything');
    for (const cursor of ['garbage!', 'bm90IGpzb24', Buffer.from('{"offset":-1}').toString('base64url')]) {
      expect(refusalOf(() => search({ q: 'anything', cursor })).code).toBe('STRATA_BAD_REQUEST');
    }
  });
});

describe('diffs', () => {
  it('indexes the lines each version added and removed relative to its parent', async () => {
    const v1 = await put('poem', 'alpha\nbeta\nobsolete line\ngamma\n');
    const v2 = await put('poem', 'alpha\nbeta changed\ngamma\ndelta\n');

    const delta = search({ kind: 'diff', q: 'delta' });
    expect(delta.map((hit) => hit.version)).toEqual([v2]);
    expect(delta[0]?.lines).toEqual({ added: ['delta'], removed: [] });

    const beta = search({ kind: 'diff', q: 'beta' });
    expect(beta.map((hit) => hit.version)).toEqual([v2]);
    expect(beta[0]?.lines).toEqual({ added: ['beta changed'], removed: ['beta'] });

    const obsolete = search({ kind: 'diff', q: 'obsolete' });
    expect(obsolete.map((hit) => hit.version)).toEqual([v2]);
    expect(obsolete[0]?.lines).toEqual({ added: [], removed: ['obsolete line'] });
    expect(obsolete[0]?.snippet).toContain('«obsolete»');

    // alpha never changed after the first version, which added every line.
    expect(versionsOf({ kind: 'diff', q: 'alpha' })).toEqual([]);
    const first = search({ kind: 'diff', q: 'alpha', versions: 'all' });
    expect(first.map((hit) => hit.version)).toEqual([v1]);
    expect(first[0]?.lines).toEqual({ added: ['alpha'], removed: [] });
    expect(versionsOf({ kind: 'diff', q: 'removed:beta' })).toEqual([v2]);
    expect(versionsOf({ kind: 'diff', q: 'added:obsolete' })).toEqual([]);
  });

  it('diffs against nothing after a delete, and an unchanged rewrite adds no diff', async () => {
    await put('poem', 'omega\n');
    await remove('poem');
    const reborn = await put('poem', 'omega\nsigma\n');
    const omega = search({ kind: 'diff', q: 'omega' });
    expect(omega.map((hit) => hit.version)).toEqual([reborn]);
    // Only the changed lines holding a searched term are shown.
    expect(omega[0]?.lines).toEqual({ added: ['omega'], removed: [] });
    expect(search({ kind: 'diff', q: 'omega OR sigma' })[0]?.lines).toEqual({
      added: ['omega', 'sigma'],
      removed: [],
    });
    await put('poem', 'omega\nsigma\n');
    expect(versionsOf({ kind: 'diff', q: 'omega' })).toEqual([]);
    expect(versionsOf({ kind: 'diff', q: 'omega', versions: 'all' })).toHaveLength(2);
  });

  it('shows the changed lines that hold a searched word as a word, not inside another', async () => {
    await put('main.js', 'const state = {};\n');
    await put(
      'main.js',
      'const state = {};\ngl.enable(gl.DEPTH_TEST);\nwindow.phosgl = state;\nconst Café = 1;\nprefixed();\n',
    );
    const lines = (q: string) => search({ kind: 'diff', q })[0]?.lines?.added;
    expect(lines('"gl.enable(gl.DEPTH_TEST)"')).toEqual(['gl.enable(gl.DEPTH_TEST);']);
    expect(lines('depth_test')).toEqual(['gl.enable(gl.DEPTH_TEST);']);
    expect(lines('phosgl')).toEqual(['window.phosgl = state;']);
    expect(lines('cafe')).toEqual(['const Café = 1;']);
    expect(lines('prefix*')).toEqual(['prefixed();']);
    expect(lines('"prefix"*')).toEqual(['prefixed();']);
    expect(lines('added:phosgl')).toEqual(['window.phosgl = state;']);
    expect(lines('phosgl OR NEAR(gl enable, 2)')).toEqual([
      'gl.enable(gl.DEPTH_TEST);',
      'window.phosgl = state;',
    ]);
    expect(lines('phosgl NOT window2')).toEqual(['window.phosgl = state;']);
  });

  it('diffs JSON and code line by line', async () => {
    await put('conf.json', '{\n  "title": "Lighthouse"\n}\n', { contentType: 'application/json' });
    const next = await put('conf.json', '{\n  "title": "Lighthouse keeper"\n}\n', {
      contentType: 'application/json',
    });
    const hits = search({ kind: 'diff', q: 'keeper' });
    expect(hits.map((hit) => hit.version)).toEqual([next]);
    expect(hits[0]?.lines).toEqual({ added: ['  "title": "Lighthouse keeper"'], removed: [] });
  });
});

describe('commits', () => {
  it('indexes all ops of a multi-op commit, under one commit id', async () => {
    const result = await store.write({
      ops: await Promise.all([putOp('pair/a', 'saffron one'), putOp('pair/b', 'saffron two')]),
    });
    const hits = search({ q: 'saffron' });
    expect(hits.map((hit) => hit.version).sort()).toEqual([...result.versions].sort());
    for (const hit of hits) {
      expect(hit.commit).toBe(result.commit);
      expect(hit.txTime).toBe(start);
      expect(hit.effectiveAt).toBe(start);
      expect(hit.bucket).toBe('docs');
      expect(hit.snippet).toContain('«saffron»');
    }
  });

  it('indexes nothing of a refused multi-op commit', async () => {
    await put('taken', 'placeholder');
    await expect(
      store.write({
        ops: await Promise.all([
          putOp('fresh', 'saffron fresh'),
          putOp('taken', 'saffron taken', { ifNoneMatch: true }),
        ]),
      }),
    ).rejects.toMatchObject({ code: 'STRATA_PRECONDITION_FAILED' });
    expect(search({ q: 'saffron', versions: 'all' })).toEqual([]);
    expect(search({ q: 'saffron', kind: 'diff', versions: 'all' })).toEqual([]);
    expect(keysOf({ q: 'placeholder' })).toEqual(['docs/taken']);
  });

  it('a refused commit in a group-commit batch leaves the others searchable', async () => {
    await put('taken', 'placeholder');
    const outcomes = await Promise.allSettled([
      store.write({ ops: [await putOp('first', 'saffron first')] }),
      store.write({ ops: [await putOp('taken', 'saffron refused', { ifNoneMatch: true })] }),
      store.write({ ops: [await putOp('third', 'saffron third')] }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(keysOf({ q: 'saffron', versions: 'all' })).toEqual(['docs/first', 'docs/third']);
  });

  it('reindex rebuilds the same index', async () => {
    const v1 = await put('story', 'the old lighthouse');
    await put('story', 'the new lighthouse');
    await put('app.js', 'function renderScene() {}', { contentType: 'text/javascript' });
    await put('gone', 'a vanished lighthouse');
    await remove('gone');
    const queries: Query[] = [
      { q: 'lighthouse' },
      { q: 'lighthouse', versions: 'all' },
      { q: '"old lighthouse"', versions: 'all' },
      { q: 'old', kind: 'diff', versions: 'all' },
      { kind: 'code', def: 'render' },
    ];
    const before = queries.map(search);
    expect(versionsOf({ q: 'old', versions: 'all' })).toEqual([v1]);
    expect(versionsOf({ q: '"old lighthouse"', versions: 'all' })).toEqual([v1]);
    await store.reindex();
    expect(queries.map(search)).toEqual(before);
    await put('after', 'a lighthouse after the rebuild');
    expect(keysOf({ q: 'rebuild' })).toEqual(['docs/after']);
  });

  it('rebuilds an index of the layout before search rowids (keyed by cursor) when the node starts', async () => {
    const dir = openInOwnDir('old-layout-');
    await put('story', 'the old lighthouse');
    await put('story', 'the new lighthouse');
    await put('app.js', 'function renderScene() {}', { contentType: 'text/javascript' });
    const queries: Query[] = [
      { q: 'lighthouse' },
      { q: 'lighthouse', versions: 'all' },
      { q: 'old', kind: 'diff', versions: 'all' },
      { kind: 'code', def: 'render' },
    ];
    const before = queries.map(search);
    await reopenAfter(
      dir,
      `DROP TABLE search_docs;
       CREATE TABLE search_docs (cursor INTEGER PRIMARY KEY, indexed_bytes INTEGER NOT NULL, truncated INTEGER NOT NULL) STRICT;
       DELETE FROM search_text; DELETE FROM search_code; DELETE FROM search_diff; DELETE FROM search_keys;`,
    );
    expect(queries.map(search)).toEqual(before);
  });
});

describe('an index from before word pairs', () => {
  it('is rebuilt when the node starts, so two-word phrases find what was indexed before', async () => {
    const dir = openInOwnDir('no-pairs-');
    const old = await put('story', 'the old lighthouse');
    await put('story', 'the new lighthouse');
    const queries: Query[] = [
      { q: '"old lighthouse"', versions: 'all' },
      { q: '"new lighthouse"' },
      { q: 'lighthouse', versions: 'all' },
    ];
    const before = queries.map(search);
    expect(versionsOf(queries[0] as Query)).toEqual([old]);
    // As a node from before word pairs left it: no pair table, and no pair format on record.
    await reopenAfter(dir, "DROP TABLE search_pairs; DELETE FROM meta WHERE name = 'search_pairs_format'");
    expect(queries.map(search)).toEqual(before);
  });

  it('are made again from the text table when they were made by another pair format', async () => {
    const dir = openInOwnDir('old-pairs-');
    await put('story', 'the old lighthouse');
    await put('notes', 'an old lighthouse keeper');
    await put('app.js', 'function renderScene() {}', { contentType: 'text/javascript' });
    expect(keysOf({ kind: 'code', def: 'render' })).toEqual(['docs/app.js']);
    const queries: Query[] = [{ q: '"old lighthouse"' }, { q: '"lighthouse keeper"' }];
    const before = queries.map(search);
    expect(keysOf(queries[0] as Query)).toEqual(['docs/notes', 'docs/story']);
    // Pairs of format 1, stood for by no pairs at all: the text table and everything else are kept.
    await reopenAfter(
      dir,
      `INSERT INTO search_pairs (search_pairs) VALUES ('delete-all');
       UPDATE meta SET value = '1' WHERE name = 'search_pairs_format';
       DELETE FROM search_code;`,
    );
    expect(queries.map(search)).toEqual(before);
    // Only the pairs were made again, not the whole index: what was removed from the code table stays removed.
    expect(keysOf({ kind: 'code', def: 'render' })).toEqual([]);
  });

  it('is what a two-word phrase is answered from, and only such a phrase', async () => {
    const dir = openInOwnDir('pairs-used-');
    await put('story', 'the old lighthouse');
    expect(keysOf({ q: '"old lighthouse"' })).toEqual(['docs/story']);
    // With the pair table emptied, the bare phrase finds nothing; the same phrase in an expression
    // (FTS5 on the text table) still does.
    await reopenAfter(dir, "INSERT INTO search_pairs (search_pairs) VALUES ('delete-all')");
    expect(keysOf({ q: '"old lighthouse"' })).toEqual([]);
    expect(keysOf({ q: '("old lighthouse")' })).toEqual(['docs/story']);
    expect(keysOf({ q: '"the old lighthouse"' })).toEqual(['docs/story']);
  });
});

describe('a content table created with other prefix indexes', () => {
  it('is made again with the current ones from its rows when the node starts', async () => {
    const dir = openInOwnDir('old-prefixes-');
    await put('story', 'the old lighthouse keeper');
    await put('notes', 'a lighthouse of light');
    const queries: Query[] = [{ q: 'ligh*' }, { q: 'lighthouse', versions: 'all' }, { q: 'keep*' }];
    const before = queries.map(search);
    expect(keysOf(queries[0] as Query)).toEqual(['docs/notes', 'docs/story']);
    // As a node from before the 4-letter prefix index left it: the same rows in a table made with '2 3'.
    await reopenAfter(
      dir,
      `CREATE VIRTUAL TABLE old_text USING fts5(body, fields, ${textTokenizer}, prefix = '2 3');
       INSERT INTO old_text (rowid, body, fields) SELECT rowid, body, fields FROM search_text;
       DROP TABLE search_text;
       ALTER TABLE old_text RENAME TO search_text;
       INSERT INTO search_pairs (search_pairs) VALUES ('delete-all');`,
    );
    expect(queries.map(search)).toEqual(before);
    let created: unknown;
    await reopenAfter(dir, (db) => {
      created = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'search_text'").pluck().get();
    });
    expect(created).toContain(prefixOption('search_text'));
    // Only that table was made again, not the whole index: the pair table, emptied above, still is.
    expect(keysOf({ q: '"old lighthouse"' })).toEqual([]);
    expect(keysOf({ q: '("old lighthouse")' })).toEqual(['docs/story']);
    expect(search({ q: 'ligh*' })).toEqual(before[0]);
  });
});

/** Opens `store` on a data directory of its own, for `reopenAfter`, and returns the directory. */
function openInOwnDir(prefix: string): string {
  const dir = mkdtempSync(join(dataDir, prefix));
  store = open({ dataDir: dir });
  return dir;
}

/**
 * Closes the store, runs `change` (SQL, or a function of the connection) on its database file as
 * another program would, and opens it again.
 */
async function reopenAfter(dir: string, change: string | ((db: Database.Database) => void)): Promise<void> {
  await store.close();
  opened = opened.filter((each) => each !== store);
  const db = new Database(join(dir, 'strata.db'));
  if (typeof change === 'string') db.exec(change);
  else change(db);
  db.close();
  store = open({ dataDir: dir });
}

describe('recent', () => {
  it('lists keys newest first, one per key, with since, bucket and limit', async () => {
    await put('a', 'one');
    clock.advance(minute);
    await put('b', 'two', { bucket: 'notes' });
    clock.advance(minute);
    const latestA = await put('a', 'three');
    clock.advance(minute);
    const deleted = await remove('b', { bucket: 'notes' });
    const recent = (options: { bucket?: string; since?: number; limit?: number } = {}) =>
      store.searches
        .recent(store.snapshot(), { limit: options.limit ?? 20, ...options }, { kind: 'all' })
        .map((change) => [change.bucket, change.key, change.version, change.kind, change.txTime]);
    expect(recent()).toEqual([
      ['notes', 'b', deleted, 'delete', start + 3 * minute],
      ['docs', 'a', latestA, 'put', start + 2 * minute],
    ]);
    expect(recent({ bucket: 'docs' })).toEqual([['docs', 'a', latestA, 'put', start + 2 * minute]]);
    expect(recent({ limit: 1 })).toEqual([['notes', 'b', deleted, 'delete', start + 3 * minute]]);
    expect(recent({ since: start + 3 * minute })).toEqual([
      ['notes', 'b', deleted, 'delete', start + 3 * minute],
    ]);
    expect(recent({ since: start + 3 * minute + 1 })).toEqual([]);
  });
});
