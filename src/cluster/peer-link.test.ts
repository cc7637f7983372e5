import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { waitFor } from '../../test/support/wait.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Hello, MemberInfo, PeerMessage } from './messages.js';
import {
  batchBytesMax,
  type LinkEvents,
  messagesPerFrameMax,
  PeerLink,
  type RefusalReason,
} from './peer-link.js';

/**
 * PeerLink over a real WebSocket on 127.0.0.1: what one turn of the event loop sends leaves as one
 * frame, the hello always alone, and a frame is acted on only once every message in it parses.
 */

const serverId = '00000000000000aa' as NodeId;
const clientId = '00000000000000bb' as NodeId;

function memberInfo(id: NodeId): MemberInfo {
  return {
    id,
    name: `node-${id.slice(-2)}`,
    url: 'http://127.0.0.1:9',
    incarnation: 1,
    heartbeat: 1,
    signals: { revision: {}, replicationDelayMs: 0, meanResponseMs: 0, errorRate: 0, eager: [], lazy: [] },
  };
}

const hello = (id: NodeId, batches = true): Hello => ({
  type: 'hello',
  member: memberInfo(id),
  proof: '0'.repeat(64),
  ...(batches ? { batches } : {}),
});

/** What a PeerLink reported to its owner. */
interface Recorded {
  hellos: Hello[];
  messages: PeerMessage[];
  refused: Array<{ reason: RefusalReason; detail: string }>;
  closed: number;
}

function recorder(): { events: LinkEvents; seen: Recorded } {
  const seen: Recorded = { hellos: [], messages: [], refused: [], closed: 0 };
  return {
    seen,
    events: {
      hello: (_link, message) => seen.hellos.push(message),
      message: (_link, message) => seen.messages.push(message),
      refused: (_link, reason, detail) => seen.refused.push({ reason, detail }),
      closed: () => {
        seen.closed += 1;
      },
    },
  };
}

const servers: WebSocketServer[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/**
 * A PeerLink on the accepting side, and a bare WebSocket dialing it that records each frame it
 * receives as parsed JSON (so a batch shows up as one array).
 */
async function acceptedLink(): Promise<{
  link: PeerLink;
  seen: Recorded;
  peer: WebSocket;
  frames: unknown[];
}> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { events, seen } = recorder();
  const accepted = new Promise<PeerLink>((resolve) =>
    server.once('connection', (socket) => resolve(new PeerLink(socket, clientId, events, () => undefined))),
  );
  const peer = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  sockets.push(peer);
  const frames: unknown[] = [];
  peer.on('message', (data: RawData) => frames.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    peer.once('open', () => resolve());
    peer.once('error', reject);
  });
  return { link: await accepted, seen, peer, frames };
}

/** Frames on loopback take a millisecond or so; a loaded machine gets seconds. */
const until = (condition: () => boolean, what: string) =>
  waitFor(condition, { timeoutMs: 10_000, what, intervalMs: 5 });

/** The link has said hello to the peer and heard its hello back (offering batches, or not). */
async function greeted(peerReadsBatches = true): Promise<Awaited<ReturnType<typeof acceptedLink>>> {
  const linked = await acceptedLink();
  linked.link.send(hello(serverId));
  linked.peer.send(JSON.stringify(hello(clientId, peerReadsBatches)));
  await until(() => linked.seen.hellos.length === 1 && linked.frames.length === 1, 'both hellos');
  return linked;
}

const ping = (sentAt: number): PeerMessage => ({ type: 'ping', sentAt });

describe('PeerLink', () => {
  it('sends the messages of one turn as one frame, in order, to a peer that reads batches', async () => {
    const { link, frames } = await greeted();
    link.send(ping(1));
    link.send({ type: 'prune' });
    link.send(ping(2));
    await until(() => frames.length === 2, 'two frames');
    expect(frames[0]).toMatchObject({ type: 'hello', member: { id: serverId }, batches: true });
    expect(frames[1]).toEqual([ping(1), { type: 'prune' }, ping(2)]);
    expect(link.framesSent).toBe(2);
  });

  it('sends one message per frame before the peer said hello, and to a peer that does not read batches', async () => {
    const early = await acceptedLink();
    early.link.send(hello(serverId));
    early.link.send(ping(1));
    early.link.send(ping(2));
    await until(() => early.frames.length === 3, 'three frames');
    expect(early.frames[0]).toMatchObject({ type: 'hello', member: { id: serverId } });
    expect(early.frames.slice(1)).toEqual([ping(1), ping(2)]);

    const older = await greeted(false);
    older.link.send(ping(3));
    older.link.send({ type: 'prune' });
    older.link.send(ping(4));
    await until(() => older.frames.length === 4, 'four frames');
    expect(older.frames.slice(1)).toEqual([ping(3), { type: 'prune' }, ping(4)]);
    expect(older.link.framesSent).toBe(4);
  });

  it('sends a message alone in its turn as a plain object, not as a batch of one', async () => {
    const { link, frames } = await greeted();
    link.send(ping(7));
    // The first ping has arrived, so the second is sent in a later turn of the event loop.
    await until(() => frames.length === 2, 'the ping');
    link.send(ping(8));
    await until(() => frames.length === 3, 'the second ping');
    expect(frames.slice(1)).toEqual([ping(7), ping(8)]);
  });

  it(`cuts a batch before it passes ${batchBytesMax} bytes, and keeps the order`, async () => {
    const { link, frames } = await greeted();
    // A graft of 10,000 ids is about 660 KB: two do not fit in one batch, a small message after them does.
    const graft = (digit: string): PeerMessage => ({
      type: 'graft',
      ids: Array.from({ length: 10_000 }, () => digit.repeat(64) as CommitId),
    });
    link.send(graft('a'));
    link.send(graft('b'));
    link.send(ping(3));
    await until(() => frames.length === 3, 'two more frames');
    expect(frames[1]).toEqual(graft('a'));
    expect(frames[2]).toEqual([graft('b'), ping(3)]);
    expect(JSON.stringify(frames[2]).length).toBeLessThanOrEqual(batchBytesMax);
  });

  it('hands each message of a received batch to its owner, in order', async () => {
    const { link, seen, peer } = await greeted();
    peer.send(JSON.stringify([ping(1), { type: 'graft', ids: ['a'.repeat(64)] }, ping(3)]));
    peer.send(JSON.stringify(ping(4)));
    await until(() => seen.messages.length === 4, 'four messages');
    expect(seen.messages).toEqual([ping(1), { type: 'graft', ids: ['a'.repeat(64)] }, ping(3), ping(4)]);
    expect(seen.refused).toEqual([]);
    expect(link.framesReceived).toBe(3);
  });

  const badBatches: Array<{ name: string; frame: unknown; detail: RegExp }> = [
    { name: 'an empty batch', frame: [], detail: /1–10000 messages/ },
    {
      name: 'a batch whose last message is malformed',
      frame: [ping(1), ping(2), { type: 'launch_missiles' }],
      detail: /unknown message type/,
    },
    {
      name: 'a batch holding a hello',
      frame: [ping(1), hello(clientId)],
      detail: /unknown message type "hello"/,
    },
    {
      name: 'a batch holding a nested batch',
      frame: [ping(1), [ping(2)]],
      detail: /message is not an object/,
    },
    {
      name: `a batch of more than ${messagesPerFrameMax} messages`,
      frame: Array.from({ length: messagesPerFrameMax + 1 }, (_, index) => ping(index)),
      detail: /1–10000 messages/,
    },
  ];
  for (const { name, frame, detail } of badBatches) {
    it(`refuses ${name} as malformed, and acts on none of its messages`, async () => {
      const { seen, peer } = await greeted();
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        peer.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      peer.send(JSON.stringify(frame));
      const { code, reason } = await closed;
      expect(code).toBe(4400);
      expect(reason).toMatch(/^malformed:/);
      expect(seen.refused).toHaveLength(1);
      expect(seen.refused[0]?.reason).toBe('malformed');
      expect(seen.refused[0]?.detail).toMatch(detail);
      expect(seen.messages).toEqual([]);
    });
  }

  it('writes what is queued before it closes the link', async () => {
    const { link, frames, peer } = await greeted();
    const closed = new Promise<number>((resolve) => peer.once('close', (code) => resolve(code)));
    link.send(ping(1));
    link.send(ping(2));
    link.close(1000, 'bye');
    expect(await closed).toBe(1000);
    expect(frames.slice(1)).toEqual([[ping(1), ping(2)]]);
  });
});
