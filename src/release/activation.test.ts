import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { VersionId } from '../core/ids.js';
import { Store } from '../store/store.js';
import {
  type ActivationEvent,
  ActivationScheduler,
  activationKey,
  eventsBucket,
  type Timers,
} from './activation.js';
import { Releases } from './releases.js';

const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;

interface ArmedTimer {
  fn: () => void;
  ms: number;
  cancelled: boolean;
}

/** Records armed timers; the test decides when one fires. */
class FakeTimers implements Timers {
  readonly armed: ArmedTimer[] = [];

  set(fn: () => void, ms: number): () => void {
    const timer: ArmedTimer = { fn, ms, cancelled: false };
    this.armed.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  live(): ArmedTimer[] {
    return this.armed.filter((timer) => !timer.cancelled);
  }

  /** The one pending timer (the scheduler keeps at most one). */
  pending(): ArmedTimer | undefined {
    const live = this.live();
    expect(live.length).toBeLessThanOrEqual(1);
    return live[0];
  }

  fire(): void {
    const timer = this.pending();
    expect(timer, 'a timer should be armed').toBeDefined();
    (timer as ArmedTimer).cancelled = true;
    (timer as ArmedTimer).fn();
  }
}

let dataDir: string;
let clock: ManualClock;
let store: Store;
let releases: Releases;
let timers: FakeTimers;
let errors: unknown[];
const schedulers: ActivationScheduler[] = [];

function scheduler(): ActivationScheduler {
  const created = new ActivationScheduler(store, timers, (error) => errors.push(error));
  schedulers.push(created);
  return created;
}

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strata-activation-'));
  clock = new ManualClock(start);
  store = new Store({ dataDir, clock });
  releases = new Releases(store);
  timers = new FakeTimers();
  errors = [];
});
afterEach(async () => {
  for (const s of schedulers.splice(0)) s.stop();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  expect(errors).toEqual([]);
});

/** The timer callback does not hand back its promise: wait, with a bound, until that run is over. */
async function settled(s: ActivationScheduler): Promise<void> {
  await vi.waitFor(() => expect((s as unknown as { running: boolean }).running).toBe(false), {
    timeout: 5_000,
    interval: 5,
  });
}

async function release(app: string, text: string, effectiveAt?: number): Promise<VersionId> {
  const blob = await store.blobs.fromBuffer(Buffer.from(text));
  const file = await store.write({
    ops: [{ kind: 'put', bucket: 'application', key: `${app}.html`, blob, contentType: 'text/html' }],
  });
  const created = await releases.create(app, {
    routes: { '/index.html': file.versions[0] as VersionId },
    ...(effectiveAt !== undefined ? { effectiveAt } : {}),
  });
  return created.release;
}

function events(app: string, release: string) {
  return store.snapshot().versionsOf(eventsBucket, activationKey(app, release));
}

function allEvents() {
  return store.snapshot().changes(0, 1000, eventsBucket);
}

function eventBody(app: string, release: string): ActivationEvent {
  const winner = store.snapshot().live(eventsBucket, activationKey(app, release));
  const blob = winner?.blob ? store.blobs.get(winner.blob) : undefined;
  if (!blob?.data) throw new Error(`no inline event for ${app} ${release}`);
  return JSON.parse(blob.data.toString('utf8')) as ActivationEvent;
}

describe('ActivationScheduler', () => {
  it('does not miss a release that comes due between an early pass and the re-arm', async () => {
    const s = scheduler();
    s.start();
    await settled(s);
    await release('site', 'one');
    const staged = await release('site', 'two', start + hour);
    // The timer fires one ms early (timers run on the monotonic clock, releases on the wall
    // clock); by the time the pass re-arms, the wall clock has reached the effective time.
    clock.set(start + hour - 1);
    const read = clock.now.bind(clock);
    let reads = 0;
    clock.now = () => {
      const value = read();
      reads += 1;
      if (reads === 1) clock.set(start + hour);
      return value;
    };
    timers.fire();
    await settled(s);
    clock.now = read;
    expect(events('site', staged)).toEqual([]);
    expect(timers.pending()?.ms).toBe(0);
    timers.fire();
    await vi.waitFor(() => expect(events('site', staged)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    await settled(s);
  });

  it('records a scheduled release exactly once when its time comes, and not before', async () => {
    const s = scheduler();
    s.start();
    await settled(s);
    const now = await release('site', 'one');
    const staged = await release('site', 'two', start + hour);
    expect(timers.pending()?.ms).toBe(hour);

    // A timer that fires early records nothing and waits for the rest.
    clock.set(start + hour - 1);
    timers.fire();
    await settled(s);
    expect(events('site', staged)).toEqual([]);
    expect(timers.pending()?.ms).toBe(1);

    clock.set(start + hour);
    timers.fire();
    await vi.waitFor(() => expect(events('site', staged)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    await settled(s);
    expect(eventBody('site', staged)).toEqual({
      type: 'release.activated',
      app: 'site',
      release: staged,
      effectiveAt: new Date(start + hour).toISOString(),
      activatedAt: new Date(start + hour).toISOString(),
    });
    const [event] = events('site', staged);
    expect(event).toMatchObject({ kind: 'put', refs: [staged], contentType: 'application/json' });

    // Running again (a second timer, a restart) adds nothing.
    await s.activateDue();
    clock.advance(hour);
    await s.activateDue();
    expect(events('site', staged)).toHaveLength(1);
    expect(events('site', now)).toEqual([]);
    expect(allEvents()).toHaveLength(1);
    expect(timers.pending()).toBeUndefined();
  });

  it('records nothing for a release effective immediately, or back-dated', async () => {
    const s = scheduler();
    s.start();
    await release('site', 'one');
    clock.advance(minute);
    await release('site', 'earlier', start - hour);
    expect(timers.pending()).toBeUndefined();
    clock.advance(hour);
    await s.activateDue();
    expect(allEvents()).toEqual([]);
  });

  it('records nothing for a cancelled release', async () => {
    const s = scheduler();
    s.start();
    await release('site', 'one');
    const staged = await release('site', 'two', start + hour);
    await releases.cancel('site', staged);
    clock.set(start + hour);
    const pending = timers.pending();
    if (pending) {
      timers.fire();
      await settled(s);
    }
    await s.activateDue();
    expect(events('site', staged)).toEqual([]);
    expect(allEvents()).toEqual([]);
  });

  it('records only the release that wins at a shared effective time', async () => {
    const s = scheduler();
    s.start();
    const superseded = await release('site', 'one', start + hour);
    clock.advance(minute);
    const winner = await release('site', 'two', start + hour);
    clock.set(start + hour);
    timers.fire();
    await vi.waitFor(() => expect(events('site', winner)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    await settled(s);
    await s.activateDue();
    expect(events('site', superseded)).toEqual([]);
    expect(allEvents()).toHaveLength(1);
  });

  it('records each of several releases that came due in turn, across apps', async () => {
    const s = scheduler();
    s.start();
    const a1 = await release('alpha', 'a1', start + hour);
    const b1 = await release('beta', 'b1', start + 2 * hour);
    const a2 = await release('alpha', 'a2', start + 3 * hour);
    expect(timers.pending()?.ms).toBe(hour);

    clock.set(start + hour);
    timers.fire();
    await vi.waitFor(() => expect(events('alpha', a1)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    await settled(s);
    // Re-armed for the next effective time, relative to now.
    expect(timers.pending()?.ms).toBe(hour);

    clock.set(start + 3 * hour);
    timers.fire();
    await vi.waitFor(() => expect(allEvents()).toHaveLength(3), { timeout: 5_000, interval: 5 });
    await settled(s);
    expect(events('beta', b1)).toHaveLength(1);
    expect(events('alpha', a2)).toHaveLength(1);
    expect(timers.pending()).toBeUndefined();
  });

  it('records at start() a release that came due while it was stopped', async () => {
    const first = scheduler();
    first.start();
    await release('site', 'one');
    const staged = await release('site', 'two', start + hour);
    expect(timers.pending()?.ms).toBe(hour);
    first.stop();
    expect(timers.pending(), 'stop() cancels the timer').toBeUndefined();

    // Stopped: later writes arm nothing, and the due time passes unseen.
    clock.set(start + 2 * hour);
    await release('other', 'x');
    expect(timers.pending()).toBeUndefined();
    expect(events('site', staged)).toEqual([]);

    const second = scheduler();
    second.start();
    await vi.waitFor(() => expect(events('site', staged)).toHaveLength(1), { timeout: 5_000, interval: 5 });
    await settled(second);
    expect(eventBody('site', staged)).toMatchObject({
      effectiveAt: new Date(start + hour).toISOString(),
      activatedAt: new Date(start + 2 * hour).toISOString(),
    });
    expect(allEvents()).toHaveLength(1);
  });

  it('arms the timer sooner when a durable write brings a release closer, and only then', async () => {
    const s = scheduler();
    s.start();
    await settled(s);
    expect(timers.pending()).toBeUndefined();
    await release('site', 'later', start + 3 * hour);
    expect(timers.pending()?.ms).toBe(3 * hour);
    clock.advance(minute);
    await release('site', 'sooner', start + hour);
    const sooner = timers.pending();
    expect(sooner?.ms).toBe(hour - minute);
    // A release due later, and a write elsewhere, leave the armed timer as it is.
    clock.advance(minute);
    await release('other', 'latest', start + 5 * hour);
    const blob = await store.blobs.fromBuffer(Buffer.from('x'));
    await store.write({ ops: [{ kind: 'put', bucket: 'notes', key: 'n', blob, contentType: 'text/plain' }] });
    expect(timers.pending()).toBe(sooner);
    expect(timers.armed.filter((timer) => timer.cancelled)).toHaveLength(1);
  });

  it('does not put a retry off while releases keep being written', async () => {
    const deferring = new ActivationScheduler(
      store,
      timers,
      (error) => errors.push(error),
      () => false,
    );
    schedulers.push(deferring);
    deferring.start();
    await settled(deferring);
    const staged = await release('site', 'two', start + hour);
    clock.set(start + hour);
    timers.fire();
    await settled(deferring);
    // Another node should record this one: look again in 2 s, whatever is written meanwhile.
    const retry = timers.pending();
    expect(retry?.ms).toBe(2_000);
    for (let i = 0; i < 3; i++) {
      clock.advance(500);
      await release(`app${i}`, `now ${i}`);
    }
    expect(timers.pending()).toBe(retry);
    expect(events('site', staged)).toEqual([]);
  });

  it('caps a long wait at the largest setTimeout delay', async () => {
    const s = scheduler();
    s.start();
    await release('site', 'far', start + 365 * 24 * hour);
    expect(timers.pending()?.ms).toBe(2 ** 31 - 1);
    // A capped timer that fires records nothing and re-arms.
    clock.advance(2 ** 31 - 1);
    timers.fire();
    await settled(s);
    expect(allEvents()).toEqual([]);
    expect(timers.pending()?.ms).toBe(Math.min(start + 365 * 24 * hour - clock.now(), 2 ** 31 - 1));
  });
});
