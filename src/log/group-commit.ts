/**
 * Group commit: writers queue their requests; one batch at a time is applied in a single
 * transaction and made durable with a single sync, then every writer in it is answered. While a
 * sync is in flight new requests queue up, so the batch size (and the throughput) grows with the
 * number of concurrent writers, and a lone writer waits for one sync only.
 */
export interface GroupCommitOptions<Request, Result> {
  /** Applies a batch in one transaction. Returns one outcome per request, in order; an Error refuses that request only. */
  apply(batch: Request[]): Array<Result | Error>;
  /** Makes everything applied so far durable. */
  sync(): Promise<void>;
  /** Called after a sync, before the writers are answered. */
  durable?(results: Result[]): void;
  /**
   * Upper bound on requests per batch. 1,000 keeps one transaction (which blocks the event loop
   * while it runs) under a few tens of milliseconds even for multi-op commits.
   */
  batchMax?: number;
}

interface Pending<Request, Result> {
  request: Request;
  resolve(result: Result): void;
  reject(error: Error): void;
}

export class GroupCommit<Request, Result> {
  private readonly queue: Array<Pending<Request, Result>> = [];
  private running = false;
  private closed = false;
  private readonly batchMax: number;

  constructor(private readonly options: GroupCommitOptions<Request, Result>) {
    this.batchMax = options.batchMax ?? 1000;
  }

  submit(request: Request): Promise<Result> {
    if (this.closed) return Promise.reject(new Error('writer is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Let requests that arrived in the same turn of the event loop join the first batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Waits for queued writes to finish, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await new Promise((resolve) => setImmediate(resolve));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchMax);
      let outcomes: Array<Result | Error>;
      try {
        outcomes = this.options.apply(batch.map((item) => item.request));
        await this.options.sync();
      } catch (error) {
        for (const item of batch) item.reject(error as Error);
        continue;
      }
      const results = outcomes.filter((outcome): outcome is Result => !(outcome instanceof Error));
      this.options.durable?.(results);
      batch.forEach((item, index) => {
        const outcome = outcomes[index];
        if (outcome instanceof Error) item.reject(outcome);
        else item.resolve(outcome as Result);
      });
    }
    this.running = false;
  }
}
