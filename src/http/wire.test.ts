import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { adminToken, auth, type TempNode, tempNode } from '../../test/support/temp-node.js';

/**
 * Requests as bytes on a real socket: what app.inject() cannot send (a request line in absolute
 * form, a malformed Content-Length, no Host) reaches Node's parser and the router as sent.
 */
describe('requests on the wire', () => {
  let node: TempNode;
  let port: number;

  beforeAll(async () => {
    node = tempNode();
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    port = (node.app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await node.dispose();
  });

  interface Answer {
    status: number;
    headers: Record<string, string>;
    body: string;
  }

  /** Sends `head` (lines joined by CRLF) and `body`, and reads the answer until the server closes. */
  function send(head: string[], body = ''): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(`${head.join('\r\n')}\r\n\r\n${body}`));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const split = text.indexOf('\r\n\r\n');
        const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4) });
      });
    });
  }

  const host = 'Host: 127.0.0.1';
  const bearer = `Authorization: Bearer ${adminToken}`;

  function expectStrataError(answer: Answer, status: number, code: string): string {
    expect(answer.status, answer.body).toBe(status);
    const parsed = JSON.parse(answer.body) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe(code);
    return parsed.error.message;
  }

  async function read(bucket: string, key: string) {
    return node.app.inject({ url: `/v1/buckets/${bucket}/keys/${key}`, headers: auth });
  }

  it('writes to the key a request line in absolute form names', async () => {
    const put = await send(
      [
        `PUT http://127.0.0.1:${port}/v1/buckets/wire/keys/a%2Fb HTTP/1.1`,
        host,
        bearer,
        'Content-Length: 5',
        'Connection: close',
      ],
      'bytes',
    );
    expect(put.status, put.body).toBe(201);
    expect((await read('wire', 'a%2Fb')).body).toBe('bytes');
    const listed = await node.app.inject({ url: '/v1/buckets/wire/keys', headers: auth });
    expect((listed.json() as { keys: Array<{ key: string }> }).keys.map((k) => k.key)).toEqual(['a/b']);
    const got = await send([
      `GET http://127.0.0.1:${port}/v1/buckets/wire/keys/a%2Fb HTTP/1.1`,
      host,
      bearer,
      'Connection: close',
    ]);
    expect(got.status).toBe(200);
    expect(got.body).toBe('bytes');
  });

  it('answers a conditional HEAD with 304 and the length a 200 would have, a GET with none', async () => {
    const put = await send(
      ['PUT /v1/buckets/wire/keys/cached HTTP/1.1', host, bearer, 'Content-Length: 11', 'Connection: close'],
      'hello world',
    );
    expect(put.status, put.body).toBe(201);
    const etag = put.headers.etag as string;
    const asked = (method: string) =>
      send([
        `${method} /v1/buckets/wire/keys/cached HTTP/1.1`,
        host,
        bearer,
        `If-None-Match: ${etag}`,
        'Connection: close',
      ]);
    const head = await asked('HEAD');
    expect(head.status).toBe(304);
    expect(head.headers['content-length']).toBe('11');
    expect(head.headers.etag).toBe(etag);
    const get = await asked('GET');
    expect(get.status).toBe(304);
    expect(get.headers['content-length']).toBeUndefined();
    expect(get.body).toBe('');
  });

  it.each([
    ['a Content-Length that is not a number', ['Content-Length: five'], 'x'],
    ['two different Content-Lengths', ['Content-Length: 1', 'Content-Length: 2'], 'xx'],
    [
      'Content-Length and chunked together',
      ['Content-Length: 1', 'Transfer-Encoding: chunked'],
      '1\r\nx\r\n0\r\n\r\n',
    ],
    ['a header name with a space', ['Bad Header: 1', 'Content-Length: 1'], 'x'],
    ['a header value with a control character', ['X-Note: a\u0001b', 'Content-Length: 1'], 'x'],
  ])('refuses %s with a Strata 400, writing nothing', async (_why, lines, body) => {
    const answer = await send(['PUT /v1/buckets/wire/keys/refused HTTP/1.1', host, bearer, ...lines], body);
    const message = expectStrataError(answer, 400, 'STRATA_BAD_REQUEST');
    expect(message).toContain('not valid HTTP/1.1');
    expect(answer.headers.connection).toBe('close');
    expect((await read('wire', 'refused')).statusCode).toBe(404);
  });

  it('answers a write before refusing garbage that follows it on the connection', async () => {
    // A Content-Length shorter than the body: the rest is read as the next request.
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `PUT /v1/buckets/wire/keys/short HTTP/1.1\r\n${host}\r\n${bearer}\r\nContent-Length: 5\r\n\r\n` +
        'hello world, this is the full body',
    );
    await new Promise((resolve) => socket.once('close', resolve));
    const text = Buffer.concat(received).toString('utf8');
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1]);
    expect(statuses, text).toEqual(['201', '400']);
    expect(text).toContain('STRATA_BAD_REQUEST');
    expect((await read('wire', 'short')).body).toBe('hello');
  });

  it.each([
    ['a key', '/v1/buckets/wire/keys/huge'],
    ['a blob', `/v1/blobs/${'ab'.repeat(32)}`],
  ])(
    'refuses %s declared over --max-object-bytes at once, without waiting for the body',
    async (_what, path) => {
      // The body never comes: only an answer from the headers alone ends this.
      const answer = await send([`PUT ${path} HTTP/1.1`, host, bearer, 'Content-Length: 999999999999']);
      expect(expectStrataError(answer, 413, 'STRATA_TOO_LARGE')).toContain('--max-object-bytes');
    },
  );

  it('refuses headers over 16 KiB with 431 STRATA_HEADERS_TOO_LARGE', async () => {
    const answer = await send(['GET /health HTTP/1.1', host, `X-Pad: ${'p'.repeat(20 * 1024)}`]);
    expectStrataError(answer, 431, 'STRATA_HEADERS_TOO_LARGE');
  });

  it('counts the requests the parser refuses in the request metrics', async () => {
    const counted = async (status: number) => {
      const text = (await node.app.inject({ url: '/metrics', headers: auth })).body;
      const line = new RegExp(
        `^strata_http_requests_total\\{method="\\(unparsed\\)",route="\\(unparsed\\)",status="${status}"\\} (\\d+)$`,
        'm',
      ).exec(text);
      return Number(line?.[1] ?? 0);
    };
    const [before400, before431] = [await counted(400), await counted(431)];
    expectStrataError(await send(['BREW /coffee HTTP/1.1', host]), 400, 'STRATA_BAD_REQUEST');
    expectStrataError(
      await send(['GET /health HTTP/1.1', host, `X-Pad: ${'p'.repeat(20 * 1024)}`]),
      431,
      'STRATA_HEADERS_TOO_LARGE',
    );
    expect(await counted(400)).toBe(before400 + 1);
    expect(await counted(431)).toBe(before431 + 1);
  });

  it('refuses an HTTP/1.1 request without Host in Strata form, and takes HTTP/1.0 without it', async () => {
    const answer = await send(['GET /health HTTP/1.1', 'Connection: close']);
    expect(expectStrataError(answer, 400, 'STRATA_BAD_REQUEST')).toContain('Host');
    const old = await send(['GET /health HTTP/1.0']);
    expect(old.status, old.body).toBe(200);
  });

  it('answers a plain GET of the peer link with a Strata error that says it is a WebSocket', async () => {
    const answer = await send(['GET /v1/cluster/link HTTP/1.1', host, 'Connection: close']);
    expect(expectStrataError(answer, 400, 'STRATA_BAD_REQUEST')).toContain('WebSocket');
  });

  it('refuses a peer link before upgrading when the node has no cluster key', async () => {
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/cluster/link`);
      socket.on('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString('utf8');
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      socket.on('open', () => reject(new Error('the link was upgraded')));
    });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error.code).toBe('STRATA_FORBIDDEN');
  });

  it('answers an unknown Expect, a 100-continue for a body over every limit, and CONNECT in Strata form', async () => {
    const expectation = await send(['GET /health HTTP/1.1', host, 'Expect: something-else']);
    expectStrataError(expectation, 417, 'STRATA_EXPECTATION_FAILED');
    // The refusal comes at once: no 100 Continue invites a body that would be thrown away.
    const huge = await send([
      'PUT /v1/buckets/wire/keys/huge HTTP/1.1',
      host,
      bearer,
      'Content-Length: 999999999999',
      'Expect: 100-continue',
    ]);
    expect(huge.status).toBe(413);
    expectStrataError(huge, 413, 'STRATA_TOO_LARGE');
    // A body within the limits is invited and written.
    const small = await send(
      [
        'PUT /v1/buckets/wire/keys/continued HTTP/1.1',
        host,
        bearer,
        'Content-Length: 5',
        'Expect: 100-continue',
        'Connection: close',
      ],
      'bytes',
    );
    expect(small.status).toBe(100);
    expect((await read('wire', 'continued')).body).toBe('bytes');
    const connect = await send(['CONNECT 127.0.0.1:443 HTTP/1.1', 'Host: 127.0.0.1:443']);
    expect(expectStrataError(connect, 400, 'STRATA_BAD_REQUEST')).toContain('no proxy');
  });

  it('refuses a request that gives Authorization twice, whichever token comes first', async () => {
    // Node keeps the first of two Authorization headers; app.inject() would join them instead.
    for (const pair of [
      [bearer, 'Authorization: Bearer wrong-token'],
      ['Authorization: Bearer wrong-token', bearer],
      [bearer, bearer],
    ]) {
      const answer = await send(['GET /v1/buckets HTTP/1.1', host, ...pair, 'Connection: close']);
      expect(expectStrataError(answer, 400, 'STRATA_BAD_REQUEST')).toBe(
        'the request gives Authorization twice: send one "Bearer <token>"',
      );
    }
    const one = await send(['GET /v1/buckets HTTP/1.1', host, bearer, 'Connection: close']);
    expect(one.status, one.body).toBe(200);
  });

  it('keeps serving after every refusal', async () => {
    const health = await send(['GET /health HTTP/1.1', host, 'Connection: close']);
    expect(health.status).toBe(200);
  });
});
