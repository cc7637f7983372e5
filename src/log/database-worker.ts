import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What a statement run on the worker did. */
export interface BackgroundRun {
  /** Rows it changed (SQLite's total_changes difference; FTS5 commands count their writes here). */
  changes: number;
  seconds: number;
}

/** What one checkpoint on the worker did. */
export interface CheckpointReport {
  /** Frames in the WAL when it ran. */
  walFrames: number;
  /** Of those, frames now copied into the database file. */
  checkpointedFrames: number;
  seconds: number;
}

export interface DatabaseWorkerOptions {
  /** How often the worker copies new WAL frames into the database file (default 200 ms). */
  intervalMs?: number;
  /**
   * WAL frames past which the worker resets the WAL itself after a statement it ran (see `run`):
   * statements run back to back leave a passive checkpoint no pause to catch up in.
   */
  restartFrames: number;
  /** Told of every checkpoint that found the WAL changed since the last one. */
  onCheckpoint?(report: CheckpointReport): void;
  /** Told when a checkpoint failed; the next interval tries again. */
  onError?(error: Error): void;
  /** Told when the worker ended without being stopped (it failed to start, or crashed). */
  onExit?(): void;
}

const defaultIntervalMs = 200;

/**
 * The worker's program, evaluated as a CommonJS script: it opens its own connection to the
 * database and runs a PASSIVE checkpoint every interval. PASSIVE never waits for (or blocks) the
 * writer or readers on the main thread; it copies what it can and reports how far it got.
 * SQLite itself syncs the WAL before copying and the database file after (synchronous=NORMAL).
 *
 * It also runs statements the main thread hands it (`run`), one at a time, each its own
 * transaction; the caller makes sure no write of its own runs meanwhile (the connections have no
 * busy wait).
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const restart = db.prepare('PRAGMA wal_checkpoint(RESTART)');
const totalChanges = db.prepare('SELECT total_changes()').pluck();
const statements = new Map();
let last = { log: -1, checkpointed: -1 };
const report = (row, started) => {
  // log = frames in the WAL, checkpointed = frames copied; both -1 when it could not run at all.
  // Reported whenever either changed, so the writer always knows how long the WAL is.
  if (row.log > 0 && (row.checkpointed !== last.checkpointed || row.log !== last.log)) {
    last = row;
    parentPort.postMessage({
      kind: 'checkpoint',
      walFrames: row.log,
      checkpointedFrames: row.checkpointed,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
  }
};
let checkpointedAt = 0;
const checkpointNow = () => {
  const started = process.hrtime.bigint();
  checkpointedAt = performance.now();
  try {
    report(checkpoint.get(), started);
  } catch (error) {
    parentPort.postMessage({ kind: 'error', message: String(error && error.message || error) });
  }
};
const timer = setInterval(checkpointNow, workerData.intervalMs);
const run = (message) => {
  const started = process.hrtime.bigint();
  let outcome;
  try {
    let statement = statements.get(message.sql);
    if (!statement) statements.set(message.sql, (statement = db.prepare(message.sql)));
    const before = totalChanges.get();
    statement.run();
    const changes = totalChanges.get() - before;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    outcome = { kind: 'ran', id: message.id, changes, seconds };
  } catch (error) {
    outcome = { kind: 'ran', id: message.id, error: String(error && error.message || error) };
  }
  // Statements run back to back leave the timer few turns: checkpoint as often here, and reset a
  // WAL grown past its bound (busy while a reader still needs its frames; the next statement tries
  // again). Both before answering: a RESTART checkpoint holds the write lock while it runs, and
  // the main thread writes again once answered.
  if (performance.now() - checkpointedAt >= workerData.intervalMs) checkpointNow();
  if (last.log > workerData.restartFrames) {
    try {
      const restarting = process.hrtime.bigint();
      if (restart.get().busy === 0) {
        // The next write starts the WAL over: as long as the main thread knows, it has no frames.
        last = { log: 0, checkpointed: 0 };
        const seconds = Number(process.hrtime.bigint() - restarting) / 1e9;
        parentPort.postMessage({ kind: 'checkpoint', walFrames: 0, checkpointedFrames: 0, seconds });
      }
    } catch {}
  }
  parentPort.postMessage(outcome);
};
parentPort.on('message', (message) => {
  if (message && message.kind === 'run') return run(message);
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.postMessage({ kind: 'stopped' });
});
`;

/**
 * The database's worker thread, with its own connection: WAL checkpoints, and statements the node
 * runs in the background (search index merges; see `run`).
 *
 * It copies the WAL into the database file so that the event loop never stalls on a checkpoint.
 * SQLite's own automatic checkpoint runs inside the commit that crosses the threshold, on the
 * writer's thread: tens of milliseconds of page copies and a database-file fsync in the middle of
 * serving requests. The main connection turns it off (`wal_autocheckpoint=0`) and this worker does
 * the copying instead.
 *
 * A passive checkpoint cannot reset the WAL while the writer keeps appending, so under constant
 * load the file could grow without end; `frames` tells the writer when it has grown past the
 * bound, and the writer then resets it itself between two transactions (only the frames the worker
 * has not copied yet are left to copy, so that pause is short). Statements run here reset it
 * themselves in the same way.
 */
export class DatabaseWorker {
  private readonly worker: Worker;
  private walFrames = 0;
  private exited = false;
  private stopping: Promise<void> | undefined;
  private nextRunId = 0;
  private readonly runs = new Map<
    number,
    { resolve(run: BackgroundRun): void; reject(error: Error): void }
  >();

  constructor(file: string, options: DatabaseWorkerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(workerSource, {
      eval: true,
      workerData: {
        file,
        driver,
        intervalMs: options.intervalMs ?? defaultIntervalMs,
        restartFrames: options.restartFrames,
      },
    });
    // The worker's timer must not keep a process alive whose work is done.
    this.worker.unref();
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'checkpoint') {
        this.walFrames = message.walFrames;
        options.onCheckpoint?.(message);
      } else if (message.kind === 'error') {
        options.onError?.(new Error(`WAL checkpoint failed: ${message.message}`));
      } else if (message.kind === 'ran') {
        const waiting = this.runs.get(message.id);
        this.runs.delete(message.id);
        if (message.error !== undefined) waiting?.reject(new Error(message.error));
        else waiting?.resolve({ changes: message.changes, seconds: message.seconds });
      }
    });
    this.worker.on('error', (error) => options.onError?.(error));
    this.worker.once('exit', () => {
      this.exited = true;
      for (const waiting of this.runs.values()) waiting.reject(new Error('the database worker stopped'));
      this.runs.clear();
      if (!this.stopping) options.onExit?.();
    });
  }

  /** The worker still runs: checkpoints and background statements are possible. */
  get running(): boolean {
    return !this.exited && !this.stopping;
  }

  /** Frames in the WAL at the last checkpoint: the writer resets the WAL when this passes its bound. */
  get frames(): number {
    return this.walFrames;
  }

  /** The writer reset the WAL (a RESTART checkpoint of its own). */
  restarted(): void {
    this.walFrames = 0;
  }

  /**
   * Runs one statement on the worker's connection, in a transaction of its own, off the event
   * loop. The caller must not write on another connection until it resolves: no connection waits
   * for a lock, so that write would fail as busy.
   */
  run(sql: string): Promise<BackgroundRun> {
    if (!this.running) return Promise.reject(new Error('the database worker stopped'));
    const id = this.nextRunId++;
    return new Promise((resolve, reject) => {
      this.runs.set(id, { resolve, reject });
      this.worker.postMessage({ kind: 'run', id, sql });
    });
  }

  /** Stops the worker and closes its connection; resolves once it has. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      // Awaited by a closing store: keep the process alive until the worker has closed its connection.
      this.worker.ref();
      this.worker.once('exit', () => resolve());
      this.worker.on('message', (message: WorkerMessage) => {
        if (message.kind === 'stopped') void this.worker.terminate();
      });
      this.worker.postMessage('stop');
    });
    return this.stopping;
  }
}

type WorkerMessage =
  | ({ kind: 'checkpoint' } & CheckpointReport)
  | { kind: 'error'; message: string }
  | { kind: 'ran'; id: number; changes: number; seconds: number; error?: undefined }
  | { kind: 'ran'; id: number; error: string }
  | { kind: 'stopped' };
