import { hlcWall } from '../core/hlc.js';
import type { NodeId } from '../core/ids.js';
import type { Store, WriteResult } from '../store/store.js';
import { releasesBucket } from './releases.js';

/** Events are versions in this bucket; the change feed shows them to every reader. */
export const eventsBucket = '_events';

export interface Timers {
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  set(fn: () => void, ms: number): () => void;
}

export interface ActivationEvent {
  type: 'release.activated';
  app: string;
  release: string;
  effectiveAt: string;
  activatedAt: string;
}

/** A pass that failed (the disk, say) is retried after a second, not in a tight loop. */
const failedPassRetryMs = 1000;
/** A release whose event another node should record is looked at again this often, in case it never does. */
const deferredPassRetryMs = 2000;
/** setTimeout takes at most 2^31-1 ms; longer waits are re-armed in steps. */
const timerMsMax = 2 ** 31 - 1;

export function activationKey(app: string, release: string): string {
  return `release.activated/${app}/${release}`;
}

/**
 * Records `release.activated` (in the log, bucket `_events`, and so on the change feed) when a
 * scheduled release takes effect. Serving never waits for this: each request evaluates the winner
 * at its own time (DESIGN §3), so a late or missing timer changes no response, only the event.
 * Releases that took effect while the node was down are recorded at the next start.
 */
export class ActivationScheduler {
  private cancelTimer: (() => void) | undefined;
  /** The wall-clock time the armed timer aims at; infinite when none is armed. */
  private armedFor = Number.POSITIVE_INFINITY;
  /** Only a write to the releases bucket can bring the next effective time closer. */
  private readonly onDurable = (results: WriteResult[]) => {
    if (results.some((result) => result.buckets.includes(releasesBucket))) this.arm();
  };
  private running = false;
  /** Every release effective at or before this time has had its pass. */
  private handledUpTo = -1;
  /** After a failed pass, wait this long before the next one instead of retrying at once. */
  private retryAfterMs = 0;

  constructor(
    private readonly store: Store,
    private readonly timers: Timers,
    private readonly onError: (error: unknown) => void,
    /**
     * In a cluster every node sees the release take effect, but one event is wanted: the node that
     * wrote the release records it, or another when that one is gone (see node.ts).
     */
    private readonly recordsFor: (origin: NodeId) => boolean = () => true,
  ) {}

  start(): void {
    this.store.on('durable', this.onDurable);
    void this.activateDue();
  }

  stop(): void {
    this.store.off('durable', this.onDurable);
    this.disarm();
  }

  /**
   * Arms the timer for the first release effective after the last completed pass, not after now:
   * a timer may fire a millisecond early (it runs on the monotonic clock, releases on the wall
   * clock), and a release that comes due between that pass and now must still get its pass.
   * A timer already aiming at that time or sooner is kept: re-arming it on every write would put a
   * retry off for as long as writes kept coming.
   */
  private arm(): void {
    const now = this.store.clock.now();
    const next = this.store.snapshot(now).nextEffective(releasesBucket, this.handledUpTo);
    if (next === undefined) return;
    const delay = Math.min(Math.max(next - now, this.retryAfterMs), timerMsMax);
    if (this.armedFor <= now + delay) return;
    this.disarm();
    this.armedFor = now + delay;
    this.cancelTimer = this.timers.set(() => {
      this.cancelTimer = undefined;
      this.armedFor = Number.POSITIVE_INFINITY;
      void this.activateDue();
    }, delay);
  }

  private disarm(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  /** Writes an activation event for every scheduled release now in effect that has none yet. */
  async activateDue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const now = this.store.clock.now();
    let deferred = false;
    try {
      const snapshot = this.store.snapshot(now);
      for (const release of snapshot.putsEffectiveBy(releasesBucket, now)) {
        const scheduled = hlcWall(release.hlc) < release.effectiveAt;
        if (!scheduled || snapshot.live(eventsBucket, activationKey(release.key, release.version))) continue;
        // It took effect only if it was the winner at its time (not cancelled, not superseded).
        if (
          snapshot.read(releasesBucket, release.key, { at: release.effectiveAt }).winner?.version !==
          release.version
        )
          continue;
        if (!this.recordsFor(release.origin)) {
          deferred = true;
          continue;
        }
        const event: ActivationEvent = {
          type: 'release.activated',
          app: release.key,
          release: release.version,
          effectiveAt: new Date(release.effectiveAt).toISOString(),
          activatedAt: new Date(now).toISOString(),
        };
        const blob = await this.store.blobs.fromBuffer(Buffer.from(JSON.stringify(event)));
        await this.store
          .write({
            ops: [
              {
                kind: 'put',
                bucket: eventsBucket,
                key: activationKey(release.key, release.version),
                blob,
                contentType: 'application/json',
                ifNoneMatch: true,
                refs: [release.version],
              },
            ],
            message: `release.activated ${release.key} ${release.version}`,
          })
          .catch((error: unknown) => {
            // Another path recorded it first: nothing to do.
            if ((error as { code?: string }).code !== 'STRATA_PRECONDITION_FAILED') throw error;
          });
      }
      if (deferred) {
        this.retryAfterMs = deferredPassRetryMs;
      } else {
        this.handledUpTo = now;
        this.retryAfterMs = 0;
      }
    } catch (error) {
      this.onError(error);
      this.retryAfterMs = failedPassRetryMs;
    } finally {
      this.running = false;
      this.arm();
    }
  }
}
