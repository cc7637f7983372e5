import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpProcesses, temporaryDirectory, waitFor } from '../support/process.js';
import { type ReleaseServer, startReleaseServer } from '../support/release-server.js';

/**
 * Switch under load (DESIGN §3): a release scheduled ahead takes effect at its effective time for
 * every request, atomically, while clients keep requesting the app; nobody sees an error, and the
 * change feed records the activation.
 */

const app = 'switch';
/** Concurrent keep-alive clients, each with one request in flight at a time. */
const clientCount = 16;
/** How far ahead the new release is scheduled. */
const scheduleAheadMs = 2_000;
/** Load keeps running this long after the effective time, then stops. */
const loadAfterSwitchMs = 1_500;
/** Client and server read the same clock, but the server's reading is rounded down to the millisecond. */
const clockAllowanceMs = 5;
/** The activation event must be on the change feed this soon after the effective time. */
const activationDeadlineMs = 1_500;
/** Between polls of the change feed: often enough to time the event, seldom enough not to add load. */
const feedPollIntervalMs = 25;
/** One request; a node that cannot answer in this time under this load is failing. */
const requestTimeoutMs = 5_000;

interface Sample {
  path: string;
  /** Wall-clock milliseconds (fractional) when the request was sent and when its body was complete. */
  start: number;
  end: number;
  status: number;
  release: string | undefined;
  body: string;
}

/**
 * The same wall clock the server reads (Date.now()). performance.timeOrigin + performance.now()
 * has finer resolution but is monotonic from process start and drifts from the wall clock over a
 * long test run, which can exceed the allowance below.
 */
function now(): number {
  return Date.now();
}

let node: ReleaseServer;
let oldRelease: string;

function writeApp(dir: string, version: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'index.html'),
    `<!doctype html>\n<html><head><title>switch</title></head><body data-version="${version}"><script src="app.js"></script></body></html>\n`,
  );
  writeFileSync(join(dir, 'app.js'), `window.version = '${version}';\n`);
}

describe('switch under load', () => {
  beforeAll(async () => {
    node = await startReleaseServer();
    const dir = join(temporaryDirectory('strata-switch-'), 'app');
    writeApp(dir, 'v1');
    const published = await node.publish(dir, app);
    oldRelease = published.release as string;
    expect(oldRelease).toBeDefined();
  });

  afterAll(cleanUpProcesses);

  it('serves the new release to every request from its effective time on, without errors', async () => {
    const clients = Array.from(
      { length: clientCount },
      () =>
        new Client(node.server.url, {
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: requestTimeoutMs,
          bodyTimeout: requestTimeoutMs,
        }),
    );
    const samples: Sample[] = [];
    const failures: string[] = [];
    /** Set once the new release is scheduled: load stops this long after its effective time. */
    let stopAt = Number.POSITIVE_INFINITY;
    /** Upper bound on the whole load, whatever happens to scheduling. */
    const hardStop = now() + 30_000;

    const worker = async (client: Client, index: number) => {
      for (let n = 0; now() < stopAt && now() < hardStop; n++) {
        const path = (index + n) % 2 === 0 ? `/apps/${app}/` : `/apps/${app}/app.js`;
        const start = now();
        try {
          const response = await client.request({ method: 'GET', path });
          const body = await response.body.text();
          const release = response.headers['strata-release'];
          samples.push({
            path,
            start,
            end: now(),
            status: response.statusCode,
            release: typeof release === 'string' ? release : undefined,
            body,
          });
        } catch (error) {
          failures.push(`${path} at ${new Date(start).toISOString()}: ${(error as Error).message}`);
        }
      }
    };

    try {
      const load = Promise.all(clients.map(worker));

      // The new content goes into the buckets first; the release that routes to it comes next.
      const written = await node.api<{ versions: string[] }>('/v1/commits', {
        method: 'POST',
        body: {
          message: 'switch test: v2 content',
          ops: [
            {
              kind: 'put',
              bucket: 'application',
              key: 'switch-v2/index.html',
              value: `<!doctype html>\n<html><head><title>switch</title></head><body data-version="v2"><script src="app.js"></script></body></html>\n`,
              contentType: 'text/html; charset=utf-8',
            },
            {
              kind: 'put',
              bucket: 'application',
              key: 'switch-v2/app.js',
              value: `window.version = 'v2';\n`,
              contentType: 'text/javascript; charset=utf-8',
            },
          ],
        },
      });
      // Let the clients reach a steady rate on the old release before scheduling the switch.
      await waitFor(() => samples.length >= clientCount * 20, {
        timeoutMs: 10_000,
        what: 'the clients to warm up',
      });
      const effectiveAt = Math.ceil(now()) + scheduleAheadMs;
      const created = await node.api<{ release: string; effectiveAt: string }>(`/v1/apps/${app}/releases`, {
        method: 'POST',
        body: {
          routes: { '/index.html': written.versions[0], '/app.js': written.versions[1] },
          message: 'switch test: v2',
          effectiveAt: new Date(effectiveAt).toISOString(),
        },
      });
      const newRelease = created.release;
      expect(Date.parse(created.effectiveAt)).toBe(effectiveAt);
      stopAt = effectiveAt + loadAfterSwitchMs;
      expect(now(), 'the release was scheduled before its effective time').toBeLessThan(effectiveAt);

      const activation = watchActivation(newRelease, effectiveAt + activationDeadlineMs);
      const [, activatedSeenAt] = await Promise.all([load, activation]);

      expect(failures).toEqual([]);
      const bad = samples.filter((sample) => sample.status !== 200);
      expect(bad.map((sample) => `${sample.path}: ${sample.status} ${sample.body.slice(0, 200)}`)).toEqual(
        [],
      );
      // Each response's body belongs to the release its header names.
      const mismatched = samples.filter((sample) => {
        const version = sample.release === newRelease ? 'v2' : sample.release === oldRelease ? 'v1' : '?';
        return !sample.body.includes(`'${version}'`) && !sample.body.includes(`"${version}"`);
      });
      expect(mismatched.map((sample) => `${sample.path} ${sample.release}: ${sample.body}`)).toEqual([]);

      const lateOld = samples.filter(
        (sample) => sample.start > effectiveAt + clockAllowanceMs && sample.release !== newRelease,
      );
      const earlyNew = samples.filter((sample) => sample.end < effectiveAt && sample.release !== oldRelease);
      const show = (sample: Sample) =>
        `${sample.path} ${(sample.start - effectiveAt).toFixed(2)}…${(sample.end - effectiveAt).toFixed(2)} ms: ${sample.release}`;
      expect(lateOld.map(show), 'requests started after the effective time served the old release').toEqual(
        [],
      );
      expect(
        earlyNew.map(show),
        'requests completed before the effective time served the new release',
      ).toEqual([]);

      const before = samples.filter((sample) => sample.release === oldRelease);
      const after = samples.filter((sample) => sample.release === newRelease);
      expect(before.length).toBeGreaterThan(0);
      expect(after.length).toBeGreaterThan(0);
      const lastOldStart = Math.max(...before.map((sample) => sample.start)) - effectiveAt;
      const firstNewEnd = Math.min(...after.map((sample) => sample.end)) - effectiveAt;
      const firstNewStart = Math.min(...after.map((sample) => sample.start)) - effectiveAt;
      const latencies = samples.map((sample) => sample.end - sample.start).sort((a, b) => a - b);
      const median = latencies[Math.floor(latencies.length / 2)] ?? 0;
      const spanning = samples
        .filter((sample) => sample.start <= effectiveAt && sample.end >= effectiveAt)
        .map((sample) => sample.end - sample.start);
      console.log(
        `switch under load: ${samples.length} requests from ${clientCount} clients, 0 failed; ` +
          `latency median ${median.toFixed(1)} ms, max ${(latencies.at(-1) ?? 0).toFixed(1)} ms, ` +
          `max of the ${spanning.length} in flight at the effective time ${Math.max(0, ...spanning).toFixed(1)} ms; ` +
          `${before.length} old, ${after.length} new; relative to the effective time: ` +
          `last old request started at ${lastOldStart.toFixed(2)} ms, first new one started at ` +
          `${firstNewStart.toFixed(2)} ms and completed at ${firstNewEnd.toFixed(2)} ms; ` +
          `release.activated on the change feed at +${(activatedSeenAt - effectiveAt).toFixed(0)} ms`,
      );
    } finally {
      stopAt = 0;
      await Promise.allSettled(clients.map((client) => client.close()));
    }
  }, 45_000);
});

/**
 * Polls the change feed (admin: system buckets included) until it shows the `release.activated`
 * event of `release`, and returns when it was seen; fails once `deadline` has passed without it.
 */
async function watchActivation(release: string, deadline: number): Promise<number> {
  const key = `release.activated/${app}/${release}`;
  let since = 0;
  for (;;) {
    const page = await node.api<{
      changes: Array<{ bucket: string; key: string; kind: string; commit: string; version: string }>;
      last: number;
    }>(`/v1/changes?since=${since}&limit=1000`);
    since = page.last;
    const seenAt = now();
    const item = page.changes.find((change) => change.bucket === '_events' && change.key === key);
    if (item) {
      expect(item.kind).toBe('put');
      // System buckets have no key API; the event's bytes are reached through its commit.
      const commit = await node.api<{ message: string; versions: Array<{ version: string; blob?: string }> }>(
        `/v1/commits/${item.commit}`,
      );
      const blob = commit.versions.find((version) => version.version === item.version)?.blob;
      if (!blob) throw new Error(`the activation event ${item.version} has no blob`);
      const event = await node.api<{ type: string; app: string; release: string }>(`/v1/blobs/${blob}`);
      expect(event).toMatchObject({ type: 'release.activated', app, release });
      return seenAt;
    }
    if (page.changes.length === 1000) continue;
    if (seenAt > deadline) {
      throw new Error(`no release.activated event for ${release} on the change feed by the deadline`);
    }
    await delay(feedPollIntervalMs);
  }
}
