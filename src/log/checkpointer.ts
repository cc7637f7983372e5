import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What one checkpoint on the worker did. */
export interface CheckpointReport {
  /** Frames in the WAL when it ran. */
  walFrames: number;
  /** Of those, frames now copied into the database file. */
  checkpointedFrames: number;
  seconds: number;
}

export interface CheckpointerOptions {
  /** How often the worker copies new WAL frames into the database file (default 200 ms). */
  intervalMs?: number;
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
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let last = { log: -1, checkpointed: -1 };
const timer = setInterval(() => {
  const started = process.hrtime.bigint();
  try {
    const row = checkpoint.get();
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
  } catch (error) {
    parentPort.postMessage({ kind: 'error', message: String(error && error.message || error) });
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.postMessage({ kind: 'stopped' });
});
`;

/**
 * Copies the WAL into the database file on a worker thread, so the event loop never stalls on a
 * checkpoint. SQLite's own automatic checkpoint runs inside the commit that crosses the threshold,
 * on the writer's thread: tens of milliseconds of page copies and a database-file fsync in the
 * middle of serving requests. The main connection turns it off (`wal_autocheckpoint=0`) and this
 * worker does the copying instead, with its own connection.
 *
 * A passive checkpoint cannot reset the WAL while the writer keeps appending, so under constant
 * load the file could grow without end; `frames` tells the writer when it has grown past the
 * bound, and the writer then resets it itself between two transactions (only the frames the worker
 * has not copied yet are left to copy, so that pause is short).
 */
export class Checkpointer {
  private readonly worker: Worker;
  private walFrames = 0;
  private exited = false;
  private stopping: Promise<void> | undefined;

  constructor(file: string, options: CheckpointerOptions = {}) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(workerSource, {
      eval: true,
      workerData: { file, driver, intervalMs: options.intervalMs ?? defaultIntervalMs },
    });
    // The worker's timer must not keep a process alive whose work is done.
    this.worker.unref();
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'checkpoint') {
        this.walFrames = message.walFrames;
        options.onCheckpoint?.(message);
      } else if (message.kind === 'error') {
        options.onError?.(new Error(`WAL checkpoint failed: ${message.message}`));
      }
    });
    this.worker.on('error', (error) => options.onError?.(error));
    this.worker.once('exit', () => {
      this.exited = true;
      if (!this.stopping) options.onExit?.();
    });
  }

  /** Frames in the WAL at the last checkpoint: the writer resets the WAL when this passes its bound. */
  get frames(): number {
    return this.walFrames;
  }

  /** The writer reset the WAL (a RESTART checkpoint of its own). */
  restarted(): void {
    this.walFrames = 0;
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
  | { kind: 'stopped' };
