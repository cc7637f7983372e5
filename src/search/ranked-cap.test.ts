import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { Store } from '../store/store.js';

let dataDir: string;
let store: Store;
const clock = new ManualClock(Date.UTC(2030, 0, 1));

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strata-ranked-'));
  // A cap of 3 stands for the default 20,000: the rule is the same, the corpus small.
  store = new Store({ dataDir, clock, searchRankedMatchesMax: 3 });
});

afterEach(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function put(key: string, text: string): Promise<string> {
  clock.advance(1000);
  const blob = await store.blobs.fromBuffer(Buffer.from(text));
  const result = await store.write({
    ops: [{ kind: 'put', bucket: 'docs', key, blob, contentType: 'text/plain' }],
  });
  return result.versions[0] as string;
}

function search(q: string) {
  return store.searches.search(
    store.snapshot(),
    { q, kind: 'text', versions: 'all', limit: 10 },
    { kind: 'all' },
  );
}

describe('ranking cap', () => {
  it('ranks only the newest matches of a term found in more versions than the cap, and says so', async () => {
    const versions: string[] = [];
    // The oldest document is the best match by bm25 (the term three times in a short text).
    versions.push(await put('a.txt', 'harbour harbour harbour'));
    for (const key of ['b.txt', 'c.txt', 'd.txt', 'e.txt']) {
      versions.push(
        await put(key, `a long text that mentions the harbour once among many other words ${key}`),
      );
    }
    const result = search('harbour');
    expect(result.rankedWithin).toBe(3);
    expect(result.hits.map((hit) => hit.version).sort()).toEqual(versions.slice(-3).sort());
  });

  it('ranks every match when there are no more than the cap, and says nothing', async () => {
    const best = await put('a.txt', 'lantern lantern lantern');
    await put('b.txt', 'one lantern among many other words here');
    await put('c.txt', 'another lantern among many other words here');
    const result = search('lantern');
    expect(result.rankedWithin).toBeUndefined();
    expect(result.hits).toHaveLength(3);
    expect(result.hits[0]?.version).toBe(best);
  });

  it('caps phrases and long prefixes alike (they are counted and ranked in one pass)', async () => {
    const versions: string[] = [];
    versions.push(await put('a.txt', 'harbour light harbour light harbour light'));
    for (const key of ['b.txt', 'c.txt', 'd.txt', 'e.txt'])
      versions.push(await put(key, `a long text that names the harbour light once among others ${key}`));
    for (const q of ['"harbour light"', 'harb*', 'NEAR(harbour light)']) {
      const result = search(q);
      expect(result.rankedWithin, q).toBe(3);
      expect(result.hits.map((hit) => hit.version).sort(), q).toEqual(versions.slice(-3).sort());
    }
    const few = search('"harbour light harbour"');
    expect(few.rankedWithin).toBeUndefined();
    expect(few.hits.map((hit) => hit.version)).toEqual([versions[0]]);
    expect(search('"no such phrase"').hits).toEqual([]);
  });

  it('applies the cap inside a time range', async () => {
    await put('a.txt', 'beacon');
    const from = clock.now() + 1;
    const inRange: string[] = [];
    for (const key of ['b.txt', 'c.txt', 'd.txt', 'e.txt']) inRange.push(await put(key, `beacon ${key}`));
    const result = store.searches.search(
      store.snapshot(),
      { q: 'beacon', kind: 'text', versions: 'all', limit: 10, from },
      { kind: 'all' },
    );
    expect(result.rankedWithin).toBe(3);
    expect(result.hits.map((hit) => hit.version).sort()).toEqual(inRange.slice(-3).sort());
  });
});
