import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterAdminToken as adminToken, clusterAuth as auth, clusterKey } from '../support/cluster.js';
import {
  cleanUpProcesses,
  type StrataServer,
  startServer,
  temporaryDirectory,
  waitFor,
} from '../support/process.js';

/**
 * Two real nodes: a 200 MB object replicates as a stream (the receiving node never holds it in
 * memory), a copy damaged on one node's disk is brought again from the other, and a scheduled release switches on the other node at its effective time, with one
 * `release.activated` event for the cluster.
 */
const bigBytes = 200 * 1024 * 1024;
const chunkBytes = 1024 * 1024;
/** Holding the object whole would take its 200 MB on top of the node's ~100 MB. */
const peakRssBytesMax = 240 * 1024 * 1024;

afterAll(cleanUpProcesses);

async function node(name: string, join?: StrataServer): Promise<StrataServer> {
  return startServer({
    dataDir: temporaryDirectory(`strata-${name}-`),
    adminToken,
    extraArguments: ['--node-name', name, '--cluster-key', clusterKey, ...(join ? ['--join', join.url] : [])],
  });
}

async function json<T>(
  url: string,
  init: Parameters<typeof request>[1] = {},
): Promise<{ status: number; body: T }> {
  const response = await request(url, { ...init, headers: { ...auth, ...(init.headers as object) } });
  const text = await response.body.text();
  return { status: response.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
}

async function linked(nodes: StrataServer[]): Promise<void> {
  await waitFor(
    async () => {
      for (const server of nodes) {
        const { body } = await json<{ members: Array<{ state: string }> }>(`${server.url}/v1/cluster/status`);
        if (body.members.filter((member) => member.state === 'alive').length !== nodes.length) return false;
      }
      return true;
    },
    { timeoutMs: 20_000, what: 'every node sees the others alive' },
  );
}

/** Deterministic, distinct chunks (a repeated pattern would still be streamed whole, never deduplicated). */
function chunk(index: number): Buffer {
  const bytes = Buffer.alloc(chunkBytes, index & 0xff);
  bytes.writeUInt32BE(index, 0);
  return bytes;
}

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kilobytes = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kilobytes) * 1024;
}

describe('a cluster of two real nodes', () => {
  it('replicates a 200 MB object as a stream, byte for byte', async () => {
    const a = await node('big-a');
    const b = await node('big-b', a);
    await linked([a, b]);
    const expected = createHash('sha256');
    async function* body() {
      for (let index = 0; index < bigBytes / chunkBytes; index++) {
        const bytes = chunk(index);
        expected.update(bytes);
        yield bytes;
      }
    }
    const started = performance.now();
    const put = await request(`${a.url}/v1/buckets/media/keys/big.bin`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(bigBytes) },
      body: Readable.from(body()),
    });
    expect(put.statusCode).toBe(201);
    const { version } = (await put.body.json()) as { version: string };
    const hash = expected.digest('hex');
    await waitFor(
      async () => {
        const head = await request(`${b.url}/v1/buckets/media/keys/big.bin?version=${version}`, {
          method: 'HEAD',
          headers: auth,
        });
        await head.body.dump();
        return head.statusCode === 200;
      },
      { timeoutMs: 120_000, what: 'the 200 MB object is on the second node', intervalMs: 200 },
    );
    console.log(`200 MB replicated ${Math.round(performance.now() - started)} ms after the PUT began`);
    const read = await request(`${b.url}/v1/buckets/media/keys/big.bin`, { headers: auth });
    const got = createHash('sha256');
    let size = 0;
    for await (const piece of read.body) {
      got.update(piece as Buffer);
      size += (piece as Buffer).length;
    }
    expect(size).toBe(bigBytes);
    expect(got.digest('hex')).toBe(hash);
    const peak = peakRss(b.pid);
    console.log(`peak RSS of the receiving node: ${Math.round(peak / 1024 / 1024)} MB`);
    expect(peak).toBeLessThan(peakRssBytesMax);
    const status = await json<{ counters: { blobsPulled: number } }>(`${b.url}/v1/cluster/status`);
    expect(status.body.counters.blobsPulled).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('brings a damaged copy again from a peer: 503 until then, the right bytes after', async () => {
    const a = await node('heal-a');
    const b = await node('heal-b', a);
    await linked([a, b]);
    const bytes = Buffer.concat([chunk(1), chunk(2)]).subarray(0, 300 * 1024);
    const hash = createHash('sha256').update(bytes).digest('hex');
    const put = await request(`${a.url}/v1/buckets/media/keys/clip`, {
      method: 'PUT',
      headers: auth,
      body: bytes,
    });
    expect(put.statusCode).toBe(201);
    await put.body.dump();
    const missingOnB = async () =>
      (
        await json<{ missing: string[] }>(`${b.url}/v1/blobs/missing`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ hashes: [hash] }),
        })
      ).body.missing;
    await waitFor(async () => (await missingOnB()).length === 0, {
      timeoutMs: 20_000,
      what: 'the blob on b',
    });

    // A byte flipped on b's disk, before b ever read the file.
    const path = `${b.dataDir}/blobs/${hash.slice(0, 2)}/${hash}`;
    const damaged = Buffer.from(readFileSync(path));
    damaged[1000] = (damaged[1000] ?? 0) ^ 0xff;
    writeFileSync(path, damaged);
    const first = await json<{ error: { code: string } }>(`${b.url}/v1/buckets/media/keys/clip`);
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('STRATA_DAMAGED');

    await waitFor(
      async () => {
        const response = await request(`${b.url}/v1/buckets/media/keys/clip`, { headers: auth });
        const body = Buffer.from(await response.body.arrayBuffer());
        return response.statusCode === 200 && body.equals(bytes);
      },
      { timeoutMs: 20_000, what: 'b serves the bytes again' },
    );
    expect(await missingOnB()).toEqual([]);
    expect(b.stdout()).toContain('a blob copy is damaged');
    expect(b.stdout()).toContain('a damaged blob was brought again from a peer');
  });

  it('switches a scheduled release on every node at its effective time, with one activation event', async () => {
    const a = await node('rel-a');
    const b = await node('rel-b', a);
    await linked([a, b]);
    const write = async (text: string) => {
      const response = await json<{ version: string }>(`${a.url}/v1/buckets/site/keys/index.html`, {
        method: 'PUT',
        headers: { 'content-type': 'text/html' },
        body: text,
      });
      expect(response.status).toBe(201);
      return response.body.version;
    };
    const first = await write('<p>one</p>');
    const release = async (version: string, effectiveAt?: number) => {
      const response = await json<{ release: string }>(`${a.url}/v1/apps/site/releases`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ routes: { '/index.html': version }, ...(effectiveAt ? { effectiveAt } : {}) }),
      });
      expect(response.status).toBe(201);
      return response.body.release;
    };
    const r1 = await release(first);
    const second = await write('<p>two</p>');
    const switchAt = Date.now() + 4000;
    const r2 = await release(second, switchAt);
    const page = async (server: StrataServer) => {
      const response = await request(`${server.url}/apps/site/index.html`);
      return {
        release: response.headers['strata-release'],
        text: await response.body.text(),
        at: Date.now(),
      };
    };
    // Before the switch, once replicated, b serves the first release.
    await waitFor(async () => (await json(`${b.url}/v1/apps/site/releases/${r2}`)).status === 200, {
      timeoutMs: 3_000,
      what: 'the scheduled release reached the second node',
    });
    const before = await page(b);
    if (before.at < switchAt) {
      expect(before.release).toBe(r1);
      expect(before.text).toContain('one');
    } else {
      // The machine was too slow to read before the switch; the rest of the test still runs.
      console.warn(`pre-switch check skipped: read ${before.at - switchAt} ms after the effective time`);
    }
    await waitFor(() => Date.now() > switchAt, { timeoutMs: 10_000, what: 'the effective time' });
    for (const server of [a, b]) {
      const after = await page(server);
      expect(after.release).toBe(r2);
      expect(after.text).toContain('two');
    }
    // System buckets are not readable through the keys API; the change feed shows every version.
    const activations = async (server: StrataServer) => {
      const { body } = await json<{ changes: Array<{ bucket: string; key: string }> }>(
        `${server.url}/v1/changes?since=0&limit=1000`,
      );
      return body.changes.filter((change) => change.key === `release.activated/site/${r2}`).length;
    };
    await waitFor(async () => (await activations(a)) > 0 && (await activations(b)) > 0, {
      timeoutMs: 15_000,
      what: 'the activation event on both nodes',
    });
    // Proving an absence, so a wait on the clock: long enough for a second node to have written its
    // own event, had it decided to (it looks every 2 s).
    await waitFor(() => Date.now() > switchAt + 5_000, { timeoutMs: 10_000, what: 'time for a duplicate' });
    for (const server of [a, b]) expect(await activations(server)).toBe(1);
  }, 60_000);
});
