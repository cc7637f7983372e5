import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { StrataError } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import type { Snapshot } from '../store/snapshot.js';
import { Store, type WriteOp, type WriteRequest } from '../store/store.js';
import type { SearchRequest } from './search-query.js';

/**
 * DESIGN §1.1 and §4: the search index is derived state, so `reindex` must rebuild it to give the
 * same answers (same versions, order, scores, snippets, lines and cursors) for any history written
 * through the store: text, JSON, JavaScript, shaders, binary, overwrites, deletes, retractions and
 * future-dated versions. Along the way, current-version answers are checked against a model.
 */
const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;
const buckets = ['alpha', 'beta'] as const;
const words = [
  'lighthouse',
  'keeper',
  'harbor',
  'tide',
  'beacon',
  'render',
  'scene',
  'draw',
  'mesh',
] as const;

/** Each key holds one kind of object, chosen by its name as a publisher would. */
const keyKinds = {
  'notes/a.txt': { contentType: 'text/plain; charset=utf-8', kind: 'text' },
  'notes/b.md': { contentType: 'application/octet-stream', kind: 'text' },
  'data/c.json': { contentType: 'application/json', kind: 'json' },
  'src/d.js': { contentType: 'text/javascript', kind: 'javascript' },
  'src/e.frag': { contentType: 'text/x-glsl', kind: 'shader' },
  'img/f.png': { contentType: 'image/png', kind: 'binary' },
} as const;
type Key = keyof typeof keyKinds;
const keys = Object.keys(keyKinds) as Key[];

type Word = (typeof words)[number];

type OpSpec =
  | {
      kind: 'put';
      bucket: (typeof buckets)[number];
      key: Key;
      lines: Word[][];
      /** Minutes from now; undefined = the commit's own time. */
      effectiveMinutes: number | undefined;
      broken: boolean;
    }
  | { kind: 'delete'; bucket: (typeof buckets)[number]; key: Key; effectiveMinutes: number | undefined }
  | { kind: 'retract'; pick: number };

type Action = { type: 'write'; requests: OpSpec[][] } | { type: 'clock'; deltaMs: number };

const effectiveMinutes = fc.option(fc.integer({ min: -30, max: 3 * 24 * 60 }), { nil: undefined, freq: 3 });
const line = fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 4 });

const opSpec: fc.Arbitrary<OpSpec> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      bucket: fc.constantFrom(...buckets),
      key: fc.constantFrom(...keys),
      lines: fc.array(line, { minLength: 1, maxLength: 4 }),
      effectiveMinutes,
      broken: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      bucket: fc.constantFrom(...buckets),
      key: fc.constantFrom(...keys),
      effectiveMinutes,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retract' as const), pick: fc.nat() }) },
);

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('write' as const),
      // Sometimes several requests in one group-commit batch, sometimes several ops in one commit.
      requests: fc.array(fc.array(opSpec, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('clock' as const),
      deltaMs: fc.integer({ min: 1, max: 20 * minute }),
    }),
  },
);

function camel(first: Word, second: Word | undefined): string {
  return second ? `${first}${second[0]?.toUpperCase()}${second.slice(1)}` : first;
}

/** The bytes of a put: each key's kind of document, made of the generated words. */
function content(spec: Extract<OpSpec, { kind: 'put' }>): Buffer {
  const kind = keyKinds[spec.key].kind;
  const text = spec.lines.map((words) => words.join(' ')).join('\n');
  switch (kind) {
    case 'text':
      return Buffer.from(`${text}\n`);
    case 'json': {
      const value = { title: spec.lines[0]?.join(' '), tags: spec.lines.slice(1).flat() };
      // A broken document is indexed as plain text.
      return Buffer.from(spec.broken ? JSON.stringify(value).slice(0, -1) : JSON.stringify(value, null, 1));
    }
    case 'javascript': {
      const functions = spec.lines.map(
        (words) =>
          `export function ${camel(words[0] as Word, words[1])}() {\n  ${camel(words[2] ?? 'draw', words[3])}();\n}`,
      );
      return Buffer.from(functions.join('\n') + (spec.broken ? '\nfunction (' : '\n'));
    }
    case 'shader':
      return Buffer.from(
        spec.lines
          .map((words) => `vec3 ${camel(words[0] as Word, words[1])}(vec3 n) { return n; }`)
          .join('\n'),
      );
    case 'binary':
      return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0]), Buffer.from(text)]);
  }
}

/**
 * The op of a spec. Specs are steered towards writes the store accepts (a delete of a live value,
 * a retraction of a version not yet retracted), so that histories grow; some are still refused.
 */
async function toWriteOp(
  store: Store,
  spec: OpSpec,
  versions: readonly VersionId[],
  now: number,
): Promise<WriteOp> {
  const snapshot = store.snapshot(now);
  if (spec.kind === 'retract') {
    const retracted = new Set(versions.flatMap((id) => snapshot.version(id)?.target ?? []));
    const pool = versions.filter((id) => snapshot.version(id)?.kind !== 'retract' && !retracted.has(id));
    const target = pool.length > 0 ? pool[spec.pick % pool.length] : undefined;
    return { kind: 'retract', target: target ?? (`${'e'.repeat(64)}.0` as VersionId) };
  }
  const effectiveAt =
    spec.effectiveMinutes === undefined ? undefined : Math.max(0, now + spec.effectiveMinutes * minute);
  if (spec.kind === 'delete') {
    if (snapshot.live(spec.bucket, spec.key, { at: effectiveAt ?? now }))
      return { kind: 'delete', bucket: spec.bucket, key: spec.key, effectiveAt };
    return toWriteOp(
      store,
      { ...spec, kind: 'put', lines: [['tide', 'harbor']], broken: false },
      versions,
      now,
    );
  }
  return {
    kind: 'put',
    bucket: spec.bucket,
    key: spec.key,
    blob: await store.blobs.fromBuffer(content(spec)),
    contentType: keyKinds[spec.key].contentType,
    effectiveAt,
  };
}

/** The fixed battery of queries: every kind, current and all versions, every filter, pages. */
function battery(now: number): Array<Partial<SearchRequest>> {
  const base: Array<Partial<SearchRequest>> = [
    ...words.map((word) => ({ q: word })),
    { q: 'title:keeper' },
    { q: 'tags:tide' },
    { q: 'light*' },
    { q: 'tide OR beacon' },
    { q: '"harbor tide"' },
    { q: 'keeper NOT lighthouse' },
    { kind: 'code', def: 'render' },
    { kind: 'code', def: 'sceneDraw' },
    { kind: 'code', ref: 'draw' },
    { kind: 'code', q: 'mesh' },
    { kind: 'code', def: 'keeper', ref: 'draw' },
    { kind: 'diff', q: 'keeper' },
    { kind: 'diff', q: 'tide OR harbor' },
    { kind: 'diff', q: 'removed:beacon' },
  ];
  const filters: Array<Partial<SearchRequest>> = [
    {},
    { bucket: 'alpha' },
    { prefix: 'notes/' },
    { from: start + 10 * minute },
    { to: start + 30 * minute },
    { from: start + 5 * minute, to: start + 45 * minute },
    { from: start + 3 * minute, to: start + 3 * minute },
  ];
  const requests: Array<Partial<SearchRequest>> = [];
  for (const query of base) {
    for (const filter of filters) {
      requests.push({ ...query, ...filter, versions: 'all' });
      requests.push({ ...query, ...filter, versions: 'current' });
    }
    for (const at of [start - 1, start + 20 * minute, now + 2 * 24 * hour])
      requests.push({ ...query, versions: 'current', at });
  }
  return requests;
}

function answers(store: Store, snapshot: Snapshot, now: number): unknown[] {
  const results: unknown[] = [];
  for (const request of battery(now)) {
    const full: SearchRequest = { kind: 'text', versions: 'current', limit: 1000, ...request };
    results.push(store.searches.search(snapshot, full, { kind: 'all' }));
    // A walk through small pages, cursors included.
    const pages: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const result = store.searches.search(
        snapshot,
        { ...full, limit: 2, ...(cursor !== undefined ? { cursor } : {}) },
        { kind: 'all' },
      );
      pages.push(result);
      cursor = result.cursor;
      if (cursor === undefined) break;
    }
    results.push(pages);
  }
  for (const bucket of [undefined, ...buckets]) {
    for (const since of [undefined, start + 10 * minute]) {
      for (const limit of [1, 3, 100]) {
        results.push(
          store.searches.recent(
            snapshot,
            { limit, ...(bucket !== undefined ? { bucket } : {}), ...(since !== undefined ? { since } : {}) },
            { kind: 'all' },
          ),
        );
      }
    }
  }
  return results;
}

/** Lower-case words of a text as FTS5's unicode61 tokenizer cuts them. */
function tokens(text: string): Set<string> {
  return new Set(
    text
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter(Boolean),
  );
}

/** Current text hits agree with a model: exactly the live text-like winners that hold the word. */
function checkCurrentAgainstModel(store: Store, snapshot: Snapshot): void {
  for (const word of words) {
    const expected: string[] = [];
    for (const bucket of buckets) {
      for (const key of keys) {
        if (keyKinds[key].kind === 'binary') continue;
        const live = snapshot.live(bucket, key);
        const data = live?.blob ? store.blobs.get(live.blob)?.data : undefined;
        if (live && data && tokens(data.toString('utf8')).has(word)) expected.push(live.version);
      }
    }
    const found = store.searches
      .search(snapshot, { kind: 'text', versions: 'current', limit: 1000, q: word }, { kind: 'all' })
      .hits.map((hit) => hit.version);
    expect(found.sort(), `current hits of ${word}`).toEqual(expected.sort());
  }
}

async function runHistory(actions: readonly Action[]): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-search-rebuild-'));
  const clock = new ManualClock(start);
  const store = new Store({ dataDir, clock });
  try {
    const versions: VersionId[] = [];
    for (const step of actions) {
      if (step.type === 'clock') {
        clock.advance(step.deltaMs);
        continue;
      }
      const requests: WriteRequest[] = [];
      for (const specs of step.requests) {
        const ops: WriteOp[] = [];
        const slots = new Set<string>();
        for (const spec of specs) {
          // One op per key and commit; a second one would make the store refuse the whole commit.
          const slot = spec.kind === 'retract' ? `retract ${spec.pick}` : `${spec.bucket}/${spec.key}`;
          if (slots.has(slot)) continue;
          slots.add(slot);
          ops.push(await toWriteOp(store, spec, versions, clock.now()));
        }
        requests.push({ ops });
      }
      const settled = await Promise.allSettled(requests.map((request) => store.write(request)));
      for (const outcome of settled) {
        if (outcome.status === 'fulfilled') versions.push(...outcome.value.versions);
        // Refusals (a delete of nothing, a second retraction, two ops on one key) are part of the game.
        else if (!(outcome.reason instanceof StrataError)) throw outcome.reason;
      }
    }
    const now = clock.now();
    const snapshot = store.snapshot(now);
    checkCurrentAgainstModel(store, snapshot);
    const before = answers(store, snapshot, now);
    await store.reindex();
    const after = answers(store, store.snapshot(now), now);
    expect(after).toEqual(before);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('rebuilding the search index', () => {
  // About 25 histories of up to 25 steps, each write fsync'd: 11–19 s alone, but several times that
  // when the e2e tests share the disk, so the bound is generous (a slow machine must not fail it).
  it('gives the same answers to every query after reindex, for random histories', {
    timeout: 240_000,
  }, async () => {
    await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), runHistory), {
      numRuns: 25,
    });
  });

  it('gives the same answers for a history with every kind of change', async () => {
    const put = (key: Key, lines: Word[][], effective?: number): OpSpec => ({
      kind: 'put',
      bucket: 'alpha',
      key,
      lines,
      effectiveMinutes: effective,
      broken: false,
    });
    await runHistory([
      { type: 'write', requests: [[put('notes/a.txt', [['lighthouse', 'keeper'], ['tide']])]] },
      { type: 'clock', deltaMs: 5 * minute },
      {
        type: 'write',
        requests: [
          [
            put('src/d.js', [['render', 'scene', 'draw', 'mesh']]),
            put('data/c.json', [['keeper', 'harbor']]),
          ],
        ],
      },
      { type: 'clock', deltaMs: 5 * minute },
      { type: 'write', requests: [[put('notes/a.txt', [['lighthouse', 'beacon'], ['tide']])]] },
      { type: 'write', requests: [[put('notes/a.txt', [['harbor']], 24 * 60)]] },
      { type: 'write', requests: [[{ kind: 'retract', pick: 0 }]] },
      { type: 'write', requests: [[put('img/f.png', [['keeper']])]] },
      { type: 'clock', deltaMs: 20 * minute },
      {
        type: 'write',
        requests: [[{ kind: 'delete', bucket: 'alpha', key: 'data/c.json', effectiveMinutes: undefined }]],
      },
    ]);
  });
});
