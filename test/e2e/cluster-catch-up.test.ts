import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterAdminToken as adminToken, clusterAuth as auth, clusterKey } from '../support/cluster.js';
import {
  cleanUpProcesses,
  getJson,
  type StrataServer,
  startServer,
  temporaryDirectory,
} from '../support/process.js';
import {
  seedCommits,
  seededContentType,
  seededKey,
  seededTextEvery,
  seededValue,
} from '../support/seed-commits.js';
import { waitWithDetail } from '../support/wait.js';

/**
 * Catch-up of a new node (DESIGN §5 anti-entropy): node A holds 100,000 commits, node B joins it
 * empty and pulls the whole log in bounded batches. B must end with A's revision and digest, and
 * must not hold the log in memory while it catches up (its peak RSS stays far below the log's size
 * times the per-commit overhead of keeping it all).
 */

const bucket = 'seeded';
const commitCount = 100_000;
/** Generous: B holds one sync batch (~1 MiB) at a time plus SQLite's cache, not 100,000 commits. */
const peakRssBytesMax = 600 * 1024 * 1024;
/** On a loaded 2-core machine catch-up takes well under a minute; this only bounds a hang. */
const catchUpTimeoutMs = 180_000;
const memorySampleIntervalMs = 100;
const statusPollIntervalMs = 250;
/** Seeded values read back from B after catch-up, spread over the log. */
const spotChecks = 50;

interface Member {
  id: string;
  self: boolean;
  revision: Record<string, number>;
}

/** A node busy catching up may take a while to answer. */
const answerTimeoutMs = 30_000;

async function selfRevision(server: StrataServer): Promise<Record<string, number>> {
  const status = await getJson<{ members: Member[] }>(server, '/v1/cluster/status', auth, answerTimeoutMs);
  const self = status.members.find((member) => member.self);
  if (!self) throw new Error('cluster status has no self row');
  return self.revision;
}

async function digestOf(server: StrataServer): Promise<string> {
  return (await getJson<{ digest: string }>(server, '/v1/admin/digest', auth, answerTimeoutMs)).digest;
}

/** VmRSS and VmHWM of a process in bytes, from /proc (Linux). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

describe('a new node catching up', () => {
  afterAll(cleanUpProcesses);

  it(`pulls ${commitCount.toLocaleString('en')} commits from a peer in bounded memory`, {
    // Typically two minutes on an idle 2-core machine; this bounds a hang on a loaded one.
    timeout: 300_000,
  }, async () => {
    const dirA = temporaryDirectory('strata-catch-up-a-');
    const seeded = await seedCommits({ dataDir: dirA, commits: commitCount, bucket });
    console.log(
      `seeded ${commitCount} commits in ${(seeded.ms / 1000).toFixed(1)} s ` +
        `(${Math.round(commitCount / (seeded.ms / 1000))} commits/s, in-process through the store; ` +
        `one in ${seededTextEvery} is text, indexed for search)`,
    );
    expect(seeded.revision).toEqual({ [seeded.nodeId]: commitCount });

    const cluster = ['--cluster-key', clusterKey, '--log-level', 'warn'];
    const a = await startServer({
      dataDir: dirA,
      adminToken,
      extraArguments: [...cluster, '--node-name', 'a'],
    });
    const revisionA = await selfRevision(a);
    expect(revisionA).toEqual({ [seeded.nodeId]: commitCount });
    const digestA = await digestOf(a);

    const started = performance.now();
    const b = await startServer({
      dataDir: temporaryDirectory('strata-catch-up-b-'),
      adminToken,
      extraArguments: [...cluster, '--node-name', 'b', '--join', a.url],
    });
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          samples.push(memoryOf(b.pid).rss);
        } catch {
          // The process is gone; the waits below report why.
        }
        await new Promise((resolve) => setTimeout(resolve, memorySampleIntervalMs));
      }
    })();

    let revisionB: Record<string, number> = {};
    let progressLines = 0;
    try {
      await waitWithDetail(
        async () => {
          revisionB = await selfRevision(b);
          const seconds = (performance.now() - started) / 1000;
          // A line every ~5 s, so a slow run shows where it is.
          if (seconds >= (progressLines + 1) * 5) {
            progressLines += 1;
            console.log(
              `  ${seconds.toFixed(1)} s: B at ${revisionB[seeded.nodeId] ?? 0} of ${commitCount}, ` +
                `VmRSS ${mib(samples.at(-1) ?? 0)}`,
            );
          }
          return (revisionB[seeded.nodeId] ?? 0) >= commitCount;
        },
        { timeoutMs: catchUpTimeoutMs, intervalMs: statusPollIntervalMs, what: "B to reach A's revision" },
        () => `B at ${JSON.stringify(revisionB)}, A at ${JSON.stringify(revisionA)}`,
      );
    } finally {
      sampling = false;
      await sampler;
    }
    const caughtUpMs = performance.now() - started;
    expect(revisionB).toEqual(revisionA);
    // Equal revisions mean every commit is durable on B; the derived state must be equal too.
    let digestB = '';
    await waitWithDetail(
      async () => {
        digestB = await digestOf(b);
        return digestB === digestA;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "B's digest to equal A's" },
      () => `${digestB} vs ${digestA}`,
    );
    const digestMs = performance.now() - started;
    const memory = memoryOf(b.pid);
    const peakSampled = Math.max(0, ...samples);

    console.log(
      `B caught up with ${commitCount} commits in ${(caughtUpMs / 1000).toFixed(1)} s from its start ` +
        `(${Math.round(commitCount / (caughtUpMs / 1000))} commits/s; digests equal after ` +
        `${(digestMs / 1000).toFixed(1)} s); B's memory: VmHWM ${mib(memory.hwm)}, ` +
        `largest sampled VmRSS ${mib(peakSampled)} over ${samples.length} samples, now ${mib(memory.rss)}`,
    );
    const counters = (
      await getJson<{ counters: { syncBatchesReceived: number; commitsPulled: number; invalid: number } }>(
        b,
        '/v1/cluster/status',
        auth,
        answerTimeoutMs,
      )
    ).counters;
    console.log(
      `B's counters: ${counters.syncBatchesReceived} sync batches, ${counters.commitsPulled} commits pulled, ` +
        `${counters.invalid} invalid`,
    );
    expect(counters.invalid).toBe(0);
    expect(counters.commitsPulled).toBeGreaterThanOrEqual(commitCount);
    expect(memory.hwm).toBeLessThan(peakRssBytesMax);

    // Spot checks: values from the whole range of the log read back from B byte for byte.
    for (let i = 0; i < spotChecks; i++) {
      const n = Math.floor((i * (commitCount - 1)) / (spotChecks - 1));
      const response = await request(`${b.url}/v1/buckets/${bucket}/keys/${seededKey(n)}`, { headers: auth });
      const body = Buffer.from(await response.body.arrayBuffer());
      expect(response.statusCode, seededKey(n)).toBe(200);
      expect(body.equals(seededValue(n)), seededKey(n)).toBe(true);
      expect(response.headers['content-type'], seededKey(n)).toBe(seededContentType(n));
    }
  });
});
