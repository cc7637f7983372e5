import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClusterCounters,
  type ClusterNode,
  type ClusterStatus,
  cleanUpCluster,
  faultCounters,
  memberNamed,
  startCluster,
  waitForConvergence,
  waitWithDetail,
} from '../support/cluster.js';

/**
 * Plumtree over a slow link (DESIGN §5, "Broadcast"), with three real nodes behind fault proxies:
 * E1–E3 is slowed to `slowDelayMs` each way while E1–E2 and E2–E3 stay fast. A commit written on E1
 * must show up on E3 before the slow link could have delivered anything, so it came through E2; the
 * copy or announcement E1 sends over the slow link later is recognised by E3 as already seen, and the
 * duplicates prune the slow link out of the eager tree of E1's commits.
 *
 * The only timing claims are physical ones: nothing can cross the slow link sooner than its delay, and
 * the fast path is compared against that delay, which is far above what a loaded machine needs for a
 * two-hop relay on one host (tens of milliseconds).
 */

/** One way, on both proxies of the pair: the slow path takes at least this long. */
const slowDelayMs = 3_000;
/**
 * The delay is raised in steps: when a delay grows by Δ, the receiving end hears nothing for Δ plus a
 * heartbeat interval, and a link silent for 4 s (linkSilenceMs) is dropped. Over a link this slow the
 * WebSocket handshake (two crossings, 6 s) outlasts the 5 s connect timeout, so a dropped link could
 * never come back: steps of 1.5 s keep every silence near 2 s.
 */
const delaySteps = [1_500, slowDelayMs];
/** Writes on E1 after the first one, to give the tree duplicates to prune on. */
const laterWrites = 4;
/** Bounds of the waits: only a broken cluster runs into them. */
const replicateTimeoutMs = 20_000;
const convergeTimeoutMs = 30_000;
const bucket = 'slow-link';

afterEach(cleanUpCluster);

function slowDown(a: ClusterNode, b: ClusterNode, delayMs: number): void {
  a.proxy?.setRule(b.name, { delayMs });
  b.proxy?.setRule(a.name, { delayMs });
}

/** The round trip `from` measured to `to` on their direct link (smoothed), or undefined. */
async function roundTripMs(from: ClusterNode, to: ClusterNode): Promise<number | undefined> {
  return memberNamed(await from.status(), to.name)?.roundTripMs ?? undefined;
}

/**
 * Waits until both ends of a link have measured a round trip that crossed the new delay both ways,
 * i.e. the delayed bytes flow in both directions and neither end is in a silent gap any more. The
 * status figure is an average (9/10 old, 1/10 new sample), so one sample of 2 × `delayMs` raises it
 * by about a fifth of `delayMs`; a rise of 0.15 × `delayMs` cannot come from one delayed crossing.
 */
async function waitForDelayedRoundTrips(a: ClusterNode, b: ClusterNode, delayMs: number): Promise<void> {
  const baseline = { a: (await roundTripMs(a, b)) ?? 0, b: (await roundTripMs(b, a)) ?? 0 };
  const rise = 0.15 * delayMs;
  let last = '';
  await waitWithDetail(
    async () => {
      const [ab, ba] = await Promise.all([roundTripMs(a, b), roundTripMs(b, a)]);
      last = `${a.name}→${b.name} ${ab} ms (from ${baseline.a}), ${b.name}→${a.name} ${ba} ms (from ${baseline.b})`;
      return (ab ?? 0) > baseline.a + rise && (ba ?? 0) > baseline.b + rise;
    },
    { timeoutMs: replicateTimeoutMs, what: `round trips over the ${delayMs} ms link` },
    () => last,
  );
}

async function countersOf(node: ClusterNode): Promise<ClusterCounters> {
  return (await node.status()).counters;
}

function alreadySeen(counters: ClusterCounters): number {
  return counters.duplicatesReceived + counters.ihaveAlreadySeen;
}

/** Writes on `writer` and waits until `reader` serves that version; returns how long that took. */
async function writeAndWaitVisible(
  writer: ClusterNode,
  reader: ClusterNode,
  key: string,
  body: string,
): Promise<{ version: string; visibleMs: number; startedAt: number }> {
  const startedAt = performance.now();
  const { version } = await writer.put(bucket, key, body);
  await waitWithDetail(
    async () => (await reader.get(bucket, key, { version })).statusCode === 200,
    { timeoutMs: replicateTimeoutMs, what: `${version} visible on ${reader.name}` },
    () => `${reader.name} does not serve ${version}`,
  );
  return { version, visibleMs: Math.round(performance.now() - startedAt), startedAt };
}

describe('a cluster with one slow link', () => {
  it('delivers through the fast path and prunes the slow link to lazy', async () => {
    const startedAt = performance.now();
    const [e1, e2, e3] = (await startCluster({ nodes: ['E1', 'E2', 'E3'], proxied: true })) as [
      ClusterNode,
      ClusterNode,
      ClusterNode,
    ];
    console.log(`three nodes started and linked in ${Math.round(performance.now() - startedAt)} ms`);
    // Three nodes and an overlay degree of 4: a full mesh, so E1–E3 is a direct link.
    const linkedAtStart = memberNamed(await e1.status(), 'E3')?.linked;
    expect(linkedAtStart).toBe(true);
    const idle = await countersOf(e3);
    expect(idle.gossipReceived, 'no broadcast before the first write').toBe(0);

    for (const [index, delayMs] of delaySteps.entries()) {
      slowDown(e1, e3, delayMs);
      // The last step needs no wait: whatever is sent from now on crosses the link at the full delay.
      if (index < delaySteps.length - 1) await waitForDelayedRoundTrips(e1, e3, delayMs);
    }

    // The first write: E3 must have it before the slow link could deliver anything of it.
    const e2Before = await countersOf(e2);
    const e3Before = await countersOf(e3);
    const first = await writeAndWaitVisible(e1, e3, 'first', 'first write on E1');
    const e2After = await countersOf(e2);
    console.log(
      `first commit visible on E3 ${first.visibleMs} ms after the PUT began (slow path ≥ ${slowDelayMs} ms)`,
    );
    expect(first.visibleMs).toBeLessThan(slowDelayMs);
    // …and E2 relayed it: it received the commit and pushed it on.
    expect(e2After.gossipReceived).toBeGreaterThan(e2Before.gossipReceived);
    expect(e2After.messagesSent.gossip ?? 0).toBeGreaterThan(e2Before.messagesSent.gossip ?? 0);

    // E1's own copy (or announcement) then arrives over the slow link, and E3 already has it.
    await waitWithDetail(
      async () => alreadySeen(await countersOf(e3)) > alreadySeen(e3Before),
      { timeoutMs: replicateTimeoutMs, what: 'E3 recognises the copy from E1 as already seen' },
      () => JSON.stringify(e3Before),
    );
    const duplicateMs = Math.round(performance.now() - first.startedAt);
    console.log(`E3 saw E1's copy as a duplicate ${duplicateMs} ms after the PUT began`);
    // A lower bound, so safe on any machine: this proves the delay was really in force on that link.
    expect(duplicateMs).toBeGreaterThanOrEqual(slowDelayMs);

    const laterVisibleMs: number[] = [];
    for (let index = 1; index <= laterWrites; index++) {
      const later = await writeAndWaitVisible(e1, e3, `later-${index}`, `write ${index} on E1`);
      laterVisibleMs.push(later.visibleMs);
    }
    console.log(`later commits visible on E3 after ${laterVisibleMs.join(', ')} ms`);
    for (const visibleMs of laterVisibleMs) expect(visibleMs).toBeLessThan(slowDelayMs);

    // The duplicates pruned the slow link from the tree of E1's commits: lazy on at least one side
    // of it, and someone sent a prune.
    let tree = '';
    await waitWithDetail(
      async () => {
        const statuses = await Promise.all([e1.status(), e2.status(), e3.status()]);
        const [s1, , s3] = statuses;
        const e1Tree = (status: ClusterStatus) => status.trees.find((entry) => entry.origin === e1.id);
        tree = statuses
          .map((status, index) => {
            const roles = e1Tree(status) ?? { eager: status.links.eager, lazy: [] };
            return `E${index + 1}: E1's tree eager ${roles.eager.map(nameOf).join(',')} lazy ${roles.lazy
              .map(nameOf)
              .join(',')}, prunesSent ${status.counters.prunesSent}`;
          })
          .join('; ');
        const pruned = statuses.some((status) => status.counters.prunesSent > 0);
        return pruned && (e1Tree(s1)?.lazy.includes(e3.id) || e1Tree(s3)?.lazy.includes(e1.id)) === true;
      },
      { timeoutMs: replicateTimeoutMs, what: 'the E1–E3 link is pruned to lazy' },
      () => tree,
    );
    console.log(`tree after ${1 + laterWrites} writes: ${tree}`);

    // Every commit E1 wrote also crossed the slow link once, as a copy or an announcement, and E3
    // had each one already by then (from E2).
    let seenOnE3 = 0;
    await waitWithDetail(
      async () => {
        seenOnE3 = alreadySeen(await countersOf(e3)) - alreadySeen(e3Before);
        return seenOnE3 >= 1 + laterWrites;
      },
      { timeoutMs: replicateTimeoutMs, what: 'E3 recognises every commit from E1 as already seen' },
      () => `${seenOnE3} of ${1 + laterWrites}`,
    );
    const e3End = await countersOf(e3);
    expect(e3End.graftsSent, 'E3 never had to pull a commit over the slow link').toBe(0);
    console.log(
      `E3 counters: gossipReceived ${e3End.gossipReceived}, duplicatesReceived ${e3End.duplicatesReceived}, ` +
        `ihaveReceived ${e3End.ihaveReceived}, ihaveAlreadySeen ${e3End.ihaveAlreadySeen}, ` +
        `graftsSent ${e3End.graftsSent}, prunesSent ${e3End.prunesSent}`,
    );

    const convergence = await waitForConvergence([e1, e2, e3], convergeTimeoutMs);
    console.log(`digests equal (${convergence.digest.slice(0, 16)}…) after ${convergence.elapsedMs} ms`);
    // The slow link stayed up throughout (it could not have been re-established at this delay).
    const statuses = await Promise.all([e1.status(), e2.status(), e3.status()]);
    const [s1, , s3] = statuses;
    expect(memberNamed(s1, 'E3')?.linked).toBe(true);
    expect(memberNamed(s3, 'E1')?.linked).toBe(true);
    console.log(
      `measured round trips (smoothed): E1→E3 ${memberNamed(s1, 'E3')?.roundTripMs} ms, ` +
        `E3→E1 ${memberNamed(s3, 'E1')?.roundTripMs} ms, E1→E2 ${memberNamed(s1, 'E2')?.roundTripMs} ms`,
    );
    for (const [index, status] of statuses.entries()) {
      expect(faultCounters(status), `E${index + 1}`).toEqual({
        invalid: 0,
        applyFailed: 0,
        pendingDropped: 0,
        blobPullsFailed: 0,
      });
    }

    function nameOf(id: string): string {
      return [e1, e2, e3].find((node) => node.id === id)?.name ?? id;
    }
  }, 60_000);
});
