import { cpSync, rmSync } from 'node:fs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterAuth as auth, cleanUpCluster, startCluster, startClusterNode } from '../support/cluster.js';
import { temporaryDirectory, waitFor } from '../support/process.js';

/**
 * A node's life in a cluster beyond crashes (cluster-crash.test.ts):
 * - `strata cluster leave` under writes: every write the leaving node acknowledges must reach the
 *   node that stays, since the leaving node's data directory may be deleted once it has gone;
 *   writes that come after the leave began are refused (503), never acknowledged and stranded.
 * - A node restarted on an old copy of its data directory (a backup) must not acknowledge writes
 *   its peers would refuse as forks of the history they hold.
 */

const bucket = 'leaving';
const writers = 4;

describe('a node leaving its cluster under writes', () => {
  afterEach(cleanUpCluster);

  it('hands on every write it acknowledged, and refuses the ones after', { timeout: 90_000 }, async () => {
    const [stays, leaves] = await startCluster({ nodes: ['STAYS', 'LEAVES'], proxied: false });
    if (!stays || !leaves) throw new Error('two nodes expected');
    const acknowledged: Array<{ key: string; version: string; body: string }> = [];
    const refused: string[] = [];
    let leaving = false;
    let stop = false;
    let sequence = 0;
    const writer = async () => {
      while (!stop) {
        const key = `k${sequence++}`;
        const body = `value of ${key}`;
        let answer: { statusCode: number; text: string };
        try {
          const response = await request(`${leaves.url}/v1/buckets/${bucket}/keys/${key}`, {
            method: 'PUT',
            headers: { ...auth, 'content-type': 'text/plain' },
            body,
          });
          answer = { statusCode: response.statusCode, text: await response.body.text() };
        } catch {
          // The node stopped under the request: nothing was acknowledged.
          break;
        }
        if (answer.statusCode === 201) {
          acknowledged.push({ key, body, version: (JSON.parse(answer.text) as { version: string }).version });
        } else {
          expect(answer.statusCode, answer.text).toBe(503);
          expect(answer.text).toContain('leaving its cluster');
          expect(leaving).toBe(true);
          refused.push(key);
        }
      }
    };
    // A commit of the node that stays, so that the one leaving holds another node's commits too.
    await stays.put(bucket, 'from-the-node-that-stays', 'x');
    const running = Array.from({ length: writers }, writer);
    await waitFor(() => acknowledged.length >= 100, {
      timeoutMs: 30_000,
      what: '100 writes before the leave',
    });
    leaving = true;
    const left = await leaves.request('POST', '/v1/cluster/leave');
    expect(left.statusCode, left.body.toString()).toBe(202);
    const answer = JSON.parse(left.body.toString()) as { left: boolean; unreplicated: number };
    expect(answer).toMatchObject({ left: true, unreplicated: 0 });
    // Writes go on until the node has stopped.
    await waitFor(() => !leaves.running, { timeoutMs: 15_000, what: 'the node that left to stop' });
    stop = true;
    await Promise.all(running);

    // Every acknowledged write is on the node that stays, without the one that left.
    const missing: string[] = [];
    for (const write of acknowledged) {
      const read = await stays.get(bucket, write.key);
      if (read.statusCode !== 200 || read.body.toString() !== write.body) missing.push(write.key);
    }
    expect(missing, `${missing.length} of ${acknowledged.length} acknowledged writes missing`).toEqual([]);
    console.log(
      `leave under ${writers} writers: ${acknowledged.length} writes acknowledged, all on the node that stays; ` +
        `${refused.length} refused with 503 while it left`,
    );

    // Started again without --join, no peer dials a node that left: it says how to rejoin.
    const again = await startClusterNode({ name: 'LEFT-AGAIN', dataDir: leaves.dataDir, proxied: false });
    await waitFor(() => again.stdout().includes('start it with --join URL to rejoin'), {
      timeoutMs: 30_000,
      what: 'the warning of a node alone after leaving',
    });
  });
});

describe('a node leaving when its peer is gone', () => {
  afterEach(cleanUpCluster);

  it('counts as unreplicated only the commits the peer was never known to hold', {
    timeout: 90_000,
  }, async () => {
    const [peer, leaves] = await startCluster({ nodes: ['PEER', 'LEAVER'], proxied: false });
    if (!peer || !leaves) throw new Error('two nodes expected');
    for (let index = 0; index < 5; index += 1) await leaves.put(bucket, `held-${index}`, 'x');
    await waitFor(async () => (await peer.get(bucket, 'held-4')).statusCode === 200, {
      timeoutMs: 20_000,
      what: 'the peer to hold the first writes',
    });
    // The peer's revision, as gossiped, reaches the leaving node before the peer dies.
    await waitFor(
      async () => {
        const member = (await leaves.status()).members.find((row) => row.id === peer.id);
        return (member?.revision[leaves.id] ?? 0) >= 5;
      },
      { timeoutMs: 30_000, what: 'the leaving node to learn that the peer holds its first writes' },
    );
    await peer.kill9();
    for (let index = 0; index < 3; index += 1) await leaves.put(bucket, `alone-${index}`, 'x');
    const left = await leaves.request('POST', '/v1/cluster/leave');
    expect(left.statusCode, left.body.toString()).toBe(202);
    expect(JSON.parse(left.body.toString())).toMatchObject({ left: true, unreplicated: 3 });
  });
});

describe('a node restarted on a backup of its data directory', () => {
  afterEach(cleanUpCluster);

  it('takes no write its peers would refuse, and says why', { timeout: 90_000 }, async () => {
    const [seed, restored] = await startCluster({ nodes: ['SEED', 'RESTORED'], proxied: false });
    if (!seed || !restored) throw new Error('two nodes expected');
    await restored.put(bucket, 'before-backup', 'one');
    await restored.stop();
    const backup = temporaryDirectory('strata-backup-');
    cpSync(restored.dataDir, backup, { recursive: true });
    await restored.restart();
    const later = ['after-backup-0', 'after-backup-1', 'after-backup-2'];
    for (const key of later) await restored.put(bucket, key, 'two');
    await waitFor(async () => (await seed.get(bucket, 'after-backup-2')).statusCode === 200, {
      timeoutMs: 20_000,
      what: 'the writes after the backup to reach the seed',
    });
    await restored.stop();
    rmSync(restored.dataDir, { recursive: true, force: true });
    cpSync(backup, restored.dataDir, { recursive: true });
    await restored.restart();

    // Once it hears from the seed, it refuses writes instead of forking its own history.
    let refused: { statusCode: number; body: Buffer } | undefined;
    await waitFor(
      async () => {
        refused = await restored.request('PUT', `/v1/buckets/${bucket}/keys/after-restore`, 'three');
        return refused.statusCode === 503;
      },
      { timeoutMs: 30_000, what: 'the restored node to refuse writes' },
    );
    expect(refused?.body.toString()).toContain('older than the node it belonged to');
    expect(restored.stdout()).toContain('older than the node it belonged to');
    // Nothing acknowledged was lost: the seed holds every write, and reads on the restored node go on.
    for (const key of later) expect((await seed.get(bucket, key)).statusCode, key).toBe(200);
    expect((await restored.get(bucket, 'before-backup')).statusCode).toBe(200);
  });
});

describe('two nodes started with one --node-name', () => {
  afterEach(cleanUpCluster);

  it('both say so in their logs, naming both ids', { timeout: 60_000 }, async () => {
    const twins = await startCluster({ nodes: ['TWIN', 'TWIN'], proxied: false, membershipTimeoutMs: 0 });
    for (const node of twins) {
      await waitFor(() => node.stdout().includes('share the node name TWIN'), {
        timeoutMs: 20_000,
        what: 'a warning that two members share a name',
      });
    }
    const [first, second] = twins.map((node) =>
      JSON.parse(
        node
          .stdout()
          .split('\n')
          .find((line) => line.includes('share the node name')) as string,
      ),
    );
    expect(first.member).toBe(second.twin);
    expect(second.member).toBe(first.twin);
    expect(first.member).not.toBe(first.twin);
  });
});
