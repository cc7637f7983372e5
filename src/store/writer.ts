import type { StagedBlob } from '../log/blob-store.js';
import type { NodeDatabase } from '../log/database.js';
import type { BackgroundRun } from '../log/database-worker.js';
import { GroupCommit } from '../log/group-commit.js';
import type { WriteJob, WriteResult } from './store.js';
import type { WritePath } from './write-path.js';

export interface WriterEvents {
  /** A batch is durable (called before its writers are answered). */
  durable(results: WriteResult[], syncSeconds: number): void;
  /** A sync failed: nothing more may be acknowledged. */
  failed(error: Error): void;
}

/**
 * Work that needs the write lock but no client waits for (search index merges): statements the
 * writer runs one at a time on the database worker once no write has come for a while.
 */
export interface IdleWork {
  /** The next statement, or undefined when nothing is left until `written` is called again. */
  next(): string | undefined;
  /** What the statement did, or why it failed. */
  ran(sql: string, outcome: BackgroundRun | Error): void;
  /** A batch was written: there may be work again. */
  written(): void;
}

export interface WriterOptions {
  idleWork?: IdleWork;
  /** How long no write must have come before idle work runs (default `idleAfterMsDefault`). */
  idleAfterMs?: number;
}

/**
 * One second without a write: a client writing in a loop, or a peer catching up, never waits for
 * idle work, and a node that stopped writing starts on it soon after.
 */
const idleAfterMsDefault = 1000;

/** The longest delay setTimeout takes (a longer one fires at once). */
const timerDelayMsMax = 2 ** 31 - 1;

/**
 * The store's writer: group commit on the event loop's thread (see GroupCommit for where the sync
 * runs), with the failure policy: after a failed sync nothing more is acknowledged.
 *
 * It also runs idle work on the database worker, one statement at a time, while nothing is queued
 * or in flight. Nothing writes on the main connection while a statement runs: a batch waits for it
 * (GroupCommit's `ready`), so a write that comes during one waits at most that statement.
 */
export class Writer {
  private readonly group: GroupCommit<WriteJob, WriteResult>;
  private syncSeconds = 0;
  private failure: Error | undefined;
  private readonly idleWork: IdleWork | undefined;
  private readonly idleAfterMs: number;
  /** The idle-work statement running on the worker. */
  private background: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastWriteAt = performance.now();
  private closed = false;

  constructor(
    private readonly database: NodeDatabase,
    private readonly path: WritePath,
    events: WriterEvents,
    options: WriterOptions = {},
  ) {
    this.idleWork = options.idleWork;
    this.idleAfterMs = options.idleAfterMs ?? idleAfterMsDefault;
    // Work may be left from before the node stopped.
    this.armIdleTimer(this.idleAfterMs);
    this.group = new GroupCommit<WriteJob, WriteResult>({
      ready: () => this.background,
      apply: (batch) => path.applyBatch(batch),
      sync: async (alone) => {
        // A batch applied before an earlier sync failed may depend on writes the disk dropped.
        if (this.failure) throw this.failure;
        const started = process.hrtime.bigint();
        try {
          await database.sync(alone);
        } catch (error) {
          this.failure = error as Error;
          events.failed(this.failure);
          throw error;
        }
        this.syncSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      },
      durable: (results) => {
        this.idleWork?.written();
        this.wrote();
        events.durable(results, this.syncSeconds);
      },
      applied: (batch, outcomes) => {
        batch.forEach((job, index) => {
          const outcome = outcomes[index];
          if (job.kind === 'remote' && job.onApplied && outcome && !(outcome instanceof Error))
            job.onApplied(outcome);
        });
      },
    });
  }

  submit(job: WriteJob): Promise<WriteResult> {
    this.wrote();
    return this.group.submit(job);
  }

  async putBlob(blob: StagedBlob): Promise<void> {
    this.wrote();
    await this.outOfTheWay();
    this.path.registerBlob(blob);
    await this.database.sync();
  }

  async reindex() {
    this.wrote();
    await this.outOfTheWay();
    const counts = this.path.reindex();
    this.idleWork?.written();
    return counts;
  }

  /**
   * Runs idle work now, statement after statement, until none is left; writes that come meanwhile
   * wait for one statement at most, and go before the next. Resolves with how many statements ran.
   */
  async finishIdleWork(): Promise<number> {
    let statements = 0;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.background) {
        await this.outOfTheWay();
        continue;
      }
      // Writes go first: a batch that waited for the last statement is applied and synced before the next.
      if (!this.group.idle) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      const sql = this.closed || !this.database.runsInBackground ? undefined : this.idleWork?.next();
      if (sql === undefined) return statements;
      statements += 1;
      await this.runInBackground(sql);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.group.close();
    await this.outOfTheWay();
  }

  /** A write came: idle work waits until none has come for `idleAfterMs`. */
  private wrote(): void {
    this.lastWriteAt = performance.now();
    this.armIdleTimer(this.idleAfterMs);
  }

  private armIdleTimer(delayMs: number): void {
    if (!this.idleWork || this.idleTimer || this.closed) return;
    this.idleTimer = setTimeout(
      () => {
        this.idleTimer = undefined;
        this.runIdleWork();
      },
      Math.min(delayMs, timerDelayMsMax),
    );
    // Idle work never keeps a process alive.
    this.idleTimer.unref();
  }

  /** Runs the next idle-work statement if the writer is quiet, then the one after it. */
  private runIdleWork(): void {
    // Without the worker (it died; checkpoints run on this thread again) there is no idle work.
    if (this.closed || this.background || !this.idleWork || !this.database.runsInBackground) return;
    // A batch in flight ends with `wrote`, which counts the quiet time again from there.
    if (!this.group.idle) {
      this.armIdleTimer(this.idleAfterMs);
      return;
    }
    const quietMs = performance.now() - this.lastWriteAt;
    if (quietMs < this.idleAfterMs) {
      this.armIdleTimer(Math.max(1, this.idleAfterMs - quietMs));
      return;
    }
    const sql = this.idleWork.next();
    if (sql === undefined) return;
    void this.runInBackground(sql).then(() => setImmediate(() => this.runIdleWork()));
  }

  private runInBackground(sql: string): Promise<void> {
    const work = this.idleWork as IdleWork;
    const running = this.database.runInBackground(sql).then(
      (run) => work.ran(sql, run),
      (error: unknown) => work.ran(sql, error as Error),
    );
    this.background = running.finally(() => {
      this.background = undefined;
    });
    return this.background;
  }

  /** Resolves once no idle-work statement is running, so that this thread may write. */
  private async outOfTheWay(): Promise<void> {
    while (this.background) await this.background;
  }
}
