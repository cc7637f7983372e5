import { Agent, fetch, type Response } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { bearer, createToken, expectError, makePublic, tokenHeaders } from '../../../test/support/api.js';
import { auth, type TempNode, tempNodesPerTest } from '../../../test/support/temp-node.js';
import { waitFor } from '../../../test/support/wait.js';

interface Change {
  cursor: number;
  commit: string;
  bucket: string;
  key: string;
  version: string;
  kind: string;
}
interface Feed {
  changes: Change[];
  last: number;
}

const startNode = tempNodesPerTest();
/**
 * Live streams opened by a test, and the clients that hold their connections: closed before the
 * nodes, since after-each hooks run in reverse order of registration.
 */
const streams: AbortController[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.abort();
  await Promise.all(agents.splice(0).map((agent) => agent.destroy()));
});

async function put(node: TempNode, bucket: string, key: string, value: string): Promise<string> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/${bucket}/keys/${key}`,
    headers: { ...auth, 'content-type': 'text/plain' },
    payload: value,
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

async function feed(node: TempNode, query = '', headers: Record<string, string> = auth): Promise<Feed> {
  const response = await node.app.inject({ url: `/v1/changes${query}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as Feed;
}

/** Rejects if `promise` does not settle within `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads server-sent events from a response body until `done` says it has seen enough. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  done: (events: Change[]) => boolean,
  timeoutMs = 5000,
): Promise<Change[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const events: Change[] = [];
  let buffer = '';
  const pump = async () => {
    while (!done(events)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error('the stream ended');
      buffer += decoder.decode(value, { stream: true });
      let boundary = buffer.indexOf('\n\n');
      while (boundary >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const lines = block.split('\n');
        const data = lines.find((line) => line.startsWith('data: '));
        if (data && lines.includes('event: change')) {
          const change = JSON.parse(data.slice('data: '.length)) as Change;
          expect(lines).toContain(`id: ${change.cursor}`);
          events.push(change);
        }
        boundary = buffer.indexOf('\n\n');
      }
    }
    return events;
  };
  try {
    return await within(pump(), timeoutMs, 'the expected events');
  } finally {
    reader.releaseLock();
  }
}

/** Reads a stream's text until the server ends it. */
async function readToEnd(body: ReadableStream<Uint8Array>, timeoutMs = 5000): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const pump = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  };
  try {
    return await within(pump(), timeoutMs, 'the end of the stream');
  } finally {
    reader.releaseLock();
  }
}

/** The `data` of each `event: error` block of a stream's text. */
function errorEvents(text: string): Array<{ error: { code: string; message: string } }> {
  return text
    .split('\n\n')
    .filter((block) => block.split('\n').includes('event: error'))
    .map((block) =>
      JSON.parse(
        block
          .split('\n')
          .find((line) => line.startsWith('data: '))
          ?.slice(6) ?? '',
      ),
    );
}

async function openStream(
  node: TempNode,
  query = '',
  headers: Record<string, string> = auth,
): Promise<{ response: Promise<Response>; controller: AbortController }> {
  const address = await node.app.listen({ port: 0, host: '127.0.0.1' });
  const controller = new AbortController();
  streams.push(controller);
  const agent = new Agent();
  agents.push(agent);
  const listeners = node.store.listenerCount('durable');
  const response = fetch(`${address}/v1/changes${query}`, {
    headers: { ...headers, accept: 'text/event-stream' },
    signal: controller.signal,
    dispatcher: agent,
  });
  response.catch(() => {});
  // The stream is subscribed once the server listens for durable commits.
  await waitFor(() => node.store.listenerCount('durable') > listeners, {
    what: 'the stream to subscribe',
    timeoutMs: 5000,
    intervalMs: 5,
  });
  return { response, controller };
}

describe('GET /v1/changes', () => {
  it('lists changes in order, with cursor, commit, bucket, key, version and kind', async () => {
    const node = startNode();
    const first = await put(node, 'b', 'k', 'one');
    const deleted = await node.app.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/k', headers: auth });
    const tombstone = (deleted.json() as { version: string }).version;
    const retracted = await node.app.inject({
      method: 'POST',
      url: '/v1/commits',
      headers: auth,
      payload: { ops: [{ kind: 'retract', target: tombstone }] },
    });
    const retraction = (retracted.json() as { versions: string[] }).versions[0];

    const { changes, last } = await feed(node);
    expect(changes.map((change) => [change.key, change.version, change.kind])).toEqual([
      ['k', first, 'put'],
      ['k', tombstone, 'delete'],
      ['k', retraction, 'retract'],
    ]);
    expect(changes[0]).toEqual({
      cursor: changes[0]?.cursor,
      commit: first.split('.')[0],
      bucket: 'b',
      key: 'k',
      version: first,
      kind: 'put',
    });
    const cursors = changes.map((change) => change.cursor);
    expect([...cursors].sort((a, b) => a - b)).toEqual(cursors);
    expect(new Set(cursors).size).toBe(3);
    expect(last).toBe(cursors[2]);

    // Resuming from the last cursor gives nothing new until something is written.
    expect(await feed(node, `?since=${last}`)).toEqual({ changes: [], last });
    const next = await put(node, 'b', 'k2', 'two');
    const resumed = await feed(node, `?since=${last}`);
    expect(resumed.changes.map((change) => change.version)).toEqual([next]);
    expect(resumed.last).toBeGreaterThan(last);
  });

  it('pages with limit and since, and filters by bucket', async () => {
    const node = startNode();
    const written: string[] = [];
    for (let index = 0; index < 7; index += 1) {
      written.push(await put(node, index % 2 === 0 ? 'even' : 'odd', `k${index}`, String(index)));
    }
    const seen: string[] = [];
    let since = 0;
    for (let page = 0; page < 10; page += 1) {
      const { changes, last } = await feed(node, `?since=${since}&limit=3`);
      expect(changes.length).toBeLessThanOrEqual(3);
      if (changes.length === 0) break;
      seen.push(...changes.map((change) => change.version));
      since = last;
    }
    expect(seen).toEqual(written);

    const even = await feed(node, '?bucket=even');
    expect(even.changes.map((change) => change.key)).toEqual(['k0', 'k2', 'k4', 'k6']);
    expect(even.changes.every((change) => change.bucket === 'even')).toBe(true);
    expect((await feed(node, '?bucket=none')).changes).toEqual([]);
  });

  it('takes Last-Event-ID as the cursor', async () => {
    const node = startNode();
    await put(node, 'b', 'one', '1');
    const { last } = await feed(node);
    const second = await put(node, 'b', 'two', '2');
    const resumed = await feed(node, '', { ...auth, 'last-event-id': String(last) });
    expect(resumed.changes.map((change) => change.version)).toEqual([second]);
  });

  it('shows system buckets to admins only, events to every reader, filtered or not', async () => {
    const node = startNode();
    const reader = await tokenHeaders(node, 'read');
    await put(node, 'b', 'k', 'v');
    const asAdmin = await feed(node);
    expect(asAdmin.changes.some((change) => change.bucket === '_auth')).toBe(true);
    const asReader = await feed(node, '', reader);
    expect(asReader.changes.map((change) => change.bucket)).toEqual(['b']);
    const authOnly = await feed(node, '?bucket=_auth');
    expect(authOnly.changes.length).toBeGreaterThan(0);
    expect(authOnly.changes.every((change) => change.bucket === '_auth')).toBe(true);
    expectError(
      await node.app.inject({ url: '/v1/changes?bucket=_auth', headers: reader }),
      403,
      'STRATA_FORBIDDEN',
    );
    expect((await feed(node, '?bucket=_events', reader)).changes).toEqual([]);
    expectError(await node.app.inject({ url: '/v1/changes?bucket=_events' }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('lets a reader page past system changes it cannot see', async () => {
    // A page may hold only hidden rows; `last` must still move past them, or a client that
    // follows `last` never gets further.
    const node = startNode();
    const reader = await tokenHeaders(node, 'read');
    await tokenHeaders(node, 'write');
    const version = await put(node, 'b', 'k', 'v');
    const seen: string[] = [];
    let since = 0;
    for (let page = 0; page < 10 && seen.length === 0; page += 1) {
      const { changes, last } = await feed(node, `?since=${since}&limit=1`, reader);
      seen.push(...changes.map((change) => change.version));
      since = last;
    }
    expect(seen).toEqual([version]);
  });

  it('needs a token for the whole feed; a public bucket can be followed without one', async () => {
    const node = startNode();
    await put(node, 'pub', 'k', 'v');
    await put(node, 'private', 'k', 'v');
    expectError(await node.app.inject({ url: '/v1/changes' }), 401, 'STRATA_UNAUTHORIZED');
    expectError(await node.app.inject({ url: '/v1/changes?bucket=pub' }), 401, 'STRATA_UNAUTHORIZED');
    await makePublic(node, 'pub');
    const publicFeed = await feed(node, '?bucket=pub', {});
    expect(publicFeed.changes.map((change) => change.bucket)).toEqual(['pub']);
    expectError(await node.app.inject({ url: '/v1/changes?bucket=private' }), 401, 'STRATA_UNAUTHORIZED');
    expectError(await node.app.inject({ url: '/v1/changes' }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('refuses bad cursors, limits and bucket names', async () => {
    const node = startNode();
    await put(node, 'b', 'k', 'kept');
    const before = await node.app.inject({ url: '/v1/admin/digest', headers: auth });
    const cases: Array<[string, string]> = [
      ['?since=-1', 'STRATA_BAD_REQUEST'],
      ['?since=abc', 'STRATA_BAD_REQUEST'],
      ['?since=1.5', 'STRATA_BAD_REQUEST'],
      ['?since=1e3', 'STRATA_BAD_REQUEST'],
      ['?since=9999999999999999', 'STRATA_BAD_REQUEST'],
      ['?since=1&since=2', 'STRATA_BAD_REQUEST'],
      ['?limit=0', 'STRATA_BAD_REQUEST'],
      ['?limit=1001', 'STRATA_BAD_REQUEST'],
      ['?limit=ten', 'STRATA_BAD_REQUEST'],
      ['?limit=1&limit=2', 'STRATA_BAD_REQUEST'],
      ['?bucket=a&bucket=b', 'STRATA_BAD_REQUEST'],
      ['?cursor=1', 'STRATA_BAD_REQUEST'],
      ['?after=1', 'STRATA_BAD_REQUEST'],
      ['?bucket=Upper', 'STRATA_INVALID_NAME'],
      ['?bucket=_Auth', 'STRATA_INVALID_NAME'],
      [`?bucket=${'x'.repeat(64)}`, 'STRATA_INVALID_NAME'],
    ];
    for (const [query, code] of cases) {
      expectError(await node.app.inject({ url: `/v1/changes${query}`, headers: auth }), 400, code);
    }
    const badResume = await node.app.inject({
      url: '/v1/changes',
      headers: { ...auth, 'last-event-id': 'x' },
    });
    expectError(badResume, 400, 'STRATA_BAD_REQUEST');
    expect(badResume.json().error.message).toMatch(/^Last-Event-ID /);
    const after = await node.app.inject({ url: '/v1/admin/digest', headers: auth });
    expect(after.json()).toEqual(before.json());
    expect((await feed(node, '?since=&limit=')).changes).toHaveLength(1);
    // A cursor past the end would make a reader skip what comes next: refused, naming the end.
    const { last } = await feed(node);
    expect((await feed(node, `?since=${last}`)).changes).toEqual([]);
    const beyond = await node.app.inject({ url: `/v1/changes?since=${last + 1}`, headers: auth });
    expectError(beyond, 400, 'STRATA_BAD_REQUEST');
    expect(beyond.json().error.message).toContain(`past the end of this node's feed (${last})`);
  });
});

describe('GET /v1/changes as a live stream (text/event-stream)', () => {
  it('delivers a write made after connecting', async () => {
    const node = startNode();
    await put(node, 'b', 'before', 'old');
    const { last } = await feed(node);
    const { response } = await openStream(node, `?since=${last}`);

    const version = await put(node, 'b', 'after', 'new');
    const stream = await within(response, 5000, 'the stream response');
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(stream.body as ReadableStream<Uint8Array>, (seen) => seen.length >= 1);
    expect(events[0]).toMatchObject({ bucket: 'b', key: 'after', version, kind: 'put' });
    expect(events[0]?.cursor).toBeGreaterThan(last);
  });

  it('first catches up from the cursor, then follows, filtered by bucket', async () => {
    const node = startNode();
    const old = await put(node, 'watched', 'old', '1');
    await put(node, 'ignored', 'x', '1');
    const { response } = await openStream(node, '?bucket=watched');
    await put(node, 'ignored', 'y', '2');
    const fresh = await put(node, 'watched', 'fresh', '2');
    const stream = await within(response, 5000, 'the stream response');
    const events = await readEvents(stream.body as ReadableStream<Uint8Array>, (seen) => seen.length >= 2);
    expect(events.map((event) => event.version)).toEqual([old, fresh]);
  });

  it('hides system buckets from a reader and stops listening when the client goes away', async () => {
    const node = startNode();
    const reader = await tokenHeaders(node, 'read');
    const listeners = node.store.listenerCount('durable');
    const { response, controller } = await openStream(node, '', reader);
    await tokenHeaders(node, 'write');
    const version = await put(node, 'b', 'k', 'v');
    const stream = await within(response, 5000, 'the stream response');
    const events = await readEvents(stream.body as ReadableStream<Uint8Array>, (seen) => seen.length >= 1);
    expect(events.map((event) => event.version)).toEqual([version]);

    const streamsCounted = async () => {
      const text = (await node.app.inject({ url: '/metrics', headers: auth })).body;
      return Number(
        /^strata_http_requests_total\{method="GET",route="\/v1\/changes",status="200"\} (\d+)$/m.exec(
          text,
        )?.[1] ?? 0,
      );
    };
    const before = await streamsCounted();
    controller.abort();
    await waitFor(() => node.store.listenerCount('durable') === listeners, {
      what: 'the stream to unsubscribe',
      timeoutMs: 5000,
      intervalMs: 5,
    });
    // A stream skips the onResponse hook; it is counted when it closes.
    await waitFor(async () => (await streamsCounted()) === before + 1, {
      what: 'the stream to be counted',
      timeoutMs: 5000,
    });
  });

  it('catches a reader up from far behind at the pace it reads, never cutting it off', {
    timeout: 60_000,
  }, async () => {
    // 30,000 changes with long keys are about 13 MB of events: more than a node should buffer for one reader.
    const node = startNode();
    const opsPerCommit = 10_000;
    for (let batch = 0; batch < 3; batch++) {
      const ops = Array.from({ length: opsPerCommit }, (_, index) => ({
        kind: 'put',
        bucket: 'bulk',
        key: `k${batch}-${index}-${'x'.repeat(200)}`,
        value: 'v',
      }));
      const response = await node.app.inject({
        method: 'POST',
        url: '/v1/commits',
        headers: auth,
        payload: { ops },
      });
      expect(response.statusCode, response.body).toBe(201);
    }
    const { response } = await openStream(node, '?since=0');
    const stream = await within(response, 5000, 'the stream response');
    // The reader holds off for a while, as a slow client would, with the catch-up waiting on it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const events = await readEvents(
      stream.body as ReadableStream<Uint8Array>,
      (seen) => seen.length >= 3 * opsPerCommit,
      45_000,
    );
    expect(events).toHaveLength(3 * opsPerCommit);
    expect(new Set(events.map((event) => event.key)).size).toBe(3 * opsPerCommit);
    // Then it follows live writes as before.
    const fresh = await put(node, 'bulk', 'after', 'v');
    const next = await readEvents(stream.body as ReadableStream<Uint8Array>, (seen) => seen.length >= 1);
    expect(next.map((event) => event.version)).toEqual([fresh]);
  });

  it('ends a stream whose token is revoked, before it sends anything more', async () => {
    const node = startNode();
    const reader = await createToken(node, 'read', 'streamer');
    const { response } = await openStream(node, '', bearer(reader.token));
    const before = await put(node, 'b', 'before', '1');
    const stream = await within(response, 5000, 'the stream response');
    const body = stream.body as ReadableStream<Uint8Array>;
    const seen = await readEvents(body, (events) => events.length >= 1);
    expect(seen.map((event) => event.version)).toEqual([before]);

    const revoked = await node.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${reader.id}`,
      headers: auth,
    });
    expect(revoked.statusCode, revoked.body).toBe(200);
    await put(node, 'b', 'after-revoke', '2');
    const rest = await readToEnd(body);
    expect(rest).not.toContain('after-revoke');
    expect(errorEvents(rest)).toEqual([
      { error: { code: 'STRATA_UNAUTHORIZED', message: 'token is not valid or was revoked' } },
    ]);
  });

  it('ends an anonymous stream of a bucket that is made private', async () => {
    const node = startNode();
    await makePublic(node, 'pub');
    const { response } = await openStream(node, '?bucket=pub', {});
    const open = await put(node, 'pub', 'open', '1');
    const stream = await within(response, 5000, 'the stream response');
    const body = stream.body as ReadableStream<Uint8Array>;
    const seen = await readEvents(body, (events) => events.length >= 1);
    expect(seen.map((event) => event.version)).toEqual([open]);

    await makePublic(node, 'pub', false);
    await put(node, 'pub', 'secret-after', '2');
    const rest = await readToEnd(body);
    expect(rest).not.toContain('secret-after');
    expect(errorEvents(rest).map((event) => event.error.code)).toEqual(['STRATA_UNAUTHORIZED']);
  });

  it('resumes from Last-Event-ID rather than the since of the URL it reconnects with', async () => {
    // An EventSource reconnects with its first URL and the id of the last event it saw.
    const node = startNode();
    await put(node, 'b', 'one', '1');
    const { last } = await feed(node);
    const second = await put(node, 'b', 'two', '2');
    const { response } = await openStream(node, '?since=0', { ...auth, 'last-event-id': String(last) });
    const stream = await within(response, 5000, 'the stream response');
    const third = await put(node, 'b', 'three', '3');
    const events = await readEvents(stream.body as ReadableStream<Uint8Array>, (seen) => seen.length >= 2);
    expect(events.map((event) => event.version)).toEqual([second, third]);
  });

  it('sends the response headers at once, before any change happens', async () => {
    // An EventSource reports "open" only once it has the headers; a quiet feed must not leave
    // the client waiting for the first change (or the 15 s keep-alive).
    const node = startNode();
    const { last } = await feed(node);
    const { response } = await openStream(node, `?since=${last}`);
    const stream = await within(response, 2000, 'the stream headers');
    expect(stream.status).toBe(200);
  });

  it('refuses bad parameters before it starts streaming', async () => {
    const node = startNode();
    for (const query of ['?since=x', '?limit=0', '?bucket=_Auth', '?limit=5', '?since=99']) {
      const response = await node.app.inject({
        url: `/v1/changes${query}`,
        headers: { ...auth, accept: 'text/event-stream' },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: expect.stringMatching(/^STRATA_/) } });
    }
    const anonymous = await node.app.inject({ url: '/v1/changes', headers: { accept: 'text/event-stream' } });
    expectError(anonymous, 401, 'STRATA_UNAUTHORIZED');
  });
});
