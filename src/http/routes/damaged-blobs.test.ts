import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, postJson } from '../../../test/support/api.js';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A copy of a blob damaged on disk (a flipped byte, a cut, a removed file, altered bytes in the
 * database) is never served: the read fails with 503 STRATA_DAMAGED, the copy is set aside, and an
 * upload of the bytes brings it back.
 */
describe('damaged blob copies', () => {
  let node: TempNode;
  let base: string;

  beforeAll(async () => {
    node = tempNode();
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    const address = node.app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await node.dispose();
  });

  const blobPath = (hash: string) => join(node.dataDir, 'blobs', hash.slice(0, 2), hash);

  async function put(key: string, bytes: Buffer): Promise<string> {
    const response = await fetch(`${base}/v1/buckets/damage/keys/${key}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { version: string }).version;
  }

  function scribble(path: string, at: number): void {
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, Buffer.from([0x5a, 0xa5, 0x5a]), 0, 3, at);
    } finally {
      closeSync(fd);
    }
  }

  async function missing(hashes: string[]): Promise<string[]> {
    const response = await postJson(node, '/v1/blobs/missing', { hashes }, auth);
    expect(response.statusCode).toBe(200);
    return response.json().missing;
  }

  async function damagedCount(): Promise<number> {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('strata_blobs_damaged_total '));
    return Number(line?.split(' ')[1]);
  }

  it('cuts a streamed response short, then answers 503 until an upload repairs the copy', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const hash = sha256(bytes);
    await put('video', bytes);
    const before = await damagedCount();
    scribble(blobPath(hash), 2 * 1024 * 1024);

    // The size is right, so the response starts; it never completes with the wrong bytes.
    const response = await fetch(`${base}/v1/buckets/damage/keys/video`, { headers: auth });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(bytes.length));
    await expect(response.arrayBuffer()).rejects.toThrow();

    const again = await node.app.inject({ url: '/v1/buckets/damage/keys/video', headers: auth });
    expectError(again, 503, 'STRATA_DAMAGED');
    expect(again.json().error.message).toContain(`PUT /v1/blobs/${hash}`);
    expect(await damagedCount()).toBe(before + 1);
    expect(readdirSync(join(node.dataDir, 'blobs', '.damaged'))).toContain(
      readdirSync(join(node.dataDir, 'blobs', '.damaged')).find((name) => name.startsWith(hash)),
    );
    // A publish asks which blobs to upload: the damaged one is among them.
    expect(await missing([hash])).toEqual([hash]);
    // And a new put that names it by hash is told to upload it.
    const named = await postJson(
      node,
      '/v1/commits',
      { ops: [{ kind: 'put', bucket: 'damage', key: 'copy', blob: hash }] },
      auth,
    );
    expectError(named, 422, 'STRATA_UNKNOWN_BLOB');

    // Wrong bytes do not repair it.
    const wrong = await fetch(`${base}/v1/blobs/${hash}`, {
      method: 'PUT',
      headers: auth,
      body: randomBytes(10),
    });
    expect(wrong.status).toBe(400);
    const repair = await fetch(`${base}/v1/blobs/${hash}`, { method: 'PUT', headers: auth, body: bytes });
    expect(repair.status).toBe(200);
    expect(await repair.json()).toEqual({ blob: hash, created: false, repaired: true });

    const served = await fetch(`${base}/v1/buckets/damage/keys/video`, { headers: auth });
    expect(Buffer.from(await served.arrayBuffer()).equals(bytes)).toBe(true);
    expect(await missing([hash])).toEqual([]);
    // Held again: a second upload is only hashed.
    const second = await fetch(`${base}/v1/blobs/${hash}`, { method: 'PUT', headers: auth, body: bytes });
    expect(await second.json()).toEqual({ blob: hash, created: false });
  });

  it('answers 503 for a removed file, and a put of the same bytes repairs it', async () => {
    const bytes = randomBytes(200 * 1024);
    const hash = sha256(bytes);
    const version = await put('photo', bytes);
    // Read once, so that the copy in memory is dropped with the file.
    expect((await node.app.inject({ url: '/v1/buckets/damage/keys/photo', headers: auth })).statusCode).toBe(
      200,
    );
    rmSync(blobPath(hash));
    // Cached reads are not affected by the file going; a fresh node would see it missing.
    const blob = await node.app.inject({ url: `/v1/blobs/${hash}`, headers: auth });
    expect(blob.rawPayload.equals(bytes)).toBe(true);
    expect(await missing([hash])).toEqual([hash]);

    await put('photo-again', bytes);
    expect(existsSync(blobPath(hash))).toBe(true);
    expect(await missing([hash])).toEqual([]);
    const old = await node.app.inject({
      url: `/v1/buckets/damage/keys/photo?version=${version}`,
      headers: auth,
    });
    expect(old.statusCode).toBe(200);
    expect(old.rawPayload.equals(bytes)).toBe(true);
  });

  it('answers 503 for a large file cut short, even once its path is cached', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const hash = sha256(bytes);
    await put('cut', bytes);
    const head = await node.app.inject({ method: 'HEAD', url: '/v1/buckets/damage/keys/cut', headers: auth });
    expect(head.statusCode).toBe(200);
    closeSync(openSync(blobPath(hash), 'w'));
    const response = await node.app.inject({ url: '/v1/buckets/damage/keys/cut', headers: auth });
    expectError(response, 503, 'STRATA_DAMAGED');
    expect(response.json().error.message).toContain(`holds 0 bytes, not ${bytes.length}`);
    expect(response.json().error.blob).toBe(hash);
  });

  function tamperInline(hash: string, dataDir = node.dataDir): void {
    const other = new Database(join(dataDir, 'strata.db'));
    try {
      other.prepare('UPDATE blobs SET data = ? WHERE hash = ?').run(Buffer.from('tampered'), hash);
    } finally {
      other.close();
    }
  }

  it('answers 503 for altered inline bytes, and a write of the same bytes repairs them', async () => {
    const bytes = Buffer.from('a small value, kept in the database');
    const hash = sha256(bytes);
    await put('note', bytes);
    tamperInline(hash);
    expectError(await node.app.inject({ url: `/v1/blobs/${hash}`, headers: auth }), 503, 'STRATA_DAMAGED');
    expect(await missing([hash])).toEqual([hash]);
    // The node keeps serving everything else.
    expect((await node.app.inject({ url: '/health' })).statusCode).toBe(200);

    await put('note-again', bytes);
    const read = await node.app.inject({ url: '/v1/buckets/damage/keys/note', headers: auth });
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe(bytes.toString());
  });

  it('keeps taking writes over a damaged text version, and search and reindex go on', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'strata-damaged-'));
    const text = { ...auth, 'content-type': 'text/plain' };
    const url = '/v1/buckets/damage/keys/minutes.txt';
    const before = tempNode({ dataDir });
    const first = Buffer.from('alpha draft of the minutes');
    const written = await before.app.inject({ method: 'PUT', url, headers: text, payload: first });
    expect(written.statusCode).toBe(201);
    await before.close();
    tamperInline(sha256(first), dataDir);

    // Restarted, so that no copy is in memory: the next version's diff reads its parent's text,
    // and the damaged parent is left out rather than failing the write.
    const after = tempNode({ dataDir });
    try {
      const next = await after.app.inject({
        method: 'PUT',
        url,
        headers: text,
        payload: 'bravo final minutes',
      });
      expect(next.statusCode).toBe(201);
      const found = await after.app.inject({ url: '/v1/search?q=bravo&bucket=damage', headers: auth });
      expect(found.statusCode).toBe(200);
      expect(found.json().hits.map((hit: { key: string }) => hit.key)).toEqual(['minutes.txt']);
      const reindex = await after.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: auth });
      expect(reindex.statusCode).toBe(200);
      expect(reindex.json().after).toBe(reindex.json().before);
      expectError(
        await after.app.inject({ url: `${url}?version=${written.json().version}`, headers: auth }),
        503,
        'STRATA_DAMAGED',
      );
    } finally {
      await after.dispose();
    }
  });
});
