import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { NodeDatabase } from './database.js';
import type { CheckpointReport } from './database-worker.js';

let dir: string;
let database: NodeDatabase | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-db-'));
});

afterEach(async () => {
  await database?.close();
  database = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A transaction that writes 10 rows of 3 KB to a filler table, numbered from `first`. */
function fillerBatch(target: NodeDatabase): (first: number) => void {
  target.db.exec('CREATE TABLE IF NOT EXISTS filler (n INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT');
  const insert = target.db.prepare('INSERT INTO filler (n, data) VALUES (?, ?)');
  return target.db.transaction((first: number) => {
    for (let n = first; n < first + 10; n++) insert.run(n, Buffer.alloc(3000, n % 251));
  });
}

/** Writes `rows` rows of 3 KB in transactions of 10, each synced like a group commit. */
async function write(target: NodeDatabase, rows: number): Promise<void> {
  const batch = fillerBatch(target);
  for (let n = 0; n < rows; n += 10) {
    batch(n);
    await target.sync();
  }
}

describe('NodeDatabase checkpoints', () => {
  it('copies the WAL into the database file on the worker thread; the writer never checkpoints', async () => {
    const file = join(dir, 'strata.db');
    const reports: CheckpointReport[] = [];
    database = new NodeDatabase(file, { checkpointIntervalMs: 20, onCheckpoint: (r) => reports.push(r) });
    const before = statSync(file).size;
    await write(database, 600);
    // 600 rows of 3 KB: about 2 MB of WAL frames. Automatic checkpoints are off on this connection,
    // so only the worker can have moved them into the database file.
    await waitFor(() => statSync(file).size > before + 1_500_000 && reports.length > 0, {
      timeoutMs: 10_000,
      what: 'the worker to copy the WAL into the database file',
    });
    const last = reports.at(-1) as CheckpointReport;
    expect(last.walFrames).toBeGreaterThan(0);
    expect(last.checkpointedFrames).toBeLessThanOrEqual(last.walFrames);
    expect(database.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
  });

  it('resets a WAL that grew past its bound, so the file stays bounded under steady writes', async () => {
    const file = join(dir, 'strata.db');
    database = new NodeDatabase(file, { checkpointIntervalMs: 10, walRestartFrames: 200 });
    const target = database;
    const batch = fillerBatch(target);
    // Like group commit under load: the next batch is written while the previous one syncs, so the
    // writer never pauses long enough for a passive checkpoint to catch up and the WAL to restart.
    let syncing = Promise.resolve();
    for (let n = 0; n < 6000; n += 10) {
      batch(n);
      await syncing;
      syncing = target.sync();
    }
    await syncing;
    // 18 MB were written; without the writer's reset the WAL holds all of it (about 27 MB).
    expect(statSync(`${file}-wal`).size).toBeLessThan(12_000_000);
    expect(target.db.prepare('SELECT COUNT(*) FROM filler').pluck().get()).toBe(6000);
  });

  it('checkpoints on the writer again if the worker dies', async () => {
    const errors: Error[] = [];
    database = new NodeDatabase(join(dir, 'strata.db'), { onCheckpointError: (error) => errors.push(error) });
    // The worker is private; a crash is simulated by terminating it from outside.
    const inside = database as unknown as { worker: { worker: { terminate(): Promise<number> } } };
    await inside.worker.worker.terminate();
    const target = database;
    await waitFor(() => target.db.pragma('wal_autocheckpoint', { simple: true }) === 1000, {
      timeoutMs: 5_000,
      what: 'automatic checkpoints to be turned back on',
    });
    expect(errors.map((error) => error.message)).toContain(
      'the checkpoint worker stopped; checkpoints run on the writer again',
    );
    // Nothing runs in the background any more: the writer stops handing out idle work.
    expect(target.runsInBackground).toBe(false);
    await expect(target.runInBackground('SELECT 1')).rejects.toThrow(/stopped/);
    await write(target, 50);
  });

  it('keeps every synced row across close and reopen', async () => {
    const file = join(dir, 'strata.db');
    database = new NodeDatabase(file, { checkpointIntervalMs: 10 });
    await write(database, 200);
    await database.close();
    database = new NodeDatabase(file);
    expect(database.db.prepare('SELECT COUNT(*) FROM filler').pluck().get()).toBe(200);
    expect(database.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('runs a statement on the worker: it counts the changes, and this connection sees them', async () => {
    database = new NodeDatabase(join(dir, 'strata.db'));
    database.db.exec('CREATE TABLE jobs (n INTEGER PRIMARY KEY, done INTEGER NOT NULL) STRICT');
    const insert = database.db.prepare('INSERT INTO jobs (n, done) VALUES (?, 0)');
    for (let n = 1; n <= 5; n++) insert.run(n);
    const run = await database.runInBackground('UPDATE jobs SET done = 1 WHERE n <= 3');
    expect(run.changes).toBe(3);
    expect(run.seconds).toBeGreaterThanOrEqual(0);
    expect(database.db.prepare('SELECT SUM(done) FROM jobs').pluck().get()).toBe(3);
    // The same statement again finds nothing left to change.
    expect(
      (await database.runInBackground('UPDATE jobs SET done = 1 WHERE done = 0 AND n <= 3')).changes,
    ).toBe(0);
  });

  it('rejects a statement that fails with its error, and keeps running the next', async () => {
    database = new NodeDatabase(join(dir, 'strata.db'));
    await expect(database.runInBackground('UPDATE no_such_table SET x = 1')).rejects.toThrow(/no such table/);
    expect((await database.runInBackground("INSERT INTO meta (name, value) VALUES ('k', 'v')")).changes).toBe(
      1,
    );
    expect(database.getMeta('k')).toBe('v');
  });

  it('resets the WAL between background statements that write back to back', async () => {
    const file = join(dir, 'strata.db');
    database = new NodeDatabase(file, { checkpointIntervalMs: 10, walRestartFrames: 200 });
    database.db.exec('CREATE TABLE filler (n INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT');
    // 300 statements of 30 KB each: 9 MB with no write of this connection, and so no reset of its own.
    for (let n = 0; n < 300; n++) {
      await database.runInBackground(
        `WITH RECURSIVE row (k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM row WHERE k < 9)
         INSERT INTO filler (n, data) SELECT ${n} * 10 + k, randomblob(3000) FROM row`,
      );
    }
    expect(database.db.prepare('SELECT COUNT(*) FROM filler').pluck().get()).toBe(3000);
    expect(statSync(`${file}-wal`).size).toBeLessThan(6_000_000);
  });

  it('refuses statements once closed', async () => {
    const closing = new NodeDatabase(join(dir, 'strata.db'));
    await closing.close();
    await expect(closing.runInBackground('SELECT 1')).rejects.toThrow(/stopped/);
  });
});
