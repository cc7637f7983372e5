import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { systemClock } from '../core/clock.js';
import type { NodeId } from '../core/ids.js';
import { BlobStore } from '../log/blob-store.js';
import { NodeDatabase } from '../log/database.js';
import type { BackgroundRun } from '../log/database-worker.js';
import { WritePath } from './write-path.js';
import { type IdleWork, Writer } from './writer.js';

/**
 * The writer's idle work against a real database: a statement on the worker holds the write lock,
 * so a write that comes meanwhile must wait for it rather than fail as busy.
 */
let dir: string;
let database: NodeDatabase;
let blobs: BlobStore;
let writer: Writer | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-writer-'));
  database = new NodeDatabase(join(dir, 'strata.db'));
  blobs = new BlobStore(join(dir, 'blobs'), database.db);
});

afterEach(async () => {
  await writer?.close();
  writer = undefined;
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A write that holds the write lock for a while: it counts to `rows` before inserting (SQLite takes
 * the lock when the statement starts).
 */
const slowStatement = (rows: number) =>
  `INSERT OR REPLACE INTO meta (name, value)
   SELECT 'slow', COUNT(*) FROM (WITH RECURSIVE n (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ${rows}) SELECT k FROM n)`;

/** Hands out the given statements once each, recording what happened. */
class Statements implements IdleWork {
  readonly events: string[] = [];
  readonly outcomes: Array<BackgroundRun | Error> = [];
  /** When each statement was handed out (performance.now()). */
  readonly startedAt: number[] = [];
  constructor(private readonly left: string[]) {}
  next(): string | undefined {
    const sql = this.left.shift();
    if (sql !== undefined) {
      this.events.push('statement started');
      this.startedAt.push(performance.now());
    }
    return sql;
  }
  ran(_sql: string, outcome: BackgroundRun | Error): void {
    this.events.push('statement ended');
    this.outcomes.push(outcome);
  }
  written(): void {}
}

function open(idleWork: IdleWork, idleAfterMs: number): Writer {
  const path = new WritePath(database.db, {
    blobs,
    nodeId: '00000000000000aa' as NodeId,
    clock: systemClock,
    searchIndexBytesMax: 1024 * 1024,
  });
  writer = new Writer(database, path, { durable: () => {}, failed: () => {} }, { idleWork, idleAfterMs });
  return writer;
}

async function put(target: Writer, key: string, text: string) {
  const blob = await blobs.fromBuffer(Buffer.from(text));
  return target.submit({
    kind: 'local',
    request: { ops: [{ kind: 'put', bucket: 'docs', key, blob, contentType: 'text/plain' }] },
  });
}

describe('Writer idle work', () => {
  it('a write that comes while a statement runs waits for it, then is applied and acknowledged', async () => {
    const work = new Statements([slowStatement(3_000_000)]);
    const target = open(work, 10);
    await waitFor(() => work.events.length > 0, { timeoutMs: 5_000, what: 'the idle statement to start' });
    const result = await put(target, 'a.txt', 'written while the worker holds the lock');
    work.events.push('write acknowledged');
    expect(work.events).toEqual(['statement started', 'statement ended', 'write acknowledged']);
    expect(work.outcomes[0]).not.toBeInstanceOf(Error);
    expect((work.outcomes[0] as BackgroundRun).changes).toBe(1);
    expect(result.versions).toHaveLength(1);
    expect(database.getMeta('slow')).toBe('3000000');
  });

  it('runs nothing while writes keep coming, and starts once none has come for idleAfterMs', async () => {
    const idleAfterMs = 300;
    const work = new Statements(["INSERT INTO meta (name, value) VALUES ('idle', 'ran')"]);
    const target = open(work, idleAfterMs);
    // Taken before each write is submitted: never later than the writer's own note of it.
    const writes: number[] = [];
    const started = performance.now();
    for (let n = 0; performance.now() - started < 600; n++) {
      writes.push(performance.now());
      await put(target, `k${n % 3}.txt`, `value ${n}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await waitFor(() => work.events.includes('statement ended'), {
      timeoutMs: 5_000,
      what: 'the idle statement',
    });
    // However slow the machine, the statement began a full idleAfterMs after the write before it.
    const startedAt = work.startedAt[0] as number;
    const lastWriteBefore = Math.max(...writes.filter((at) => at <= startedAt));
    expect(startedAt - lastWriteBefore).toBeGreaterThanOrEqual(idleAfterMs);
    expect(database.getMeta('idle')).toBe('ran');
  });

  it('a write that comes while finishIdleWork runs statement after statement waits for one only', async () => {
    const work = new Statements([
      slowStatement(2_000_000),
      slowStatement(2_000_001),
      slowStatement(2_000_002),
    ]);
    const target = open(work, 3_600_000);
    const finished = target.finishIdleWork();
    await waitFor(() => work.events.length > 0, { timeoutMs: 5_000, what: 'the first statement to start' });
    await put(target, 'a.txt', 'written between two statements');
    work.events.push('write acknowledged');
    expect(await finished).toBe(3);
    const acknowledged = work.events.indexOf('write acknowledged');
    const ended = work.events.flatMap((event, index) => (event === 'statement ended' ? [index] : []));
    expect(ended).toHaveLength(3);
    expect(acknowledged).toBeGreaterThan(ended[0] as number);
    expect(acknowledged).toBeLessThan(ended[1] as number);
  });

  it('close() waits for the statement that runs', async () => {
    const work = new Statements([slowStatement(2_000_000)]);
    const target = open(work, 10);
    await waitFor(() => work.events.length > 0, { timeoutMs: 5_000, what: 'the idle statement to start' });
    await target.close();
    writer = undefined;
    expect(work.events).toEqual(['statement started', 'statement ended']);
    expect(database.getMeta('slow')).toBe('2000000');
  });
});
