import type { StagedBlob } from '../log/blob-store.js';
import type { NodeDatabase } from '../log/database.js';
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
 * The store's writer: group commit on the event loop's thread (see GroupCommit for where the sync
 * runs), with the failure policy: after a failed sync nothing more is acknowledged.
 */
export class Writer {
  private readonly group: GroupCommit<WriteJob, WriteResult>;
  private syncSeconds = 0;
  private failure: Error | undefined;

  constructor(
    private readonly database: NodeDatabase,
    private readonly path: WritePath,
    events: WriterEvents,
  ) {
    this.group = new GroupCommit<WriteJob, WriteResult>({
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
      durable: (results) => events.durable(results, this.syncSeconds),
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
    return this.group.submit(job);
  }

  async putBlob(blob: StagedBlob): Promise<void> {
    this.path.registerBlob(blob);
    await this.database.sync();
  }

  async reindex() {
    return this.path.reindex();
  }

  close(): Promise<void> {
    return this.group.close();
  }
}
