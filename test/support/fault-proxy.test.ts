import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { callerFromHead, FaultProxy, scanHead } from './fault-proxy.js';
import { waitFor } from './wait.js';

/**
 * The fault proxy against real sockets on 127.0.0.1. Timing assertions are lower bounds only: a
 * loaded machine may be slow, never fast, so "took at least the delay" is the only safe claim.
 */

/** Generous: only a broken proxy makes a wait run this long. */
const waitMs = 10_000;
/** Timers and performance.now() may disagree by a millisecond or so at each step. */
const timerSlackMs = 5;

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function head(caller?: string): Buffer {
  const callerLine = caller === undefined ? '' : `Strata-Peer-Name: ${caller}\r\n`;
  return Buffer.from(`GET /v1/cluster/link HTTP/1.1\r\nHost: 127.0.0.1\r\n${callerLine}\r\n`, 'latin1');
}

interface EchoServer {
  port: number;
  /** The connections the target has open now: what reached it through the proxy. */
  sockets: Set<Socket>;
}

async function startEcho(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, sockets };
}

async function startProxy(port: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port });
  cleanups.push(() => proxy.close());
  return proxy;
}

class TestClient {
  private readonly chunks: Buffer[] = [];
  private receivedBytes = 0;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.receivedBytes += chunk.length;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static async connect(port: number): Promise<TestClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new TestClient(socket);
    cleanups.push(() => {
      socket.destroy();
    });
    return client;
  }

  get receivedLength(): number {
    return this.receivedBytes;
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Sends `bytes` and resolves once `totalBytes` have come back in all, with the elapsed milliseconds. */
  async exchange(bytes: Buffer, totalBytes: number): Promise<number> {
    const startedMs = performance.now();
    this.socket.write(bytes);
    await waitFor(() => this.receivedBytes >= totalBytes, {
      timeoutMs: waitMs,
      what: `${totalBytes} bytes back`,
      intervalMs: 1,
    });
    return performance.now() - startedMs;
  }
}

describe('scanHead', () => {
  it('waits for the end of an HTTP head, then names the caller case-insensitively', () => {
    expect(scanHead(Buffer.from('GE'))).toEqual({ complete: false });
    expect(scanHead(Buffer.from('GET /v1/cluster/link HT'))).toEqual({ complete: false });
    expect(scanHead(Buffer.from('GET /v1/cluster/link HTTP/1.1\r\nHost: x\r\n'))).toEqual({
      complete: false,
    });
    expect(scanHead(Buffer.from('GET / HTTP/1.1\r\nSTRATA-peer-NAME: \t node-b \r\n\r\nbody'))).toEqual({
      complete: true,
      caller: 'node-b',
    });
    expect(scanHead(head())).toEqual({ complete: true, caller: undefined });
  });

  it('decides at once that bytes which cannot start a request are anonymous', () => {
    expect(scanHead(Buffer.from([0x16, 0x03, 0x01, 0x02]))).toEqual({ complete: true, caller: undefined });
    expect(scanHead(Buffer.from('hello world\r\n'))).toEqual({ complete: true, caller: undefined });
    expect(scanHead(Buffer.from('strata-peer-name: a\r\n\r\n'))).toEqual({
      complete: true,
      caller: undefined,
    });
  });

  it('gives up waiting at 16 KiB, reading only the complete lines', () => {
    const long = `GET / HTTP/1.1\r\nstrata-peer-name: a\r\nx-padding: ${'p'.repeat(17_000)}`;
    expect(scanHead(Buffer.from(long))).toEqual({ complete: true, caller: 'a' });
    expect(callerFromHead(Buffer.from('GET / HTTP/1.1\r\nstrata-peer-na'))).toBeUndefined();
  });
});

describe('FaultProxy', () => {
  it('forwards bytes both ways untouched when no rule is set', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    const client = await TestClient.connect(proxy.port);
    const sent = Buffer.concat([head('node-a'), randomBytes(256 * 1024)]);
    for (let offset = 0; offset < sent.length; offset += 10_000) {
      client.socket.write(sent.subarray(offset, offset + 10_000));
    }
    await waitFor(() => client.receivedLength >= sent.length, { timeoutMs: waitMs, what: 'the echo' });
    expect(client.received().equals(sent)).toBe(true);
    expect(proxy.stats()).toEqual({ connections: 1, bytesForwarded: 2 * sent.length, bytesHeld: 0 });
  });

  it('carries a real HTTP exchange, the caller header included', async () => {
    const seenCallers: (string | string[] | undefined)[] = [];
    const server = createHttpServer((request, response) => {
      seenCallers.push(request.headers['strata-peer-name']);
      response.end('pulled');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const proxy = await startProxy((server.address() as AddressInfo).port);
    proxy.setRule('node-a', { delayMs: 50 });
    const startedMs = performance.now();
    const body = await new Promise<string>((resolve, reject) => {
      const outgoing = httpRequest(`${proxy.url}/v1/pull`, {
        agent: false,
        headers: { 'strata-peer-name': 'node-a' },
      });
      outgoing.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => {
          text += part;
        });
        response.on('end', () => resolve(text));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
    expect(body).toBe('pulled');
    expect(seenCallers).toEqual(['node-a']);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(2 * 50 - timerSlackMs);
  });

  it('delays every chunk both ways, in order, on new and on open connections', async () => {
    const delayMs = 150;
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.setRule('slow', { delayMs });
    const client = await TestClient.connect(proxy.port);
    const first = head('slow');
    expect(await client.exchange(first, first.length)).toBeGreaterThanOrEqual(2 * delayMs - timerSlackMs);

    const later = await TestClient.connect(proxy.port);
    const laterHead = head('later');
    await later.exchange(laterHead, laterHead.length);
    proxy.setRule('later', { delayMs });
    const ping = Buffer.from('ping');
    expect(await later.exchange(ping, laterHead.length + ping.length)).toBeGreaterThanOrEqual(
      2 * delayMs - timerSlackMs,
    );

    const pieces = Array.from({ length: 50 }, (_, index) => Buffer.from(`piece ${index};`));
    for (const piece of pieces) client.socket.write(piece);
    const expected = Buffer.concat([first, ...pieces]);
    await waitFor(() => client.receivedLength >= expected.length, { timeoutMs: waitMs, what: 'all pieces' });
    expect(client.received().equals(expected)).toBe(true);
  });

  it('applies a rule to the named caller only', async () => {
    const delayMs = 200;
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.setRule('slow', { delayMs });
    const slow = await TestClient.connect(proxy.port);
    const fast = await TestClient.connect(proxy.port);
    const slowHead = head('slow');
    const fastHead = head('fast');
    const [slowMs] = await Promise.all([
      slow.exchange(slowHead, slowHead.length),
      fast.exchange(fastHead, fastHead.length),
    ]);
    expect(slowMs).toBeGreaterThanOrEqual(2 * delayMs - timerSlackMs);
    expect(fast.received().equals(fastHead)).toBe(true);
  });

  it('holds a blocked caller’s new connections unanswered while others get through, and heal resets them', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.block(['node-b']);
    const blocked = await TestClient.connect(proxy.port);
    const blockedHead = head('node-b');
    blocked.socket.write(blockedHead);
    const other = await TestClient.connect(proxy.port);
    const otherHead = head('node-c');
    await other.exchange(otherHead, otherHead.length);
    await waitFor(() => proxy.stats().bytesHeld >= blockedHead.length, {
      timeoutMs: waitMs,
      what: 'the blocked head to be held',
    });
    expect(blocked.receivedLength).toBe(0);
    expect(blocked.closed).toBe(false);
    expect(echo.sockets.size).toBe(1);

    proxy.heal(['node-b']);
    await waitFor(() => blocked.closed, { timeoutMs: waitMs, what: 'heal to reset the stalled connection' });
    const again = await TestClient.connect(proxy.port);
    await again.exchange(blockedHead, blockedHead.length);
    expect(again.received().equals(blockedHead)).toBe(true);
    expect(other.closed).toBe(false);
  });

  it('silences an open connection when its caller is blocked, then heal resets both of its sides', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await TestClient.connect(proxy.port);
    const first = head('node-b');
    await client.exchange(first, first.length);
    proxy.setRule('node-b', { delayMs: 20 });
    proxy.block(['node-b']);
    client.socket.write('are you there?');
    await waitFor(() => proxy.stats().bytesHeld >= 'are you there?'.length, {
      timeoutMs: waitMs,
      what: 'the bytes to be held',
    });
    const bystander = await TestClient.connect(proxy.port);
    await bystander.exchange(head(), head().length);
    expect(client.receivedLength).toBe(first.length);
    expect(echo.sockets.size).toBe(2);

    proxy.heal();
    await waitFor(() => client.closed && echo.sockets.size === 1, {
      timeoutMs: waitMs,
      what: 'both sides of the stalled connection to be reset',
    });
    const again = await TestClient.connect(proxy.port);
    expect(await again.exchange(first, first.length)).toBeGreaterThanOrEqual(2 * 20 - timerSlackMs);
  });

  it('limits throughput to bytesPerSecond, on top of the delay', async () => {
    const bytesPerSecond = 4_000;
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.setRule('thin', { bytesPerSecond });
    const thin = await TestClient.connect(proxy.port);
    const sent = Buffer.concat([head('thin'), randomBytes(2_000)]);
    const thinMs = await thin.exchange(sent, sent.length);
    expect(thinMs).toBeGreaterThanOrEqual(0.9 * ((sent.length * 1_000) / bytesPerSecond));
    expect(thin.received().equals(sent)).toBe(true);

    const delayMs = 100;
    proxy.setRule('thin-and-far', { bytesPerSecond, delayMs });
    const far = await TestClient.connect(proxy.port);
    const farSent = Buffer.concat([head('thin-and-far'), randomBytes(2_000)]);
    const farMs = await far.exchange(farSent, farSent.length);
    expect(farMs).toBeGreaterThanOrEqual(0.9 * ((farSent.length * 1_000) / bytesPerSecond + 2 * delayMs));
  });

  it('passes bytes that are not HTTP through as an anonymous caller, under the * rule only', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.setRule('node-a', { blocked: true });
    const garbage = Buffer.concat([Buffer.from([0x00, 0xff, 0x16]), randomBytes(4_000)]);
    const client = await TestClient.connect(proxy.port);
    await client.exchange(garbage, garbage.length);
    expect(client.received().equals(garbage)).toBe(true);

    const delayMs = 100;
    proxy.setRule('*', { delayMs });
    const anonymous = await TestClient.connect(proxy.port);
    const plain = head();
    expect(await anonymous.exchange(plain, plain.length)).toBeGreaterThanOrEqual(2 * delayMs - timerSlackMs);
    expect(proxy.stats().bytesHeld).toBe(0);
  });

  it('destroys every connection on close', async () => {
    const echo = await startEcho();
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: echo.port });
    const client = await TestClient.connect(proxy.port);
    const first = head('node-a');
    await client.exchange(first, first.length);
    const silent = await TestClient.connect(proxy.port);
    await proxy.close();
    await waitFor(() => client.closed && silent.closed && echo.sockets.size === 0, {
      timeoutMs: waitMs,
      what: 'every socket to close',
    });
    expect(proxy.stats().connections).toBe(0);
    await proxy.close();
  });

  it('rejects rules that make no sense', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    expect(() => proxy.setRule('a', { delayMs: -1 })).toThrow(RangeError);
    expect(() => proxy.setRule('a', { bytesPerSecond: 0 })).toThrow(RangeError);
  });
});
