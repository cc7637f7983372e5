/**
 * Group commit: writers queue their requests; each batch is applied in a single transaction and
 * made durable with a single sync, then every writer in it is answered. While a sync is in flight
 * new requests queue up (and the next batch is already applied), so the batch size (and the
 * throughput) grows with the number of concurrent writers, and a lone writer waits for one sync.
 */
export interface GroupCommitOptions<Request, Result> {
  /** Applies a batch in one transaction. Returns one outcome per request, in order; an Error refuses that request only. */
  apply(batch: Request[]): Array<Result | Error>;
  /**
   * Makes everything applied so far durable. `alone` is true when the batch has one request and
   * nobody else is waiting: the sync may then run on the calling thread, saving the hand-off to
   * the thread pool that only pays off when other requests can be parsed meanwhile.
   */
  sync(alone: boolean): Promise<void>;
  /** Called after a sync, before the writers are answered. */
  durable?(results: Result[]): void;
  /** Called once a batch is applied (visible to the writer's own transaction), before its sync. Must not throw. */
  applied?(batch: Request[], outcomes: Array<Result | Error>): void;
  /**
   * Asked before each batch is applied: a promise to wait for first (work elsewhere that holds the
   * database's write lock), or undefined to go ahead.
   */
  ready?(): Promise<unknown> | undefined;
  /**
   * Upper bound on requests per batch. 1,000 keeps one transaction (which blocks the event loop
   * while it runs) under a few tens of milliseconds even for multi-op commits.
   */
  batchMax?: number;
}

/**
 * Batches in flight at once: one syncing while the next is applied. More would only lengthen the
 * chain of syncs each writer waits behind.
 */
const pipelineDepth = 2;

interface Pending<Request, Result> {
  request: Request;
  resolve(result: Result): void;
  reject(error: Error): void;
}

export class GroupCommit<Request, Result> {
  private readonly queue: Array<Pending<Request, Result>> = [];
  /** Batches applied whose writers are not answered yet (at most `pipelineDepth`). */
  private inFlight = 0;
  private scheduled = false;
  /** Waiting for `ready` before the next batch. */
  private gated = false;
  private closed = false;
  /** The tail of the chain of syncs: each batch's sync starts after the previous one finished. */
  private syncing: Promise<void> = Promise.resolve();
  private idleWaiters: Array<() => void> = [];
  private readonly batchMax: number;

  constructor(private readonly options: GroupCommitOptions<Request, Result>) {
    this.batchMax = options.batchMax ?? 1000;
  }

  submit(request: Request): Promise<Result> {
    if (this.closed) return Promise.reject(new Error('writer is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  /** Nothing queued, waiting or in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && !this.scheduled && !this.gated;
  }

  /** Waits for queued writes to finish, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= pipelineDepth) return;
    this.scheduled = true;
    // Let requests that arrived in the same turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.step();
    });
  }

  /**
   * Applies one batch and chains its sync behind the previous batch's. The next batch is applied
   * while this one syncs, so the CPU work of batch N+1 overlaps the disk work of batch N; writers
   * are answered strictly in batch order, each only after a sync that began after its batch was
   * written.
   */
  private step(): void {
    if (this.queue.length === 0 || this.inFlight >= pipelineDepth || this.gated) return;
    const gate = this.options.ready?.();
    if (gate) {
      this.gated = true;
      const resume = () => {
        this.gated = false;
        this.schedule();
      };
      gate.then(resume, resume);
      return;
    }
    const batch = this.queue.splice(0, this.batchMax);
    const requests = batch.map((item) => item.request);
    let outcomes: Array<Result | Error>;
    try {
      outcomes = this.options.apply(requests);
    } catch (error) {
      for (const item of batch) item.reject(error as Error);
      this.settled();
      return;
    }
    this.options.applied?.(requests, outcomes);
    this.inFlight += 1;
    const alone = batch.length === 1 && this.queue.length === 0 && this.inFlight === 1;
    const durable = this.syncing.then(() => this.options.sync(alone));
    // A failed sync fails its own batch; whether later ones may proceed is the caller's policy.
    this.syncing = durable.catch(() => {});
    durable
      .then(
        () => {
          const results = outcomes.filter((outcome): outcome is Result => !(outcome instanceof Error));
          this.options.durable?.(results);
          batch.forEach((item, index) => {
            const outcome = outcomes[index];
            if (outcome instanceof Error) item.reject(outcome);
            else item.resolve(outcome as Result);
          });
        },
        (error: unknown) => {
          for (const item of batch) item.reject(error as Error);
        },
      )
      .finally(() => {
        this.inFlight -= 1;
        this.settled();
      });
    this.schedule();
  }

  private settled(): void {
    this.schedule();
    if (this.queue.length === 0 && this.inFlight === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
