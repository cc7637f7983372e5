import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { fts5Segments } from '../../src/search/fts5-structure.js';
import { fts5Tables } from '../../src/search/schema.js';
import { seededRandom } from '../../src/sim/prng.js';
import {
  cleanUpProcesses,
  getJson,
  type StrataServer,
  startServer,
  temporaryDirectory,
  waitFor,
} from '../support/process.js';

/**
 * A real `strata serve` killed with SIGKILL while it merges its search index (SearchMerger, idle
 * work on the database worker): after a restart the index answers as before, the derived state is
 * the same, what was left is merged, and SQLite and FTS5 find nothing wrong with the file.
 */

const adminToken = 'search-merge-crash-admin-token-0123456789';
const auth = { authorization: `Bearer ${adminToken}` };
/** Enough segments that merging takes a good part of a second: each commit writes one a table. */
const commits = 60;
const opsPerCommit = 40;
const vocabulary = Array.from({ length: 3000 }, (_, n) => `w${n.toString(36)}`);

afterEach(cleanUpProcesses);

/** The most segments on one level of any FTS5 table, read on a connection of its own. */
function mostSegmentsPerLevel(dataDir: string): number {
  const db = new Database(join(dataDir, 'strata.db'), { readonly: true });
  try {
    return Math.max(
      0,
      ...fts5Tables.flatMap((table) => fts5Segments(db, table).map((level) => level.length)),
    );
  } finally {
    db.close();
  }
}

/** Completed merge steps the node counted in /metrics. */
async function mergeSteps(server: StrataServer): Promise<number> {
  const response = await request(`${server.url}/metrics`, { headers: auth });
  const text = await response.body.text();
  const line = text.split('\n').find((each) => each.startsWith('strata_search_merge_step_seconds_count'));
  return Number(line?.split(' ')[1] ?? 0);
}

async function writeCorpus(server: StrataServer): Promise<void> {
  const random = seededRandom(7);
  const words = (count: number) =>
    Array.from({ length: count }, () => vocabulary[Math.floor(random() * vocabulary.length)]).join(' ');
  for (let commit = 0; commit < commits; commit++) {
    const ops = Array.from({ length: opsPerCommit }, (_, op) => ({
      kind: 'put',
      bucket: 'notes',
      key: `n${(commit * opsPerCommit + op) % 500}.txt`,
      value: `lighthouse ${words(150)}`,
      contentType: 'text/plain',
    }));
    const response = await request(`${server.url}/v1/commits`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ops }),
    });
    expect(response.statusCode, await response.body.text()).toBe(201);
  }
}

const queries = ['lighthouse', 'w1a', 'w2b OR w3c', 'w4*'];

async function answers(server: StrataServer): Promise<unknown[]> {
  return Promise.all(
    queries.map(async (q) => {
      const { hits } = await getJson<{ hits: Array<{ key: string; version: string; score: number }> }>(
        server,
        `/v1/search?q=${encodeURIComponent(q)}&versions=all&limit=1000`,
        auth,
      );
      return hits.map((hit) => [hit.key, hit.version, hit.score]);
    }),
  );
}

describe('kill -9 while the search index merges', () => {
  it('restarts with the same answers and digest, goes on merging, and the file is intact', async () => {
    const dataDir = temporaryDirectory();
    let server = await startServer({ dataDir, adminToken });
    await writeCorpus(server);
    const answered = await answers(server);
    const { digest } = await getJson<{ digest: string }>(server, '/v1/admin/digest', auth);
    // Every version holds "lighthouse": a full page of 1,000.
    expect((answered[0] as unknown[]).length).toBe(1000);

    // Merging starts a second after the last write; kill as soon as the first step is counted.
    await waitFor(async () => (await mergeSteps(server)) > 0, {
      timeoutMs: 15_000,
      what: 'the node to start merging its search index',
    });
    await server.kill9();

    server = await startServer({ dataDir, adminToken });
    expect(await answers(server)).toEqual(answered);
    expect((await getJson<{ digest: string }>(server, '/v1/admin/digest', auth)).digest).toBe(digest);
    // Whatever the kill left to merge is merged after the restart: at most one segment a level.
    await waitFor(() => mostSegmentsPerLevel(dataDir) <= 1, {
      timeoutMs: 30_000,
      what: 'merging to finish after the restart',
    });
    expect(await answers(server)).toEqual(answered);
    await server.stop();

    const db = new Database(join(dataDir, 'strata.db'));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      // FTS5 checks its index against its content (or, contentless, its own consistency).
      for (const table of fts5Tables) db.exec(`INSERT INTO ${table} (${table}) VALUES ('integrity-check')`);
    } finally {
      db.close();
    }
  });
});
