import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitWithDetail } from '../../test/support/wait.js';
import { systemClock } from '../core/clock.js';
import { Store, type StoreOptions } from '../store/store.js';
import { fts5Segments } from './fts5-structure.js';
import { fts5Tables } from './schema.js';
import type { SearchRequest } from './search-query.js';

/**
 * Idle merging of the FTS5 segments (SearchMerger): each commit writes a segment of every FTS5
 * table, merging leaves at most one per level, and the answers stay the same.
 */
let dataDir: string;
let store: Store | undefined;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strata-merge-'));
});

afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

function open(options: Partial<StoreOptions> = {}): Store {
  store = new Store({ dataDir, clock: systemClock, idleAfterMs: 3_600_000, ...options });
  return store;
}

/** The segments of every FTS5 table, read on a connection of its own. */
function segments(): Record<string, number[][]> {
  const db = new Database(join(dataDir, 'strata.db'), { readonly: true });
  try {
    return Object.fromEntries(fts5Tables.map((table) => [table, fts5Segments(db, table)]));
  } finally {
    db.close();
  }
}

const mostPerLevel = (levels: number[][]): number => Math.max(0, ...levels.map((level) => level.length));

const words = ['lighthouse', 'keeper', 'harbour', 'signal', 'beacon', 'tide', 'storm', 'lantern'];

/**
 * `commits` commits of three versions each (text, JSON, JavaScript), every key written again and
 * again; `beforeWrite` is called as each is submitted.
 */
async function writeCommits(target: Store, commits: number, beforeWrite?: () => void): Promise<void> {
  for (let n = 0; n < commits; n++) {
    const word = (k: number) => words[(n * 3 + k) % words.length];
    const values: Array<[string, string, string]> = [
      [`notes/${n % 7}.txt`, `the ${word(0)} and the ${word(1)} at ${n}`, 'text/plain'],
      [
        `data/${n % 5}.json`,
        JSON.stringify({ title: `${word(2)} ${n}`, tags: [word(0)] }),
        'application/json',
      ],
      [
        `src/${n % 3}.js`,
        `export function render${n % 4}(scene) { return scene.${word(1)}(${n}); }`,
        'text/javascript',
      ],
    ];
    const ops = await Promise.all(
      values.map(async ([key, text, contentType]) => ({
        kind: 'put' as const,
        bucket: 'docs',
        key,
        blob: await target.blobs.fromBuffer(Buffer.from(text)),
        contentType,
      })),
    );
    beforeWrite?.();
    await target.write({ ops });
  }
}

const queries: SearchRequest[] = [
  { q: 'lighthouse', kind: 'text', versions: 'all', limit: 1000 },
  { q: 'keeper', kind: 'text', versions: 'current', limit: 1000 },
  { q: '"the harbour"', kind: 'text', versions: 'all', limit: 1000 },
  { q: 'title:beacon', kind: 'text', versions: 'all', limit: 1000 },
  { q: 'sig*', kind: 'text', versions: 'all', limit: 1000 },
  { kind: 'code', def: 'render2', versions: 'all', limit: 1000 },
  { q: 'storm', kind: 'diff', versions: 'all', limit: 1000 },
];

function answers(target: Store): unknown[] {
  const snapshot = target.snapshot();
  return queries.map((query) => target.searches.search(snapshot, query, { kind: 'all' }));
}

describe('SearchMerger', () => {
  it('merges the segments of many small commits to at most one a level, and every answer stays the same', async () => {
    const opened = open();
    await writeCommits(opened, 60);
    const before = segments();
    // 60 commits, each a segment of every table: FTS5's own merging (four at a time) leaves several a level.
    expect(mostPerLevel(before.search_text ?? [])).toBeGreaterThan(1);
    const answered = answers(opened);
    const digest = opened.digest();

    expect(await opened.mergeSearchIndex()).toBeGreaterThan(fts5Tables.length);
    const after = segments();
    for (const table of fts5Tables) expect(mostPerLevel(after[table] ?? []), table).toBeLessThanOrEqual(1);
    const pages = (levels: number[][]) => levels.flat().length;
    expect(pages(after.search_text ?? [])).toBeLessThan(pages(before.search_text ?? []));
    expect(answers(opened)).toEqual(answered);
    expect(opened.digest()).toBe(digest);
    // Nothing was written since: nothing is left to merge.
    expect(await opened.mergeSearchIndex()).toBe(0);
  });

  it('merges on its own once no write has come for idleAfterMs, never sooner', async () => {
    const idleAfterMs = 150;
    const steps: Array<{ endedAt: number; seconds: number }> = [];
    const opened = open({
      idleAfterMs,
      onSearchMerge: (seconds) => steps.push({ endedAt: performance.now(), seconds }),
    });
    const writes: number[] = [];
    // Taken as each write is submitted: never later than the writer's own note of it.
    await writeCommits(opened, 60, () => writes.push(performance.now()));
    await waitWithDetail(
      () => fts5Tables.every((table) => mostPerLevel(segments()[table] ?? []) <= 1),
      { timeoutMs: 20_000, what: 'the idle merge to leave one segment a level' },
      () => JSON.stringify(segments()),
    );
    expect(steps.length).toBeGreaterThan(0);
    const lastWrite = writes.at(-1) as number;
    for (const step of steps) {
      // Told when the step's answer arrived, so this is never earlier than the step began.
      const startedAt = step.endedAt - step.seconds * 1000;
      expect(startedAt).toBeGreaterThanOrEqual(lastWrite + idleAfterMs);
    }
    // A write after merging starts it again, and the new segment is merged too.
    const merged = steps.length;
    await writeCommits(opened, 2);
    await waitWithDetail(
      () => steps.length > merged,
      { timeoutMs: 20_000, what: 'the idle merge after a new write' },
      () => JSON.stringify(segments()),
    );
  });

  it('reopens an index with segments left to merge and merges them while idle', async () => {
    await writeCommits(open(), 60);
    await store?.close();
    expect(mostPerLevel(segments().search_text ?? [])).toBeGreaterThan(1);
    open({ idleAfterMs: 50 });
    await waitWithDetail(
      () => fts5Tables.every((table) => mostPerLevel(segments()[table] ?? []) <= 1),
      { timeoutMs: 20_000, what: 'the idle merge after a restart' },
      () => JSON.stringify(segments()),
    );
  });

  it('writes that come while it merges are stored and acknowledged', async () => {
    const opened = open({ idleAfterMs: 20 });
    await writeCommits(opened, 60);
    // Writes keep coming at random gaps around idleAfterMs: some land while a step runs.
    for (let n = 0; n < 15; n++) {
      await new Promise((resolve) => setTimeout(resolve, 10 + ((n * 7) % 25)));
      await writeCommits(opened, 1);
    }
    await opened.mergeSearchIndex();
    const notes = opened.searches.search(
      opened.snapshot(),
      { q: 'the', kind: 'text', versions: 'all', prefix: 'notes/', limit: 1000 },
      { kind: 'all' },
    );
    // 75 commits, each with one version of a note.
    expect(notes.hits).toHaveLength(75);
  });
});
