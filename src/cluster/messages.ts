import type { Envelope } from '../core/envelope.js';
import { fail } from '../core/errors.js';
import { type CommitId, isNodeId, isSha256Hex, type NodeId } from '../core/ids.js';
import type { VersionVector } from './version-vector.js';

/**
 * What peers say to each other (DESIGN §5), a discriminated union on `type` (STYLE §9). Every
 * message from a peer is untrusted until `parsePeerMessage` has checked its shape and bounds.
 */

export interface Geo {
  lat: number;
  lon: number;
}

/** Figures a node measures about itself and gossips with its heartbeat (node signals, DESIGN §5). */
export interface MemberSignals {
  /** Its version vector: origin → highest seq applied. */
  revision: VersionVector;
  /** Recent mean of (applied here − committed at origin) over commits from other nodes. */
  replicationDelayMs: number;
  meanResponseMs: number;
  /** Fraction of its recent HTTP responses that were 5xx. */
  errorRate: number;
  /** Its overlay links, by Plumtree role. */
  eager: NodeId[];
  lazy: NodeId[];
  /**
   * Clock offsets it measured on its links (their clock minus its own, ms), so that nodes without
   * a link to a member can estimate theirs through it. Absent from nodes that predate it.
   */
  clockOffsets?: Record<NodeId, number>;
}

export interface MemberInfo {
  id: NodeId;
  name: string;
  url: string;
  geo?: Geo;
  /** Grows with every start of the node: a restarted node outranks what is remembered of it. */
  incarnation: number;
  /** Grows with every heartbeat of this incarnation (gossip-style failure detection, van Renesse 1998). */
  heartbeat: number;
  /** Set once the node announced a graceful departure. */
  left?: boolean;
  signals: MemberSignals;
}

/**
 * A member table row that only says the member is still beating: what else it holds is what the
 * receiver was last told in a full row (`MemberInfo`), which follows every few heartbeats.
 */
export interface MemberBeat {
  id: NodeId;
  incarnation: number;
  heartbeat: number;
  /** Never set: it tells a beat from a full row, for the type checker as for `isBeat`. */
  signals?: never;
}

export type MemberRow = MemberInfo | MemberBeat;

export const isBeat = (row: MemberRow): row is MemberBeat => row.signals === undefined;

export type { Envelope };

export type PeerMessage =
  /** Heartbeat gossip: the sender's member table (alive, suspect and departed members). */
  | { type: 'members'; members: MemberRow[] }
  /** Clock offset and round-trip time, NTP style. */
  | { type: 'ping'; sentAt: number }
  | { type: 'pong'; pingSentAt: number; receivedAt: number }
  /** Plumtree (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS 2007). */
  | { type: 'gossip'; envelope: Envelope; round: number }
  | { type: 'ihave'; ids: CommitId[]; round: number }
  | { type: 'graft'; ids: CommitId[] }
  /** Prune from the tree of `origin`'s commits; without an origin (a node that keeps one tree), from every tree. */
  | { type: 'prune'; origin?: NodeId }
  /** Anti-entropy: "this is what I have"; answered by `sync_batch` with what the asker lacks. */
  | { type: 'sync'; revision: VersionVector }
  | { type: 'sync_batch'; envelopes: Envelope[]; more: boolean; revision: VersionVector };

export type PeerMessageType = PeerMessage['type'];

/** The first message on a link, in each direction: who is speaking, and its proof of the cluster key. */
export interface Hello {
  type: 'hello';
  member: MemberInfo;
  /** HMAC of the other side's nonce under the cluster key (see link-auth.ts). */
  proof: string;
  /**
   * The sender reads frames that hold a batch of messages (peer-link.ts), so it may be sent them.
   * Nodes that predate batches leave it out and are sent one message per frame.
   */
  batches?: boolean;
}

/** Bounds on what one message may hold, so that a peer cannot make a node allocate without limit. */
export const membersPerMessageMax = 1000;
export const idsPerMessageMax = 10_000;
export const envelopesPerBatchMax = 1000;
export const revisionEntriesMax = 10_000;
const textBytesMax = 1024;
const proofPattern = /^[0-9a-f]{64}$/;

export function parsePeerMessage(value: unknown): PeerMessage {
  const message = record(value, 'message');
  switch (message.type) {
    case 'members':
      return { type: 'members', members: list(message.members, membersPerMessageMax, 'members', memberRow) };
    case 'ping':
      return { type: 'ping', sentAt: time(message.sentAt, 'sentAt') };
    case 'pong':
      return {
        type: 'pong',
        pingSentAt: time(message.pingSentAt, 'pingSentAt'),
        receivedAt: time(message.receivedAt, 'receivedAt'),
      };
    case 'gossip':
      return { type: 'gossip', envelope: envelope(message.envelope), round: count(message.round, 'round') };
    case 'ihave':
      return {
        type: 'ihave',
        ids: list(message.ids, idsPerMessageMax, 'ids', commitId),
        round: count(message.round, 'round'),
      };
    case 'graft':
      return { type: 'graft', ids: list(message.ids, idsPerMessageMax, 'ids', commitId) };
    case 'prune':
      return message.origin === undefined
        ? { type: 'prune' }
        : { type: 'prune', origin: nodeId(message.origin) };
    case 'sync':
      return { type: 'sync', revision: revision(message.revision) };
    case 'sync_batch':
      if (typeof message.more !== 'boolean') bad('sync_batch.more must be a boolean');
      return {
        type: 'sync_batch',
        envelopes: list(message.envelopes, envelopesPerBatchMax, 'envelopes', envelope),
        more: message.more as boolean,
        revision: revision(message.revision),
      };
    default:
      bad(
        typeof message.type === 'string'
          ? `unknown message type ${JSON.stringify(message.type.slice(0, 40))}`
          : 'message.type must be a string',
      );
  }
}

export function parseHello(value: unknown): Hello {
  const message = record(value, 'hello');
  if (message.type !== 'hello') bad('the first message on a link must be a hello');
  if (typeof message.proof !== 'string' || !proofPattern.test(message.proof)) bad('hello.proof is malformed');
  if (message.batches !== undefined && typeof message.batches !== 'boolean')
    bad('hello.batches must be a boolean');
  const hello: Hello = { type: 'hello', member: member(message.member), proof: message.proof };
  if (message.batches === true) hello.batches = true;
  return hello;
}

function bad(why: string): never {
  fail('STRATA_BAD_REQUEST', `malformed peer message: ${why}`);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list<T>(value: unknown, max: number, what: string, item: (value: unknown) => T): T[] {
  if (!Array.isArray(value) || value.length > max) bad(`${what} must be a list of at most ${max}`);
  return value.map(item);
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > textBytesMax)
    bad(`${what} must be a string of 1–${textBytesMax} bytes`);
  return value;
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) bad(`${what} must be a non-negative integer`);
  return value as number;
}

function time(value: unknown, what: string): number {
  return count(value, what);
}

function nodeId(value: unknown): NodeId {
  if (typeof value !== 'string' || !isNodeId(value)) bad('a node id is 16 hexadecimal digits');
  return value;
}

function commitId(value: unknown): CommitId {
  if (typeof value !== 'string' || !isSha256Hex(value)) bad('a commit id is a sha256 hex string');
  return value as CommitId;
}

/** A share of responses: from 0 to 1. */
function ratio(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1)
    bad(`${what} must be a number from 0 to 1`);
  return value;
}

/**
 * A replication delay is at most the age of the oldest commit (the epoch is 1.8e12 ms ago); a mean
 * response time over a day is no measurement of a serving node either.
 */
export const replicationDelayMsMax = 10_000_000_000_000;
export const meanResponseMsMax = 86_400_000;

function milliseconds(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max)
    bad(`${what} must be a number of ms from 0 to ${max}`);
  return value;
}

/** A clock offset beyond a day is no measurement of a running clock. */
const clockOffsetMsMax = 86_400_000;

function clockOffsets(value: unknown): Record<NodeId, number> {
  const entries = Object.entries(record(value, 'clockOffsets'));
  if (entries.length > membersPerMessageMax)
    bad(`clockOffsets has more than ${membersPerMessageMax} members`);
  const offsets: Record<NodeId, number> = {};
  for (const [member, ms] of entries) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || Math.abs(ms) > clockOffsetMsMax)
      bad(`clockOffsets values must be numbers of ms within ±${clockOffsetMsMax}`);
    offsets[nodeId(member)] = ms;
  }
  return offsets;
}

function revision(value: unknown): VersionVector {
  const entries = Object.entries(record(value, 'revision'));
  if (entries.length > revisionEntriesMax) bad(`revision has more than ${revisionEntriesMax} origins`);
  const vector: VersionVector = {};
  for (const [origin, seq] of entries) vector[nodeId(origin)] = count(seq, 'revision seq');
  return vector;
}

/** A row with neither `url` nor `signals` is a beat; other fields are not carried on, as in a full row. */
function memberRow(value: unknown): MemberRow {
  const input = record(value, 'member');
  if (input.url !== undefined || input.signals !== undefined) return member(input);
  return {
    id: nodeId(input.id),
    incarnation: count(input.incarnation, 'member.incarnation'),
    heartbeat: count(input.heartbeat, 'member.heartbeat'),
  };
}

function member(value: unknown): MemberInfo {
  const input = record(value, 'member');
  const signals = record(input.signals, 'member.signals');
  const info: MemberInfo = {
    id: nodeId(input.id),
    name: text(input.name, 'member.name'),
    url: text(input.url, 'member.url'),
    incarnation: count(input.incarnation, 'member.incarnation'),
    heartbeat: count(input.heartbeat, 'member.heartbeat'),
    signals: {
      revision: revision(signals.revision),
      replicationDelayMs: milliseconds(
        signals.replicationDelayMs,
        'replicationDelayMs',
        replicationDelayMsMax,
      ),
      meanResponseMs: milliseconds(signals.meanResponseMs, 'meanResponseMs', meanResponseMsMax),
      errorRate: ratio(signals.errorRate, 'errorRate'),
      eager: list(signals.eager, membersPerMessageMax, 'eager', nodeId),
      lazy: list(signals.lazy, membersPerMessageMax, 'lazy', nodeId),
    },
  };
  if (signals.clockOffsets !== undefined) info.signals.clockOffsets = clockOffsets(signals.clockOffsets);
  if (!/^https?:\/\//.test(info.url)) bad('member.url must be an http(s) URL');
  if (input.geo !== undefined) {
    const geo = record(input.geo, 'member.geo');
    const { lat, lon } = geo;
    if (typeof lat !== 'number' || typeof lon !== 'number' || Math.abs(lat) > 90 || Math.abs(lon) > 180)
      bad('member.geo must be {lat: -90…90, lon: -180…180}');
    info.geo = { lat, lon };
  }
  if (input.left !== undefined) {
    if (input.left !== true) bad('member.left must be true when present');
    info.left = true;
  }
  return info;
}

function envelope(value: unknown): Envelope {
  const input = record(value, 'envelope');
  const id = commitId(input.id);
  if (typeof input.body !== 'string') bad('envelope.body must be a string');
  const result: Envelope = { id, body: input.body };
  if (input.blobs !== undefined) {
    const blobs = Object.entries(record(input.blobs, 'envelope.blobs'));
    if (blobs.length > idsPerMessageMax) bad('envelope.blobs has too many entries');
    result.blobs = {};
    for (const [hash, bytes] of blobs) {
      if (!isSha256Hex(hash) || typeof bytes !== 'string') bad('envelope.blobs maps sha256 hashes to base64');
      result.blobs[hash] = bytes;
    }
  }
  return result;
}
