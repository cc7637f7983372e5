import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Commit, commitId, type Op } from '../core/commit.js';
import { sha256 } from '../core/hash.js';
import { formatHlc, hlcWall } from '../core/hlc.js';
import { type BlobId, type NodeId, type VersionId, versionId } from '../core/ids.js';
import { BlobStore } from '../log/blob-store.js';
import { CommitLog } from '../log/commit-log.js';
import { NodeDatabase } from '../log/database.js';
import { Deriver } from '../store/derived.js';
import { Queries, Snapshot } from '../store/snapshot.js';
import { SearchIndex } from './search-index.js';
import { type BucketFilter, SearchQueries, type SearchRequest } from './search-query.js';

/**
 * A replicated node applies other nodes' commits later than their transaction time, in an order of
 * its own. Search answers must not depend on that order: nodes holding the same commits give the
 * same hits, scores, snippets, pages and "recently changed" lists, and a transaction-time range
 * holds every version written in it. Here commits of three origins, many of them stamped in the
 * same ms, are applied in transaction-time order and in random causal orders (each commit after
 * its origin's previous one and after the versions it names, as replication guarantees).
 */
const start = Date.UTC(2030, 0, 1);
const day = 24 * 60 * 60 * 1000;
/** After every write, before the versions scheduled for later. */
const now = start + day;
/** Commits per generated history: enough for crowded ms and several pages. */
const commitsMax = 30;
/** The cap of the capped queries: small, so that a few versions exceed it. */
const cap = 2;
const origins = ['00000000000000a1', '00000000000000b2', '00000000000000c3'] as NodeId[];
const words = ['harbour', 'beacon', 'tide', 'lantern', 'keeper'] as const;
type Word = (typeof words)[number];
const keys = [
  { bucket: 'docs', key: 'notes/a.txt', contentType: 'text/plain; charset=utf-8', kind: 'text' },
  { bucket: 'docs', key: 'notes/b.md', contentType: 'text/markdown', kind: 'text' },
  { bucket: 'docs', key: 'data/c.json', contentType: 'application/json', kind: 'json' },
  { bucket: 'code', key: 'src/d.js', contentType: 'text/javascript', kind: 'javascript' },
  { bucket: 'code', key: 'src/e.frag', contentType: 'text/x-glsl', kind: 'shader' },
] as const;

interface OpSpec {
  key: number;
  kind: 'put' | 'delete';
  lines: Word[][];
  /** Written without looking: no parents, a concurrent version. */
  blind: boolean;
  scheduled: boolean;
}

interface CommitSpec {
  origin: number;
  /** Ms after the origin's previous commit: 0 stamps the same ms again. */
  wallStep: number;
  /** The HLC counter when the ms changes (a node that observed a peer's counter starts there). */
  counter: number;
  ops: OpSpec[];
}

const line = fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 3 });
const opSpec: fc.Arbitrary<OpSpec> = fc.record({
  key: fc.nat({ max: keys.length - 1 }),
  kind: fc.constantFrom('put', 'put', 'put', 'delete'),
  lines: fc.array(line, { minLength: 1, maxLength: 3 }),
  blind: fc.boolean(),
  scheduled: fc.nat({ max: 7 }).map((draw) => draw === 0),
});
const commitSpec: fc.Arbitrary<CommitSpec> = fc.record({
  origin: fc.nat({ max: origins.length - 1 }),
  wallStep: fc.constantFrom(0, 0, 1, 1, 2),
  counter: fc.nat({ max: 3 }),
  ops: fc.array(opSpec, { minLength: 1, maxLength: 4 }),
});

interface History {
  /** In transaction-time (hlc) order: the order writers made them in. */
  commits: Commit[];
  blobs: Map<BlobId, Buffer>;
  /** Indexes of the commits each commit must follow. */
  dependencies: Set<number>[];
}

function camel(first: Word, second: Word | undefined): string {
  return second ? `${first}${second[0]?.toUpperCase()}${second.slice(1)}` : first;
}

function content(kind: (typeof keys)[number]['kind'], lines: Word[][]): string {
  switch (kind) {
    case 'text':
      return `${lines.map((words) => words.join(' ')).join('\n')}\n`;
    case 'json':
      return JSON.stringify({ title: lines[0]?.join(' '), notes: lines.slice(1).map((w) => w.join(' ')) });
    case 'javascript':
      return lines
        .map((w) => `export function ${camel(w[0] as Word, w[1])}() {\n  return ${w.join(' + ')};\n}\n`)
        .join('');
    case 'shader':
      return lines.map((w) => `vec3 ${camel(w[0] as Word, w[1])}(vec3 n) { return n * ${w[0]}; }\n`).join('');
  }
}

/** The words of a version's text as search_text holds them (for JSON, its string values). */
function textWords(kind: (typeof keys)[number]['kind'], text: string): Set<string> {
  const body = kind === 'json' ? Object.values(JSON.parse(text)).flat().join('\n') : text;
  return new Set(
    body
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter(Boolean),
  );
}

/** Commits with strictly increasing HLCs per origin; writers saw every commit stamped before theirs. */
function buildHistory(specs: CommitSpec[]): History {
  const clocks = origins.map(() => ({ wall: start, counter: -1, seq: 0 }));
  const stamped = specs.map((spec) => {
    const clock = clocks[spec.origin] as { wall: number; counter: number; seq: number };
    if (spec.wallStep === 0 || clock.counter < 0) clock.counter += 1;
    else {
      clock.wall += spec.wallStep;
      clock.counter = spec.counter;
    }
    clock.seq += 1;
    const hlc = formatHlc({ wall: clock.wall, counter: clock.counter, node: origins[spec.origin] as NodeId });
    return { spec, hlc, seq: clock.seq };
  });
  stamped.sort((a, b) => (a.hlc < b.hlc ? -1 : 1));
  const blobs = new Map<BlobId, Buffer>();
  const latest = new Map<number, { version: VersionId; commit: number; kind: string }>();
  const lastOfOrigin = new Map<number, number>();
  const commits: Commit[] = [];
  const dependencies: Set<number>[] = [];
  for (const [index, { spec, hlc, seq }] of stamped.entries()) {
    const needs = new Set<number>();
    const previous = lastOfOrigin.get(spec.origin);
    if (previous !== undefined) needs.add(previous);
    lastOfOrigin.set(spec.origin, index);
    const ops: Op[] = [];
    const used = new Set<number>();
    for (const op of spec.ops) {
      if (used.has(op.key)) continue;
      used.add(op.key);
      const key = keys[op.key] as (typeof keys)[number];
      const before = latest.get(op.key);
      const parents = !op.blind && before ? [before.version] : [];
      if (before && !op.blind) needs.add(before.commit);
      const effectiveAt = op.scheduled ? start + 10 * day : hlcWall(hlc as never);
      if (op.kind === 'delete' && before?.kind === 'put') {
        ops.push({ kind: 'delete', bucket: key.bucket, key: key.key, parents, effectiveAt });
        continue;
      }
      const bytes = Buffer.from(content(key.kind, op.lines));
      const blob = sha256(bytes) as BlobId;
      blobs.set(blob, bytes);
      ops.push({
        kind: 'put',
        bucket: key.bucket,
        key: key.key,
        parents,
        blob,
        contentType: key.contentType,
        size: bytes.length,
        effectiveAt,
      });
    }
    const commit: Commit = { origin: origins[spec.origin] as NodeId, seq, hlc: hlc as Commit['hlc'], ops };
    const id = commitId(commit);
    ops.forEach((op, opIndex) => {
      const slot = keys.findIndex((key) => key.bucket === op.bucket && key.key === op.key);
      latest.set(slot, { version: versionId(id, opIndex), commit: index, kind: op.kind });
    });
    commits.push(commit);
    dependencies.push(needs);
  }
  return { commits, blobs, dependencies };
}

/** A causal order: the ready commit with the lowest priority next. */
function causalOrder(history: History, priorities: number[]): Commit[] {
  const applied = new Set<number>();
  const order: Commit[] = [];
  while (order.length < history.commits.length) {
    let next = -1;
    for (let index = 0; index < history.commits.length; index++) {
      if (applied.has(index)) continue;
      if (![...(history.dependencies[index] as Set<number>)].every((needed) => applied.has(needed))) continue;
      if (next < 0 || (priorities[index] ?? 0) < (priorities[next] ?? 0)) next = index;
    }
    applied.add(next);
    order.push(history.commits[next] as Commit);
  }
  return order;
}

/** A node's log, versions and search index, fed commits directly, as replication will. */
class Replica {
  readonly searches: SearchQueries;
  readonly capped: SearchQueries;
  private readonly database: NodeDatabase;
  private readonly log: CommitLog;
  private readonly blobs: BlobStore;
  private readonly deriver: Deriver;
  private readonly queries: Queries;

  constructor(dir: string) {
    this.database = new NodeDatabase(join(dir, 'strata.db'));
    const db = this.database.db;
    this.log = new CommitLog(db);
    this.blobs = new BlobStore(join(dir, 'blobs'), db);
    this.deriver = new Deriver(db);
    this.queries = new Queries(db);
    const index = new SearchIndex(db, this.blobs, (bucket, key) => this.snapshot().versionsOf(bucket, key), {
      indexBytesMax: 1024 * 1024,
    });
    this.deriver.listen((row) => index.versionApplied(row));
    this.searches = new SearchQueries(db);
    this.capped = new SearchQueries(db, cap);
  }

  apply(commit: Commit, blobs: Map<BlobId, Buffer>): void {
    this.database.db.transaction(() => {
      for (const op of commit.ops) {
        const bytes = op.blob ? blobs.get(op.blob) : undefined;
        if (op.blob && bytes) this.blobs.register({ hash: op.blob, size: bytes.length, inline: bytes });
      }
      const logged = this.log.append(commit);
      this.deriver.apply(logged.id, logged.pos, commit);
    })();
  }

  snapshot(): Snapshot {
    return new Snapshot(this.queries, Number.MAX_SAFE_INTEGER, now);
  }

  close(): Promise<void> {
    return this.database.close();
  }
}

let dataDir: string;
let replicas: Replica[];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strata-out-of-order-'));
  replicas = [];
});

afterEach(async () => {
  for (const replica of replicas) await replica.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function replicaOf(history: History, order: Commit[]): Replica {
  const replica = new Replica(mkdtempSync(join(dataDir, 'node-')));
  replicas.push(replica);
  for (const commit of order) replica.apply(commit, history.blobs);
  return replica;
}

/**
 * The ranges the queries use: none, and around a few of the ms stamped in the history (the most
 * crowded ones, whose versions came from several nodes, and the first, middle and last).
 */
function ranges(history: History): Array<{ from?: number; to?: number }> {
  const perWall = new Map<number, number>();
  for (const commit of history.commits) {
    const wall = hlcWall(commit.hlc);
    perWall.set(wall, (perWall.get(wall) ?? 0) + 1);
  }
  const walls = [...perWall.keys()].sort((a, b) => a - b);
  const crowded = [...walls].sort((a, b) => (perWall.get(b) ?? 0) - (perWall.get(a) ?? 0)).slice(0, 2);
  const middle = walls[Math.floor(walls.length / 2)] as number;
  const picked = [...new Set([...crowded, walls[0] as number, middle, walls[walls.length - 1] as number])];
  const result: Array<{ from?: number; to?: number }> = [{}, { from: start, to: middle + 1 }];
  for (const wall of picked) result.push({ from: wall, to: wall }, { from: wall }, { to: wall });
  return result;
}

function battery(history: History): Array<Partial<SearchRequest>> {
  const queries: Array<Partial<SearchRequest>> = [
    ...words.map((word) => ({ q: word })),
    { q: 'lan*' },
    { q: '"harbour tide"' },
    { q: 'tide OR beacon' },
    { kind: 'code', def: 'harbour' },
    { kind: 'code', ref: 'tide' },
    { kind: 'diff', q: 'keeper' },
    { kind: 'diff', q: 'removed:beacon' },
  ];
  const requests: Array<Partial<SearchRequest>> = [];
  for (const query of queries)
    for (const range of ranges(history))
      for (const versions of ['all', 'current'] as const) requests.push({ ...query, ...range, versions });
  return requests;
}

/** The answers a node gives: full pages and walks through pages of two, capped and not. */
function answers(replica: Replica, history: History): unknown[] {
  const all: BucketFilter = { kind: 'all' };
  const snapshot = replica.snapshot();
  const results: unknown[] = [];
  for (const request of battery(history)) {
    const full: SearchRequest = { kind: 'text', versions: 'current', limit: 1000, ...request };
    for (const searches of [replica.searches, replica.capped]) {
      results.push(searches.search(snapshot, full, all));
      // Pages of two through the answers without a range or in one ms (the others add little).
      if (request.from !== request.to) continue;
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const result = searches.search(snapshot, { ...full, limit: 2, ...(cursor ? { cursor } : {}) }, all);
        results.push(result);
        cursor = result.cursor;
        if (cursor === undefined) break;
      }
    }
  }
  for (const range of ranges(history))
    for (const bucket of [undefined, 'docs'])
      for (const limit of [1, 3, 100])
        results.push(
          replica.searches.recent(
            snapshot,
            {
              limit,
              ...(bucket ? { bucket } : {}),
              ...(range.from !== undefined ? { since: range.from } : {}),
              ...(range.to !== undefined ? { until: range.to } : {}),
            },
            all,
          ),
        );
  return results;
}

interface ModelVersion {
  version: VersionId;
  hlc: string;
  opIndex: number;
  bucket: string;
  key: string;
  words?: Set<string>;
}

function modelVersions(history: History): ModelVersion[] {
  return history.commits.flatMap((commit) =>
    commit.ops.map((op, opIndex) => {
      const key = keys.find((each) => each.bucket === op.bucket && each.key === op.key);
      const bytes = op.blob ? history.blobs.get(op.blob) : undefined;
      const version: ModelVersion = {
        version: versionId(commitId(commit), opIndex),
        hlc: commit.hlc,
        opIndex,
        bucket: op.bucket,
        key: op.key,
      };
      if (key && bytes) version.words = textWords(key.kind, bytes.toString('utf8'));
      return version;
    }),
  );
}

/** Newest first by transaction time: (hlc, op index), the same order on every node. */
function newestFirst(a: ModelVersion, b: ModelVersion): number {
  return a.hlc === b.hlc ? b.opIndex - a.opIndex : a.hlc < b.hlc ? 1 : -1;
}

/** A time range holds every version written in it; the capped answer, the newest of them. */
function checkAgainstModel(replica: Replica, history: History): void {
  const versions = modelVersions(history);
  const snapshot = replica.snapshot();
  for (const range of ranges(history)) {
    const inRange = versions.filter((version) => {
      const wall = hlcWall(version.hlc as never);
      return (range.from === undefined || wall >= range.from) && (range.to === undefined || wall <= range.to);
    });
    for (const word of words) {
      const expected = inRange.filter((version) => version.words?.has(word)).sort(newestFirst);
      const request: SearchRequest = { q: word, kind: 'text', versions: 'all', limit: 1000, ...range };
      const found = replica.searches.search(snapshot, request, { kind: 'all' });
      const where = `${word} in ${JSON.stringify(range)}`;
      expect(found.hits.map((hit) => hit.version).sort(), where).toEqual(
        expected.map((version) => version.version).sort(),
      );
      const capped = replica.capped.search(snapshot, request, { kind: 'all' });
      expect(capped.hits.map((hit) => hit.version).sort(), `${where}, capped`).toEqual(
        expected
          .slice(0, cap)
          .map((version) => version.version)
          .sort(),
      );
      expect(capped.rankedWithin, `${where}, capped`).toBe(expected.length > cap ? cap : undefined);
    }
    const latestPerKey = new Map<string, ModelVersion>();
    for (const version of [...inRange].sort(newestFirst)) {
      const slot = `${version.bucket}/${version.key}`;
      if (!latestPerKey.has(slot)) latestPerKey.set(slot, version);
    }
    const recent = replica.searches.recent(
      snapshot,
      {
        limit: 100,
        ...(range.from !== undefined ? { since: range.from } : {}),
        ...(range.to !== undefined ? { until: range.to } : {}),
      },
      { kind: 'all' },
    );
    expect(
      recent.map((change) => change.version),
      `recent in ${JSON.stringify(range)}`,
    ).toEqual([...latestPerKey.values()].map((version) => version.version));
  }
}

async function runHistory(specs: CommitSpec[], first: number[], second: number[]): Promise<void> {
  const history = buildHistory(specs);
  const inTimeOrder = replicaOf(history, history.commits);
  const shuffled = replicaOf(history, causalOrder(history, first));
  const other = replicaOf(history, causalOrder(history, second));
  checkAgainstModel(shuffled, history);
  const expected = answers(inTimeOrder, history);
  expect(answers(shuffled, history)).toEqual(expected);
  expect(answers(other, history)).toEqual(expected);
  for (const replica of replicas.splice(0)) await replica.close();
}

describe('search on a node that applied commits out of transaction-time order', () => {
  it('answers like a node that applied them in order, for random histories and apply orders', {
    timeout: 120_000,
  }, async () => {
    const priorities = fc.array(fc.nat(), { minLength: commitsMax, maxLength: commitsMax });
    await fc.assert(
      fc.asyncProperty(
        fc.array(commitSpec, { minLength: 1, maxLength: commitsMax }),
        priorities,
        priorities,
        runHistory,
      ),
      { numRuns: 12 },
    );
  });

  it('finds a version applied long after newer ones, in its time range and among the newest', () => {
    // Node b2 wrote at t+1 ms, but its commit reaches this node after a1's commits of t+2 and t+3.
    const specs: CommitSpec[] = [
      { origin: 1, wallStep: 1, counter: 0, ops: [put(0, [['harbour', 'tide']])] },
      { origin: 0, wallStep: 2, counter: 0, ops: [put(1, [['harbour']]), put(2, [['harbour', 'keeper']])] },
      { origin: 0, wallStep: 1, counter: 0, ops: [put(3, [['harbour', 'beacon']])] },
      // The same ms as b2's, by another node that had not seen it: their versions share the ms,
      // ordered by hlc, and the second one is concurrent with b2's version of the same key.
      {
        origin: 2,
        wallStep: 1,
        counter: 0,
        ops: [put(4, [['harbour']]), { ...put(0, [['tide']]), blind: true }],
      },
    ];
    const history = buildHistory(specs);
    const late = history.commits.find((commit) => commit.origin === origins[1]) as Commit;
    const order = [...history.commits.filter((commit) => commit !== late), late];
    const replica = replicaOf(history, order);
    const inOrder = replicaOf(history, history.commits);
    const lateVersion = versionId(commitId(late), 0);
    const lateMs = hlcWall(late.hlc);
    const snapshot = replica.snapshot();
    const ranged = replica.searches.search(
      snapshot,
      { q: 'harbour', kind: 'text', versions: 'all', limit: 10, from: lateMs, to: lateMs },
      { kind: 'all' },
    );
    expect(ranged.hits.map((hit) => hit.version)).toContain(lateVersion);
    checkAgainstModel(replica, history);
    expect(answers(replica, history)).toEqual(answers(inOrder, history));
  });
});

function put(key: number, lines: Word[][]): OpSpec {
  return { key, kind: 'put', lines, blind: false, scheduled: false };
}
