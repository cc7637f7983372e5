import { describe, expect, it } from 'vitest';
import { GroupCommit, type GroupCommitOptions } from './group-commit.js';

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Records every call; sync() blocks on a deferred the test releases, and signals that it started. */
class Harness {
  readonly applied: number[][] = [];
  readonly durableCalls: string[][] = [];
  readonly events: string[] = [];
  syncCalls = 0;
  private syncs: Array<Deferred> = [];
  private syncStarted: Array<Deferred> = [];
  failOn = new Set<number>();
  applyThrows = false;

  readonly options: GroupCommitOptions<number, string> = {
    apply: (batch) => {
      this.applied.push([...batch]);
      this.events.push(`apply ${batch.join(',')}`);
      if (this.applyThrows) throw new Error('transaction failed');
      return batch.map((n) => (this.failOn.has(n) ? new Error(`refused ${n}`) : `ok ${n}`));
    },
    sync: () => {
      this.syncCalls += 1;
      this.events.push('sync');
      const gate = deferred();
      this.syncs.push(gate);
      this.startedSignal(this.syncCalls - 1).resolve();
      return gate.promise;
    },
    durable: (results) => {
      this.durableCalls.push(results);
      this.events.push(`durable ${results.join(',')}`);
    },
  };

  /** Resolves once the `index`-th sync (0-based) has started. */
  syncStartedAt(index: number): Promise<void> {
    return this.startedSignal(index).promise;
  }

  finishSync(index: number, error?: Error): void {
    const gate = this.syncs[index];
    if (!gate) throw new Error(`sync ${index} has not started`);
    if (error) gate.reject(error);
    else gate.resolve();
  }

  private startedSignal(index: number): Deferred {
    while (this.syncStarted.length <= index) this.syncStarted.push(deferred());
    return this.syncStarted[index] as Deferred;
  }
}

/** Tracks whether a promise has settled, without waiting for it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  const observed = promise.then(
    (value) => {
      done = true;
      return value;
    },
    (error: unknown) => {
      done = true;
      throw error;
    },
  );
  observed.catch(() => {});
  return { settled: () => done, promise: observed };
}

/** Lets every pending microtask and immediate run. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('GroupCommit', () => {
  it('applies concurrent submissions in one batch with one sync', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const results = [1, 2, 3, 4, 5].map((n) => writer.submit(n));
    await harness.syncStartedAt(0);
    harness.finishSync(0);
    expect(await Promise.all(results)).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4', 'ok 5']);
    expect(harness.applied).toEqual([[1, 2, 3, 4, 5]]);
    expect(harness.syncCalls).toBe(1);
  });

  it('answers writers only after the sync resolves', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const first = track(writer.submit(1));
    const second = track(writer.submit(2));
    await harness.syncStartedAt(0);
    await flush();
    await flush();
    expect(first.settled()).toBe(false);
    expect(second.settled()).toBe(false);
    expect(harness.durableCalls).toEqual([]);
    harness.finishSync(0);
    await expect(first.promise).resolves.toBe('ok 1');
    await expect(second.promise).resolves.toBe('ok 2');
    expect(harness.events).toEqual(['apply 1,2', 'sync', 'durable ok 1,ok 2']);
  });

  it('batches requests that arrive while a sync is in flight into the next batch', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const first = writer.submit(1);
    await harness.syncStartedAt(0);
    const later = [2, 3, 4].map((n) => writer.submit(n));
    harness.finishSync(0);
    await expect(first).resolves.toBe('ok 1');
    await harness.syncStartedAt(1);
    harness.finishSync(1);
    expect(await Promise.all(later)).toEqual(['ok 2', 'ok 3', 'ok 4']);
    expect(harness.applied).toEqual([[1], [2, 3, 4]]);
    expect(harness.syncCalls).toBe(2);
  });

  it('a failing item rejects only itself', async () => {
    const harness = new Harness();
    harness.failOn.add(2);
    const writer = new GroupCommit(harness.options);
    const results = [1, 2, 3].map((n) => writer.submit(n));
    await harness.syncStartedAt(0);
    harness.finishSync(0);
    const settled = await Promise.allSettled(results);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toEqual(new Error('refused 2'));
    expect(harness.syncCalls).toBe(1);
    expect(harness.durableCalls).toEqual([['ok 1', 'ok 3']]);
  });

  it('a sync failure rejects the whole batch and nothing is reported durable', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const results = [1, 2, 3].map((n) => writer.submit(n));
    await harness.syncStartedAt(0);
    const failure = new Error('EIO');
    harness.finishSync(0, failure);
    const settled = await Promise.allSettled(results);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toBe(failure);
    expect(harness.durableCalls).toEqual([]);
  });

  it('keeps working after a failed batch', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const failed = writer.submit(1);
    await harness.syncStartedAt(0);
    harness.finishSync(0, new Error('EIO'));
    await expect(failed).rejects.toThrow('EIO');
    const next = writer.submit(2);
    await harness.syncStartedAt(1);
    harness.finishSync(1);
    await expect(next).resolves.toBe('ok 2');
  });

  it('an apply that throws rejects the whole batch without syncing', async () => {
    const harness = new Harness();
    harness.applyThrows = true;
    const writer = new GroupCommit(harness.options);
    const settled = await Promise.allSettled([writer.submit(1), writer.submit(2)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(harness.syncCalls).toBe(0);
    expect(harness.durableCalls).toEqual([]);
  });

  it('splits the queue into batches of at most batchMax', async () => {
    const harness = new Harness();
    const writer = new GroupCommit({ ...harness.options, batchMax: 2 });
    const results = [1, 2, 3, 4, 5].map((n) => writer.submit(n));
    for (let index = 0; index < 3; index += 1) {
      await harness.syncStartedAt(index);
      harness.finishSync(index);
    }
    expect(await Promise.all(results)).toHaveLength(5);
    expect(harness.applied).toEqual([[1, 2], [3, 4], [5]]);
    expect(harness.syncCalls).toBe(3);
  });

  it('close() waits for queued writes, then refuses new ones', async () => {
    const harness = new Harness();
    const writer = new GroupCommit(harness.options);
    const pending = track(writer.submit(1));
    const closed = track(writer.close());
    await harness.syncStartedAt(0);
    await flush();
    expect(closed.settled()).toBe(false);
    harness.finishSync(0);
    await closed.promise;
    expect(pending.settled()).toBe(true);
    await expect(pending.promise).resolves.toBe('ok 1');
    await expect(writer.submit(2)).rejects.toThrow(/closed/);
    expect(harness.applied).toEqual([[1]]);
  });

  it('applies no batch until ready() resolves, then applies everything queued meanwhile in one', async () => {
    const harness = new Harness();
    let gate: Deferred | undefined = deferred();
    const writer = new GroupCommit({ ...harness.options, ready: () => gate?.promise });
    const first = writer.submit(1);
    await flush();
    const later = [2, 3].map((n) => writer.submit(n));
    await flush();
    expect(harness.applied).toEqual([]);
    expect(writer.idle).toBe(false);
    const opened = gate;
    gate = undefined;
    opened.resolve();
    await harness.syncStartedAt(0);
    expect(harness.applied).toEqual([[1, 2, 3]]);
    harness.finishSync(0);
    expect(await Promise.all([first, ...later])).toEqual(['ok 1', 'ok 2', 'ok 3']);
    expect(writer.idle).toBe(true);
  });
});
