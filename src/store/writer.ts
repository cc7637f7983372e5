import { Worker } from 'node:worker_threads';
import { type ErrorCode, StrataError } from '../core/errors.js';
import type { StagedBlob } from '../log/blob-store.js';
import type { NodeDatabase } from '../log/database.js';
import { GroupCommit } from '../log/group-commit.js';
import type { WriteRequest, WriteResult } from './store.js';
import type { WritePath } from './write-path.js';

/** Where writes are applied: on the main thread, or on a writer thread with its own connection. */
export interface Writer {
  /** Resolves once the commit is durable. */
  submit(request: WriteRequest): Promise<WriteResult>;
  /** Records a blob uploaded ahead of its commit; resolves once durable. */
  putBlob(blob: StagedBlob): Promise<void>;
  reindex(): Promise<{ commits: number; versions: number }>;
  close(): Promise<void>;
}

export interface WriterEvents {
  /** A batch is durable (called before its writers are answered). */
  durable(results: WriteResult[], syncSeconds: number): void;
  /** A sync failed: nothing more may be acknowledged. */
  failed(error: Error): void;
}

/** Group commit on the calling thread: the default, and what tests and offline tools use. */
export class LocalWriter implements Writer {
  private readonly group: GroupCommit<WriteRequest, WriteResult>;
  private syncSeconds = 0;
  private failure: Error | undefined;

  constructor(
    private readonly database: NodeDatabase,
    private readonly path: WritePath,
    events: WriterEvents,
  ) {
    this.group = new GroupCommit<WriteRequest, WriteResult>({
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
    });
  }

  submit(request: WriteRequest): Promise<WriteResult> {
    return this.group.submit(request);
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

/** What the main thread tells the writer thread. */
export type ToWriter =
  | { type: 'write'; id: number; request: WriteRequest }
  | { type: 'blob'; id: number; blob: StagedBlob }
  | { type: 'reindex'; id: number }
  | { type: 'close' };

/** What the writer thread answers. */
export type FromWriter =
  | { type: 'durable'; results: WriteResult[]; syncSeconds: number }
  | { type: 'reply'; id: number; value?: unknown; error?: SerializedError }
  | { type: 'failed'; error: SerializedError }
  | { type: 'closed' };

export interface SerializedError {
  code?: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof StrataError) {
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  }
  return { message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}

export function deserializeError(error: SerializedError): Error {
  return error.code ? new StrataError(error.code, error.message, error.details) : new Error(error.message);
}

export interface WriterThreadData {
  file: string;
  blobsDir: string;
  nodeId: string;
  inlineBytesMax: number;
  searchIndexBytesMax: number;
}

/**
 * Writes on a thread of their own: SQLite inserts, commits and fsyncs no longer take turns with
 * HTTP parsing on the event loop, so a node uses both cores under write load. The writer thread
 * has its own connection; the main thread keeps one for reads, which see a commit only once the
 * writer reports it durable (the durable watermark).
 */
export class ThreadWriter implements Writer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private closed: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(data: WriterThreadData, events: WriterEvents) {
    this.worker = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: data });
    this.worker.on('message', (message: FromWriter) => {
      switch (message.type) {
        case 'durable':
          events.durable(message.results, message.syncSeconds);
          break;
        case 'reply': {
          const waiter = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error) waiter?.reject(deserializeError(message.error));
          else waiter?.resolve(message.value);
          break;
        }
        case 'failed':
          events.failed(deserializeError(message.error));
          break;
        case 'closed':
          break;
      }
    });
    const crashed = (error: Error) => {
      this.failure ??= error;
      events.failed(error);
      for (const waiter of this.pending.values()) {
        waiter.reject(new StrataError('STRATA_UNAVAILABLE', `the writer stopped: ${error.message}`));
      }
      this.pending.clear();
    };
    this.worker.on('error', crashed);
    this.worker.on('exit', (code) => {
      if (!this.closed) crashed(new Error(`writer thread exited with code ${code}`));
    });
  }

  submit(request: WriteRequest): Promise<WriteResult> {
    return this.call({ type: 'write', request }) as Promise<WriteResult>;
  }

  async putBlob(blob: StagedBlob): Promise<void> {
    await this.call({ type: 'blob', blob });
  }

  reindex() {
    return this.call({ type: 'reindex' }) as Promise<{ commits: number; versions: number }>;
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.postMessage({ type: 'close' } satisfies ToWriter);
    });
    return this.closed;
  }

  private call(
    message:
      | { type: 'write'; request: WriteRequest }
      | { type: 'blob'; blob: StagedBlob }
      | { type: 'reindex' },
  ) {
    if (this.failure)
      return Promise.reject(
        new StrataError('STRATA_UNAVAILABLE', `the writer stopped: ${this.failure.message}`),
      );
    if (this.closed) return Promise.reject(new StrataError('STRATA_UNAVAILABLE', 'the store is closing'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id } as ToWriter);
    });
  }
}
