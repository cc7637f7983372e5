import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, type TempNode, tempNode } from '../../test/support/temp-node.js';
import { overflowLingerMs } from '../http/errors.js';
import { closeGraceMs } from '../node.js';
import { type ApiClient, ApiError, call, callJson, keyPath } from './api-client.js';

/** What a call failed with, as the CLI would print it. */
async function failureOf(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('the call succeeded');
}

describe('requests of the client', () => {
  let node: TempNode;
  let client: ApiClient;
  let port: number;
  const files = mkdtempSync(join(tmpdir(), 'strata-client-'));

  beforeAll(async () => {
    node = tempNode({ limits: { objectBytesMax: 1000 } });
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    port = (node.app.server.address() as AddressInfo).port;
    client = { url: `http://127.0.0.1:${port}`, token: adminToken };
  });
  afterAll(async () => {
    await node.dispose();
    rmSync(files, { recursive: true, force: true });
  });

  async function put(key: string, value: string) {
    return callJson<{ version: string }>(client, keyPath('notes', key), {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: value,
    });
  }

  it('sends . and .. segments of a key as written, so that they never name another key', async () => {
    await put('greeting.txt', 'hello');
    for (const key of ['zz/../greeting.txt', 'x/./greeting.txt', '..', 'x/..']) {
      const refused = await failureOf(put(key, 'clobbered'));
      expect(refused.code, key).toBe('STRATA_INVALID_NAME');
      expect(refused.message).toContain('. or .. segments');
      const read = await failureOf(call(client, keyPath('notes', key)));
      expect(read.code, key).toBe('STRATA_NOT_FOUND');
      const removed = await failureOf(call(client, keyPath('notes', key), { method: 'DELETE' }));
      expect(removed.code, key).toBe('STRATA_NOT_FOUND');
    }
    const response = await call(client, keyPath('notes', 'greeting.txt'));
    expect(await response.body.text()).toBe('hello');
  });

  it('gets the 413 of a file far over the limit every time, not a reset connection', async () => {
    const file = join(files, 'big');
    writeFileSync(file, Buffer.alloc(20_000_000, 7));
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const refused = await failureOf(
        call(client, keyPath('notes', 'big'), {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream', 'content-length': '20000000' },
          body: createReadStream(file),
        }),
      );
      expect(`${refused.code}: ${refused.message}`, `attempt ${attempt}`).toMatch(/^STRATA_TOO_LARGE/);
    }
  });

  it('cuts a connection whose refused body is still coming once the linger is over', async () => {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      [
        'PUT /v1/buckets/notes/keys/endless HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${adminToken}`,
        'Transfer-Encoding: chunked',
        '',
        '',
      ].join('\r\n'),
    );
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
    });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Send until the answer comes, then keep the connection open without a word more.
    const chunk = `${(64 * 1024).toString(16)}\r\n${'x'.repeat(64 * 1024)}\r\n`;
    while (!answer.includes('\r\n\r\n') && !socket.destroyed) {
      if (!socket.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('STRATA_TOO_LARGE');
    // The client sends nothing more and never closes: only the node can end this (else the test
    // runs into its timeout).
    await closed;
  });

  it('keeps a connection whose refused body came in full, for the next request', async () => {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      `PUT /v1/buckets/notes/keys/over HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${adminToken}\r\nContent-Length: 2000\r\n\r\n${'y'.repeat(2000)}`,
    );
    while (!answer.includes('STRATA_TOO_LARGE')) await new Promise((resolve) => setTimeout(resolve, 10));
    // Past the linger: a connection the node meant to cut would be closed by now.
    await new Promise((resolve) => setTimeout(resolve, overflowLingerMs + 500));
    socket.end('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await closed;
    expect(answer.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
  });
});

describe('stopping a node', () => {
  it('does not wait for ever on a client that stopped sending mid-body', async () => {
    const node = tempNode();
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = node.app.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `PUT /v1/buckets/notes/keys/stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${adminToken}\r\nContent-Length: 1000\r\n\r\nonly ten b`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await node.dispose();
    // It waited for the connection as long as the grace allows, then cut it (a stop that waited
    // for ever would run into the test's timeout).
    expect(Date.now() - started).toBeGreaterThanOrEqual(closeGraceMs - 100);
    socket.destroy();
  }, 15_000);
});
