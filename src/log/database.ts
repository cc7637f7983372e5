import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { fail } from '../core/errors.js';
import {
  type BackgroundRun,
  type CheckpointReport,
  DatabaseWorker,
  type DatabaseWorkerOptions,
} from './database-worker.js';

export type Db = Database.Database;

const fdatasyncAsync = promisify(fdatasync);

/**
 * The node's SQLite database: the log (commits, blobs) and the derived tables live in one file so
 * that a commit and everything derived from it land in one transaction.
 *
 * Durability: SQLite runs with `synchronous=NORMAL` (it syncs at checkpoints) and the writer
 * fdatasyncs the WAL itself after each group commit (see GroupCommit for on which thread). A commit
 * is acknowledged only after that sync, so concurrent writers share one fsync.
 *
 * Checkpoints run on a worker thread with its own connection (see DatabaseWorker), which also runs
 * background statements (`runInBackground`). This connection checkpoints only to reset a WAL that
 * grew past `walRestartFrames`, when it closes (as SQLite's last connection does), and, should the
 * worker die, automatically again as SQLite would by default.
 *
 * The data directory's LOCK file keeps a second Strata process out (DataDirLock).
 */
export interface NodeDatabaseOptions {
  /** Told of each checkpoint the worker made. */
  onCheckpoint?(report: CheckpointReport): void;
  /** Told when a checkpoint failed (the next one tries again). */
  onCheckpointError?(error: Error): void;
  /** How often the worker checkpoints (default 200 ms). */
  checkpointIntervalMs?: number;
  /** WAL frames past which the writer resets the WAL (default `walRestartFrames`). */
  walRestartFrames?: number;
}

/**
 * WAL frames past which the writer resets the WAL itself: 16,384 frames of 4 KiB, 64 MiB. Passive
 * checkpoints copy frames but cannot reset the WAL while the writer keeps appending.
 */
export const walRestartFrames = 16_384;

/** SQLite's default automatic checkpoint threshold, used again if the worker is gone. */
const inlineCheckpointFrames = 1000;

export class NodeDatabase {
  readonly db: Db;
  private walFd: number | undefined;
  private readonly worker: DatabaseWorker;
  private readonly restart: Database.Statement;
  private readonly restartFrames: number;

  constructor(
    readonly file: string,
    private readonly options: NodeDatabaseOptions = {},
  ) {
    // No busy wait: only this process writes, it never writes here while the worker runs a
    // statement, and a checkpoint that finds the worker busy simply runs next time.
    const db = new Database(file, { timeout: 0 });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec(logSchema);
      // The first write creates the WAL file, which the writer fdatasyncs itself (sync below).
      db.prepare('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run('opened', 'yes');
    } catch (error) {
      db.close();
      if (error instanceof Error && /locked|busy/i.test(error.message)) {
        fail(
          'STRATA_UNAVAILABLE',
          `database ${file} is in use by another process (is another strata serve running?)`,
        );
      }
      throw error;
    }
    this.db = db;
    this.walFd = openSync(`${file}-wal`, 'r+');
    fdatasyncSync(this.walFd);
    this.restart = db.prepare('PRAGMA wal_checkpoint(RESTART)');
    this.restartFrames = options.walRestartFrames ?? walRestartFrames;
    const workerOptions: DatabaseWorkerOptions = {
      intervalMs: options.checkpointIntervalMs,
      restartFrames: this.restartFrames,
      onCheckpoint: options.onCheckpoint,
      onError: options.onCheckpointError,
      // Without the worker, SQLite's automatic checkpoint on this thread keeps the WAL bounded again.
      onExit: () => {
        if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${inlineCheckpointFrames}`);
        options.onCheckpointError?.(
          new Error('the checkpoint worker stopped; checkpoints run on the writer again'),
        );
      },
    };
    try {
      this.worker = new DatabaseWorker(file, workerOptions);
    } catch (error) {
      closeSync(this.walFd);
      db.close();
      throw error;
    }
  }

  /** Makes every transaction committed so far durable, then resets the WAL if it grew too long. */
  async sync(onThisThread = false): Promise<void> {
    if (this.walFd === undefined) fail('STRATA_UNAVAILABLE', 'database is closed');
    if (onThisThread) fdatasyncSync(this.walFd);
    else await fdatasyncAsync(this.walFd);
    // The batch is durable by now: a failed reset is reported, never turned into a failed sync.
    try {
      this.restartIfLong();
    } catch (error) {
      this.options.onCheckpointError?.(error as Error);
    }
  }

  /**
   * Resets a WAL that grew past its bound. Runs between two transactions; the worker has copied
   * nearly every frame already, so this copies the rest and starts the WAL over. If the worker is
   * mid-checkpoint the call reports busy and the next sync tries again.
   */
  private restartIfLong(): void {
    if (this.worker.frames < this.restartFrames || !this.db.open) return;
    const row = this.restart.get() as { busy: number };
    if (row.busy === 0) this.worker.restarted();
  }

  /**
   * Runs a statement on the worker's connection, off the event loop (DatabaseWorker.run). Nothing
   * may write on this connection until it resolves; its changes are made durable by the next sync.
   */
  runInBackground(sql: string): Promise<BackgroundRun> {
    return this.worker.run(sql);
  }

  /** False once the worker is gone (it died, or the database is closing): nothing runs in the background. */
  get runsInBackground(): boolean {
    return this.worker.running;
  }

  getMeta(name: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  setMeta(name: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run(name, value);
  }

  /** Stops the database worker, then closes the database (whose last connection checkpoints). */
  async close(): Promise<void> {
    await this.worker.stop();
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (this.db.open) this.db.close();
  }
}

/**
 * The log: the truth (DESIGN §1.1). `pos` is this node's local position; the change feed and the
 * durable watermark count in it. Blobs up to the inline limit are stored in `blobs.data`; larger
 * ones live in content-addressed files and have `data` NULL.
 */
const logSchema = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS commits (
  pos INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hlc TEXT NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (origin, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  data BLOB
) STRICT;
`;
