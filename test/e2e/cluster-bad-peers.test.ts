import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LinkAuth } from '../../src/cluster/link-auth.js';
import { type Commit, commitId, encodeCommit } from '../../src/core/commit.js';
import { sha256 } from '../../src/core/hash.js';
import { formatHlc } from '../../src/core/hlc.js';
import type { BlobId, NodeId } from '../../src/core/ids.js';
import { clusterAdminToken as adminToken, clusterAuth as auth, clusterKey } from '../support/cluster.js';
import {
  cleanUpProcesses,
  freePort,
  getJson,
  runCli,
  type StrataServer,
  startServer,
  temporaryDirectory,
  waitFor,
} from '../support/process.js';
import { waitWithDetail } from '../support/wait.js';

/**
 * Peers that are not peers, or misbehave (DESIGN §5): links without the cluster key, with a wrong
 * one, or authenticated and then sending garbage, and commits that are not what they claim. Each
 * is refused and counted (in /v1/cluster/status and /metrics), and the node keeps serving: after
 * every case a normal write and read still work and the link to its real peer stays up (a write
 * on A still reaches B).
 */

const wrongKey = 'not-the-cluster-key-of-this-test-0123';
const bucket = 'badpeers';
/** Waits on a node's reaction to one message: milliseconds normally, seconds on a loaded machine. */
const reactionTimeoutMs = 15_000;
/** A node closes a link that sent no hello after 5 s (peer-link.ts helloTimeoutMs). */
const helloTimeoutMs = 5_000;

type Reason = 'unauthenticated' | 'malformed' | 'timeout' | 'self' | 'backlog';
type Refused = Record<Reason, number>;

interface Counters {
  refused: Refused;
  invalid: number;
  applied: number;
  applyFailed: number;
  gossipReceived: number;
  blobsPulled: number;
  blobPullsFailed: number;
}

interface Status {
  node: string;
  clustered: boolean;
  members: Array<{ id: string; name: string; self: boolean; state: string; linked: boolean }>;
  unreachable: Array<{ url: string; reason: string; since: string }>;
  counters: Counters;
  links: { eager: string[]; lazy: string[] };
}

const statusOf = (server: StrataServer) => getJson<Status>(server, '/v1/cluster/status', auth);
const digestOf = async (server: StrataServer) =>
  (await getJson<{ digest: string }>(server, '/v1/admin/digest', auth)).digest;

/** strata_cluster_peers_refused_total by reason, from /metrics. */
async function refusedMetrics(server: StrataServer): Promise<Refused> {
  const response = await request(`${server.url}/metrics`, { headers: auth });
  const text = await response.body.text();
  expect(response.statusCode).toBe(200);
  const refused: Refused = { unauthenticated: 0, malformed: 0, timeout: 0, self: 0, backlog: 0 };
  for (const match of text.matchAll(/^strata_cluster_peers_refused_total\{reason="(\w+)"\} (\d+)$/gm))
    refused[match[1] as Reason] = Number(match[2]);
  return refused;
}

/** Both views of the refusal counters; they must agree. */
async function refusals(server: StrataServer): Promise<Refused> {
  const [status, metrics] = await Promise.all([statusOf(server), refusedMetrics(server)]);
  expect(metrics).toEqual(status.counters.refused);
  return status.counters.refused;
}

/** Waits until `reason` was counted `by` more than in `before`, in status and metrics; nothing else moved. */
async function expectRefused(server: StrataServer, before: Refused, reason: Reason, by = 1): Promise<void> {
  let now = before;
  await waitWithDetail(
    async () => {
      now = (await statusOf(server)).counters.refused;
      return now[reason] >= before[reason] + by;
    },
    { timeoutMs: reactionTimeoutMs, what: `refused.${reason} to grow by ${by}` },
    () => `from ${JSON.stringify(before)} to ${JSON.stringify(now)}`,
  );
  expect(await refusals(server)).toEqual({ ...before, [reason]: before[reason] + by });
}

interface Closed {
  code: number;
  reason: string;
}

/** A WebSocket to a node's peer endpoint, recording what it receives. */
class RawLink {
  readonly socket: WebSocket;
  readonly messages: unknown[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  isClosed = false;

  constructor(server: StrataServer, headers: Record<string, string> = {}) {
    this.socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/cluster/link`, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade answered ${response.statusCode}`)),
      );
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
      });
    });
    this.opened.catch(() => {});
    // A frame holds one message or a batch of them (peer-link.ts): messages are kept one by one.
    this.socket.on('message', (data, isBinary) => {
      const value = isBinary ? data : JSON.parse(data.toString());
      if (Array.isArray(value)) this.messages.push(...value);
      else this.messages.push(value);
    });
  }

  send(value: unknown): void {
    this.socket.send(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }

  async first(): Promise<unknown> {
    await waitFor(() => this.messages.length > 0 || this.isClosed, {
      timeoutMs: reactionTimeoutMs,
      what: 'a first message on the link',
    });
    if (this.messages.length === 0)
      throw new Error(`the link closed first: ${JSON.stringify(await this.closed)}`);
    return this.messages[0];
  }

  /** Resolves with the close the node sent; fails if the link is still open after the bound. */
  async closedByNode(): Promise<Closed> {
    await waitFor(() => this.isClosed, { timeoutMs: reactionTimeoutMs, what: 'the node to close the link' });
    return this.closed;
  }

  close(): void {
    this.socket.terminate();
  }
}

function fakeNodeId(): NodeId {
  return randomBytes(8).toString('hex') as NodeId;
}

/** A member as a hello describes it; its URL is a port nothing listens on, so dialing it back fails fast. */
function fakeMember(id: NodeId, url: string) {
  return {
    id,
    name: `fake-${id.slice(0, 6)}`,
    url,
    incarnation: Date.now(),
    heartbeat: 1,
    signals: { revision: {}, replicationDelayMs: 0, meanResponseMs: 0, errorRate: 0, eager: [], lazy: [] },
  };
}

/** A commit of one small put from `origin`, with the value's bytes inline, as a peer would send it. */
function fakeCommit(origin: NodeId, seq: number, key: string, value: Buffer) {
  const now = Date.now();
  const commit: Commit = {
    origin,
    seq,
    hlc: formatHlc({ wall: now, counter: 0, node: origin }),
    ops: [
      {
        kind: 'put',
        bucket,
        key,
        parents: [],
        blob: sha256(value) as BlobId,
        contentType: 'text/plain',
        size: value.length,
        effectiveAt: now,
      },
    ],
  };
  return {
    id: commitId(commit),
    body: encodeCommit(commit),
    blobs: { [sha256(value)]: value.toString('base64') },
  };
}

describe('a node facing bad peers', () => {
  let a: StrataServer;
  let b: StrataServer;
  let idA: string;
  let idB: string;
  /** A URL nothing answers at, for fake members. */
  let nowhere: string;
  let checks = 0;

  beforeAll(async () => {
    const cluster = ['--cluster-key', clusterKey];
    a = await startServer({
      dataDir: temporaryDirectory('strata-bad-peers-a-'),
      adminToken,
      extraArguments: [...cluster, '--node-name', 'a'],
    });
    b = await startServer({
      dataDir: temporaryDirectory('strata-bad-peers-b-'),
      adminToken,
      extraArguments: [...cluster, '--node-name', 'b', '--join', a.url],
    });
    idA = (await statusOf(a)).node;
    idB = (await statusOf(b)).node;
    nowhere = `http://127.0.0.1:${await freePort()}`;
    await waitFor(async () => (await linkedTo(a, idB)) && (await linkedTo(b, idA)), {
      timeoutMs: 20_000,
      what: 'a and b to link',
    });
  }, 60_000);
  afterAll(cleanUpProcesses);

  async function linkedTo(server: StrataServer, peer: string): Promise<boolean> {
    const member = (await statusOf(server)).members.find((row) => row.id === peer);
    return member?.linked === true && member.state === 'alive';
  }

  /** A normal write and read on A work, and the write reaches B over the link that stayed up. */
  async function expectServing(): Promise<void> {
    expect(await linkedTo(a, idB)).toBe(true);
    const key = `check-${++checks}`;
    const value = randomBytes(64);
    const put = await request(`${a.url}/v1/buckets/${bucket}/keys/${key}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: value,
    });
    expect(put.statusCode, await put.body.text()).toBe(201);
    const read = async (server: StrataServer) => {
      const response = await request(`${server.url}/v1/buckets/${bucket}/keys/${key}`, { headers: auth });
      const body = Buffer.from(await response.body.arrayBuffer());
      return response.statusCode === 200 && body.equals(value);
    };
    expect(await read(a)).toBe(true);
    await waitFor(() => read(b), { timeoutMs: reactionTimeoutMs, what: `${key} to reach b` });
    expect(await linkedTo(a, idB)).toBe(true);
    expect(await linkedTo(b, idA)).toBe(true);
  }

  /** An authenticated link that said hello: A's hello (with its proof) is checked, ours sent. */
  async function helloLink(peer = fakeNodeId(), url = nowhere): Promise<{ link: RawLink; peer: NodeId }> {
    const dialer = new LinkAuth(clusterKey, Date.now);
    const headers = dialer.dial(peer, 'fake');
    const link = new RawLink(a, { ...headers });
    await link.opened;
    const hello = (await link.first()) as { type: string; member: { id: string }; proof: string };
    expect(hello.type).toBe('hello');
    expect(hello.member.id).toBe(idA);
    // A proves it holds the key by answering our nonce.
    expect(dialer.verifyAccept(idA as NodeId, headers['strata-cluster-nonce'], hello.proof)).toBe(true);
    link.send({ type: 'hello', member: fakeMember(peer, url), proof: '0'.repeat(64) });
    await waitFor(async () => (await statusOf(a)).members.some((row) => row.id === peer && row.linked), {
      timeoutMs: reactionTimeoutMs,
      what: 'a to take the fake peer as linked',
    });
    return { link, peer };
  }

  it('refuses a link upgrade without the cluster headers', async () => {
    const before = await refusals(a);
    const link = new RawLink(a);
    const closed = await link.closedByNode();
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(/strata-cluster/);
    // Nothing was said to it: no hello, no member table.
    expect(link.messages).toEqual([]);
    await expectRefused(a, before, 'unauthenticated');
    await expectServing();
  });

  it('refuses a link whose proof was made with another cluster key', async () => {
    const before = await refusals(a);
    const link = new RawLink(a, { ...new LinkAuth(wrongKey, Date.now).dial(fakeNodeId(), 'impostor') });
    const closed = await link.closedByNode();
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(/cluster key/);
    expect(link.messages).toEqual([]);
    await expectRefused(a, before, 'unauthenticated');
    await expectServing();
  });

  it('refuses a replayed handshake (the same nonce twice)', async () => {
    const headers = { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'replayer') };
    const first = new RawLink(a, headers);
    await first.opened;
    expect((await first.first()) as { type: string }).toMatchObject({ type: 'hello' });
    first.close();
    const before = await refusals(a);
    const replay = new RawLink(a, headers);
    const closed = await replay.closedByNode();
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(/used before/);
    await expectRefused(a, before, 'unauthenticated');
    await expectServing();
  });

  const garbage: Array<{ name: string; afterHello: boolean; message: unknown; reason: Reason }> = [
    {
      name: 'text that is not JSON, instead of a hello',
      afterHello: false,
      message: '{not json',
      reason: 'malformed',
    },
    {
      name: 'a binary frame, instead of a hello',
      afterHello: false,
      message: Buffer.from([1, 2, 3]),
      reason: 'malformed',
    },
    {
      name: 'a message before the hello',
      afterHello: false,
      message: { type: 'prune' },
      reason: 'malformed',
    },
    { name: 'text that is not JSON', afterHello: true, message: 'garbage \u0000\u00ff', reason: 'malformed' },
    {
      name: 'a message of unknown type',
      afterHello: true,
      message: { type: 'launch_missiles' },
      reason: 'malformed',
    },
    {
      name: 'a gossip without an envelope',
      afterHello: true,
      message: { type: 'gossip', round: 0 },
      reason: 'malformed',
    },
    { name: 'a second hello', afterHello: true, message: { type: 'hello' }, reason: 'malformed' },
    { name: 'an empty batch', afterHello: true, message: [], reason: 'malformed' },
    {
      name: 'a batch with one bad message after good ones',
      afterHello: true,
      message: [
        { type: 'ping', sentAt: Date.now() },
        { type: 'gossip', round: 0 },
      ],
      reason: 'malformed',
    },
  ];
  for (const { name, afterHello, message, reason } of garbage) {
    it(`closes an authenticated link that sends ${name}`, async () => {
      const before = await refusals(a);
      let link: RawLink;
      if (afterHello) {
        link = (await helloLink()).link;
      } else {
        link = new RawLink(a, { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'fake') });
        await link.opened;
        await link.first();
      }
      link.send(message);
      const closed = await link.closedByNode();
      expect(closed.code).toBe(4400);
      expect(closed.reason.startsWith(`${reason}:`), closed.reason).toBe(true);
      await expectRefused(a, before, reason);
      await expectServing();
    });
  }

  it('closes an authenticated link whose hello names another node than its upgrade', async () => {
    const before = await refusals(a);
    const dialed = fakeNodeId();
    const link = new RawLink(a, { ...new LinkAuth(clusterKey, Date.now).dial(dialed, 'two-faced') });
    await link.opened;
    await link.first();
    const other = fakeNodeId();
    link.send({ type: 'hello', member: fakeMember(other, nowhere), proof: '0'.repeat(64) });
    const closed = await link.closedByNode();
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/^unauthenticated: hello names another node/);
    await expectRefused(a, before, 'unauthenticated');
    const members = (await statusOf(a)).members.map((row) => row.id);
    expect(members).not.toContain(other);
    expect(members).not.toContain(dialed);
    await expectServing();
  });

  it('closes an authenticated link that claims to be the node itself', async () => {
    const before = await refusals(a);
    const link = new RawLink(a, { ...new LinkAuth(clusterKey, Date.now).dial(idA as NodeId, 'mirror') });
    await link.opened;
    await link.first();
    link.send({ type: 'hello', member: fakeMember(idA as NodeId, nowhere), proof: '0'.repeat(64) });
    const closed = await link.closedByNode();
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/^self:/);
    await expectRefused(a, before, 'self');
    await expectServing();
  });

  it('closes an authenticated link that never says hello', { timeout: 30_000 }, async () => {
    const before = await refusals(a);
    const link = new RawLink(a, { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'silent') });
    await link.opened;
    await link.first();
    const opened = performance.now();
    await waitFor(() => link.isClosed, {
      timeoutMs: helloTimeoutMs + reactionTimeoutMs,
      what: 'the node to drop a link without a hello',
    });
    expect(performance.now() - opened).toBeGreaterThan(helloTimeoutMs - 1_000);
    const closed = await link.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/^timeout:/);
    await expectRefused(a, before, 'timeout');
    await expectServing();
  });

  it('answers every message of a batch, in order, and keeps the link', async () => {
    const { link } = await helloLink();
    const before = await refusals(a);
    const sentAt = [Date.now() - 2, Date.now() - 1];
    link.send(sentAt.map((at) => ({ type: 'ping', sentAt: at })));
    const pongs = () =>
      link.messages
        .filter(
          (message): message is { type: 'pong'; pingSentAt: number } =>
            (message as { type?: string }).type === 'pong',
        )
        .map((pong) => pong.pingSentAt);
    await waitFor(() => pongs().length >= 2, { timeoutMs: reactionTimeoutMs, what: 'two pongs' });
    expect(pongs()).toEqual(sentAt);
    expect(link.isClosed).toBe(false);
    expect(await refusals(a)).toEqual(before);
    link.close();
    await expectServing();
  });

  it('does not apply gossip whose envelope does not match its body, or is not a commit', async () => {
    const { link, peer } = await helloLink();
    const before = await statusOf(a);
    const refusedBefore = await refusals(a);
    const digestBefore = await digestOf(a);
    const forged = fakeCommit(peer, 1, 'forged', Buffer.from('forged value'));
    const other = fakeCommit(peer, 1, 'other', Buffer.from('another value'));
    const notCommits = ['not a commit at all', '{"origin":"nobody"}', JSON.stringify([1, 2, 3])];
    const envelopes = [
      // A real commit's body under another commit's id.
      { ...forged, id: other.id },
      // A well-formed id that is not the hash of anything sent.
      { ...forged, id: sha256('something else') },
      // Bodies whose id matches, but that are not commits.
      ...notCommits.map((body) => ({ id: sha256(body), body })),
    ];
    for (const envelope of envelopes) link.send({ type: 'gossip', envelope, round: 0 });
    let counters = before.counters;
    await waitWithDetail(
      async () => {
        counters = (await statusOf(a)).counters;
        return counters.invalid >= before.counters.invalid + envelopes.length;
      },
      {
        timeoutMs: reactionTimeoutMs,
        what: `counters.invalid to grow by ${envelopes.length}`,
      },
      () => `${before.counters.invalid} → ${counters.invalid}`,
    );
    console.log(
      `invalid gossip: counters.invalid ${before.counters.invalid} → ${counters.invalid}, ` +
        `gossipReceived ${before.counters.gossipReceived} → ${counters.gossipReceived}`,
    );
    expect(counters.invalid).toBe(before.counters.invalid + envelopes.length);
    expect(counters.applied).toBe(before.counters.applied);
    expect(counters.applyFailed).toBe(before.counters.applyFailed);
    expect(await digestOf(a)).toBe(digestBefore);
    const forgedRead = await request(`${a.url}/v1/buckets/${bucket}/keys/forged`, { headers: auth });
    await forgedRead.body.text();
    expect(forgedRead.statusCode).toBe(404);
    // The messages parse, so the link is not dropped as malformed; nothing was counted as refused.
    expect(link.isClosed).toBe(false);
    expect(await refusals(a)).toEqual(refusedBefore);

    // The control: the same fake peer's genuine commit is applied, so the refusals above were
    // for what the envelopes held, not for who sent them.
    link.send({ type: 'gossip', envelope: forged, round: 0 });
    await waitFor(
      async () => {
        const response = await request(`${b.url}/v1/buckets/${bucket}/keys/forged`, { headers: auth });
        const body = await response.body.text();
        return response.statusCode === 200 && body === 'forged value';
      },
      { timeoutMs: reactionTimeoutMs, what: 'the genuine commit to be applied on a and reach b' },
    );
    expect((await statusOf(a)).counters.invalid).toBe(counters.invalid);
    expect(await digestOf(a)).not.toBe(digestBefore);
    link.close();
    await expectServing();
  });

  it('does not apply a commit whose inline bytes are not its blob, and takes the genuine copy later', async () => {
    const { link, peer } = await helloLink();
    const before = (await statusOf(a)).counters;
    const digestBefore = await digestOf(a);
    const value = Buffer.from('the genuine bytes');
    const genuine = fakeCommit(peer, 1, 'tampered', value);
    const blob = sha256(value);
    // The commit id covers the body, not the inline bytes: a peer can send the right commit with wrong bytes.
    const tampered = { ...genuine, blobs: { [blob]: Buffer.from('the tampered byte').toString('base64') } };
    link.send({ type: 'gossip', envelope: tampered, round: 0 });
    let counters = before;
    await waitWithDetail(
      async () => {
        counters = (await statusOf(a)).counters;
        return counters.applyFailed > before.applyFailed;
      },
      { timeoutMs: reactionTimeoutMs, what: 'the tampered commit to fail' },
      () => JSON.stringify(counters),
    );
    expect(counters.applied).toBe(before.applied);
    expect(await digestOf(a)).toBe(digestBefore);
    const read = await request(`${a.url}/v1/buckets/${bucket}/keys/tampered`, { headers: auth });
    await read.body.text();
    expect(read.statusCode).toBe(404);

    // The failed copy did not mark the commit as seen: the genuine one is applied.
    link.send({ type: 'gossip', envelope: genuine, round: 0 });
    await waitFor(
      async () => {
        const response = await request(`${a.url}/v1/buckets/${bucket}/keys/tampered`, { headers: auth });
        return response.statusCode === 200 && (await response.body.text()) === value.toString();
      },
      { timeoutMs: reactionTimeoutMs, what: 'the genuine commit to be applied' },
    );
    link.close();
    await expectServing();
  });

  it('pushes a commit on while it pulls its blob from a slow peer; the next node pulls the blob from it once it came', async () => {
    // The fake peer serves blob pulls itself, and holds each one until the test lets it go.
    const value = randomBytes(100 * 1024);
    const hash = sha256(value);
    const asked: string[] = [];
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const blobServer = createServer((request, response) => {
      asked.push(request.url ?? '');
      if (request.url !== `/v1/cluster/blobs/${hash}`) return void response.writeHead(404).end();
      void released.then(() => response.writeHead(200).end(value));
    });
    await new Promise<void>((resolve) => blobServer.listen(0, '127.0.0.1', resolve));
    const { port } = blobServer.address() as AddressInfo;
    try {
      const { link, peer } = await helloLink(fakeNodeId(), `http://127.0.0.1:${port}`);
      const statusA = await statusOf(a);
      expect(statusA.members.find((row) => row.id === idB)?.linked).toBe(true);
      expect(statusA.links.eager).toContain(idB);
      const beforeA = statusA.counters;
      const beforeB = (await statusOf(b)).counters;
      // Not inline: A must pull the blob from the fake peer, and B from A.
      const { blobs: _inline, ...envelope } = fakeCommit(peer, 1, 'slow-blob', value);
      link.send({ type: 'gossip', envelope, round: 0 });

      // While A's pull is held, B has the commit already: A pushed it on receipt.
      await waitFor(() => asked.includes(`/v1/cluster/blobs/${hash}`), {
        timeoutMs: reactionTimeoutMs,
        what: 'a to pull the blob',
      });
      let countersB = beforeB;
      await waitWithDetail(
        async () => {
          countersB = (await statusOf(b)).counters;
          return countersB.gossipReceived > beforeB.gossipReceived;
        },
        { timeoutMs: reactionTimeoutMs, what: 'the commit to reach b before its blob reached a' },
        () => JSON.stringify(countersB),
      );
      // Nowhere is the blob yet but at the fake peer, so B cannot have applied the commit.
      expect(countersB.applied).toBe(beforeB.applied);
      release();
      const readB = async () => {
        const response = await request(`${b.url}/v1/buckets/${bucket}/keys/slow-blob`, { headers: auth });
        const body = Buffer.from(await response.body.arrayBuffer());
        return response.statusCode === 200 && body.equals(value);
      };
      await waitFor(readB, { timeoutMs: reactionTimeoutMs, what: 'the value to reach b' });
      // B's one pull from A did not fail: it waited for A's own pull instead of finding nothing.
      const afterB = (await statusOf(b)).counters;
      expect(afterB.blobsPulled).toBe(beforeB.blobsPulled + 1);
      expect(afterB.blobPullsFailed).toBe(beforeB.blobPullsFailed);
      expect((await statusOf(a)).counters.blobsPulled).toBe(beforeA.blobsPulled + 1);
      // One pull of it from the fake peer: B took it from A. (B also dials the fake member's URL.)
      expect(asked.filter((path) => path.startsWith('/v1/cluster/blobs/'))).toEqual([
        `/v1/cluster/blobs/${hash}`,
      ]);
      link.close();
    } finally {
      blobServer.closeAllConnections();
      await new Promise((resolve) => blobServer.close(resolve));
    }
    await expectServing();
  });

  it('answers blob pulls without the cluster headers, or with a wrong key, with 401', async () => {
    const value = randomBytes(100 * 1024);
    const put = await request(`${a.url}/v1/buckets/${bucket}/keys/big.bin`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: value,
    });
    expect(put.statusCode, await put.body.text()).toBe(201);
    const hash = sha256(value);
    const pull = async (headers: Record<string, string>) => {
      const response = await request(`${a.url}/v1/cluster/blobs/${hash}`, { headers });
      return {
        status: response.statusCode,
        type: String(response.headers['content-type']),
        body: Buffer.from(await response.body.arrayBuffer()),
      };
    };
    const errorOf = (body: Buffer) =>
      (JSON.parse(body.toString()) as { error: { code: string; message: string } }).error;

    let before = await refusals(a);
    const bare = await pull({});
    expect(bare.status).toBe(401);
    expect(bare.type).toMatch(/^application\/json/);
    expect(errorOf(bare.body)).toMatchObject({
      code: 'STRATA_UNAUTHORIZED',
      message: expect.stringMatching(/strata-cluster/),
    });
    // An admin token is no cluster credential.
    const admin = await pull(auth);
    expect(admin.status).toBe(401);
    expect(errorOf(admin.body).code).toBe('STRATA_UNAUTHORIZED');
    await expectRefused(a, before, 'unauthenticated', 2);

    before = await refusals(a);
    const wrong = await pull({ ...new LinkAuth(wrongKey, Date.now).dial(fakeNodeId(), 'impostor') });
    expect(wrong.status).toBe(401);
    expect(errorOf(wrong.body)).toMatchObject({
      code: 'STRATA_UNAUTHORIZED',
      message: expect.stringMatching(/cluster key/),
    });
    await expectRefused(a, before, 'unauthenticated');

    // The control: the right key gets the bytes, once per nonce.
    const headers = { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'puller') };
    const good = await pull(headers);
    expect(good.status).toBe(200);
    expect(good.body.equals(value)).toBe(true);
    before = await refusals(a);
    const replayed = await pull(headers);
    expect(replayed.status).toBe(401);
    expect(errorOf(replayed.body).message).toMatch(/used before/);
    await expectRefused(a, before, 'unauthenticated');
    await expectServing();
  });

  it('tells a node that joins with a wrong key, or a dead URL, why it cannot link, once per reason', {
    timeout: 60_000,
  }, async () => {
    const lines = (server: StrataServer, message: string) =>
      server
        .stdout()
        .split('\n')
        .filter((line) => line.includes(message));
    const wrong = await startServer({
      dataDir: temporaryDirectory('strata-bad-peers-wrong-key-'),
      adminToken,
      extraArguments: ['--cluster-key', wrongKey, '--node-name', 'wrong', '--join', a.url, '--join', nowhere],
    });
    await waitFor(() => lines(wrong, 'cannot link to a peer').length >= 2, {
      timeoutMs: 20_000,
      what: `both join failures in the joining node's log:\n${wrong.stdout()}`,
    });
    const refused = lines(wrong, 'cannot link to a peer').map(
      (line) => JSON.parse(line) as { url: string; reason: string },
    );
    expect(refused.find((line) => line.url === a.url)?.reason).toMatch(
      /the peer refused the link: .*cluster key/,
    );
    expect(refused.find((line) => line.url === nowhere)?.reason).toMatch(/^ECONNREFUSED/);
    // Status says the same, with since when.
    const { unreachable } = await statusOf(wrong);
    expect(unreachable.map((entry) => entry.url).sort()).toEqual([a.url, nowhere].sort());
    for (const entry of unreachable) {
      expect(entry.reason).toBe(refused.find((line) => line.url === entry.url)?.reason);
      expect(Date.now() - Date.parse(entry.since)).toBeLessThan(60_000);
    }
    const cli = await runCli(['cluster', 'status'], {
      env: { STRATA_URL: wrong.url, STRATA_TOKEN: adminToken },
    });
    expect(cli.stdout).toContain(`cannot link to ${a.url} since `);
    // The seed says who was refused, once.
    await waitFor(() => lines(a, '"name":"wrong"').length > 0, {
      timeoutMs: 10_000,
      what: "the seed's refusal",
    });
    // Dials are retried every few seconds; the log stays at one line per reason.
    await delay(4_000);
    expect(lines(wrong, 'cannot link to a peer')).toHaveLength(2);
    expect(lines(a, '"name":"wrong"')).toHaveLength(1);
    await expectServing();
  });

  it('keeps the reason a keyless node or a server that is no Strata node gives, once per reason', {
    timeout: 60_000,
  }, async () => {
    const keyless = await startServer({
      dataDir: temporaryDirectory('strata-bad-peers-keyless-'),
      adminToken,
    });
    const plain = createServer((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html' }).end('<h1>not here</h1>');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    try {
      const joiner = await startServer({
        dataDir: temporaryDirectory('strata-bad-peers-joiner-'),
        adminToken,
        extraArguments: ['--cluster-key', clusterKey, '--join', keyless.url, '--join', plainUrl],
      });
      const failures = () =>
        joiner
          .stdout()
          .split('\n')
          .filter((line) => line.includes('cannot link to a peer'))
          .map((line) => JSON.parse(line) as { url: string; reason: string });
      await waitFor(() => failures().length >= 2, {
        timeoutMs: 20_000,
        what: `both failures:\n${joiner.stdout()}`,
      });
      // Dials are retried every few seconds: the reasons stay the ones the peers gave.
      await delay(4_000);
      const reasons = Object.fromEntries(failures().map((line) => [line.url, line.reason]));
      expect(failures()).toHaveLength(2);
      expect(reasons[keyless.url]).toMatch(
        /^the peer refused the link: HTTP 403: this node runs without a cluster key/,
      );
      expect(reasons[plainUrl]).toMatch(
        /^the peer refused the link: HTTP 404: the answer is not a Strata node's/,
      );
      const { unreachable } = await statusOf(joiner);
      expect(Object.fromEntries(unreachable.map((entry) => [entry.url, entry.reason]))).toEqual(reasons);
    } finally {
      plain.close();
    }
  });

  it('forgets why it could not reach a peer once that peer links to it', { timeout: 60_000 }, async () => {
    // A seed of its own: the only dead member it probes is the one that comes back.
    const seed = await startServer({
      dataDir: temporaryDirectory('strata-bad-peers-seed-'),
      adminToken,
      extraArguments: ['--cluster-key', clusterKey, '--node-name', 'seed'],
    });
    const dataDir = temporaryDirectory('strata-bad-peers-returning-');
    const extraArguments = ['--cluster-key', clusterKey, '--node-name', 'returning', '--join', seed.url];
    const first = await startServer({ dataDir, adminToken, extraArguments });
    const id = (await statusOf(first)).node;
    await waitFor(() => linkedTo(seed, id), { timeoutMs: 20_000, what: 'the returning node to link' });
    await first.kill9();
    // The seed probes the dead member, and says why it cannot link.
    await waitFor(async () => (await statusOf(seed)).unreachable.some((entry) => entry.url === first.url), {
      timeoutMs: 30_000,
      what: 'the seed to record the dead URL',
    });
    const back = await startServer({ dataDir, adminToken, extraArguments, port: first.port });
    await waitFor(() => linkedTo(seed, id), { timeoutMs: 20_000, what: 'the returning node to link again' });
    await waitFor(async () => !(await statusOf(seed)).unreachable.some((entry) => entry.url === back.url), {
      timeoutMs: 10_000,
      what: "the seed to drop the URL's trouble",
    });
    await Promise.all([back.stop(), seed.stop()]);
  });

  it('refuses a frame WebSocket cannot read, an upgrade that is no WebSocket, and an upgrade elsewhere, in its form', async () => {
    const before = await refusals(a);
    const link = new RawLink(a, { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'framer') });
    await link.opened;
    await link.first();
    // An unmasked frame from the dialing side: ws refuses it.
    (link.socket as unknown as { _socket: { write(bytes: Buffer): void } })._socket.write(
      Buffer.from([0x81, 0x05, ...Buffer.from('hello')]),
    );
    await link.closed;
    await expectRefused(a, before, 'malformed');
    expect(a.stdout()).not.toContain('"level":50');

    const raw = (path: string, headers: string[]) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(a.port, '127.0.0.1', () =>
          socket.write(
            [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: Upgrade', ...headers, '', ''].join(
              '\r\n',
            ),
          ),
        );
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(text));
        setTimeout(() => socket.destroy(), 5_000).unref();
      });
    const answers = await Promise.all([
      raw('/v1/cluster/link', ['Upgrade: websocket', 'Sec-WebSocket-Version: 13']),
      raw('/v1/cluster/link', ['Upgrade: foo']),
      raw('/v1/cluster/status', [
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      ]),
      raw(`/v1/buckets/${bucket}/keys/check-1`, [
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      ]),
    ]);
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/content-type: application\/json/i);
      expect(answer).toContain('"code":"STRATA_BAD_REQUEST"');
    }
    expect(answers[0]).toContain('Sec-WebSocket-Key');
    expect(answers[2]).toContain('only /v1/cluster/link takes an Upgrade');
    await expectServing();
  });

  it('refuses a body on leave and reindex, and stays in the cluster', async () => {
    for (const [path, body, type] of [
      ['/v1/cluster/leave', '{"unknown":1}', 'application/json'],
      ['/v1/cluster/leave', '[1,2]', 'application/json'],
      ['/v1/cluster/leave', 'hello', 'text/plain'],
      ['/v1/admin/reindex', '{"unknown":1}', 'application/json'],
    ] as const) {
      const response = await request(`${a.url}${path}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': type },
        body,
      });
      const answer = JSON.parse(await response.body.text()) as { error: { code: string; message: string } };
      expect(response.statusCode, `${path} ${body}`).toBe(400);
      expect(answer.error.message).toContain('takes no body');
    }
    await expectServing();
  });

  it('refuses every link and pull on a node started without a cluster key', async () => {
    const alone = await startServer({ dataDir: temporaryDirectory('strata-bad-peers-alone-'), adminToken });
    const status = await statusOf(alone);
    expect(status.clustered).toBe(false);
    const before = await refusals(alone);
    const link = new RawLink(alone, { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'hopeful') });
    // Refused before the upgrade: there is no link to close.
    await expect(link.opened).rejects.toThrow('upgrade answered 403');
    expect(link.messages).toEqual([]);
    await expectRefused(alone, before, 'unauthenticated');

    const hash = sha256('anything');
    const response = await request(`${alone.url}/v1/cluster/blobs/${hash}`, {
      headers: { ...new LinkAuth(clusterKey, Date.now).dial(fakeNodeId(), 'hopeful') },
    });
    const body = JSON.parse(await response.body.text()) as { error: { code: string } };
    expect(response.statusCode).toBe(403);
    expect(body.error.code).toBe('STRATA_FORBIDDEN');

    // It still serves its own clients.
    const put = await request(`${alone.url}/v1/buckets/${bucket}/keys/alone`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'alone',
    });
    expect(put.statusCode, await put.body.text()).toBe(201);
    const read = await request(`${alone.url}/v1/buckets/${bucket}/keys/alone`, { headers: auth });
    expect(await read.body.text()).toBe('alone');
  });
});
