import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { StrataError } from '../core/errors.js';
import type { CommitId, NodeId } from '../core/ids.js';
import {
  envelopesPerBatchMax,
  type Hello,
  idsPerMessageMax,
  type MemberInfo,
  membersPerMessageMax,
  type PeerMessage,
  parseHello,
  parsePeerMessage,
  revisionEntriesMax,
} from './messages.js';

const nodeA = '0123456789abcdef' as NodeId;
const nodeB = 'fedcba9876543210' as NodeId;
const commit1 = 'a'.repeat(64) as CommitId;
const commit2 = 'b'.repeat(64) as CommitId;
const blobHash = 'c'.repeat(64);

function member(overrides: Partial<MemberInfo> = {}): MemberInfo {
  return {
    id: nodeA,
    name: 'strata-a',
    url: 'http://10.0.0.1:7070',
    incarnation: 3,
    heartbeat: 17,
    signals: {
      revision: { [nodeA]: 4, [nodeB]: 2 },
      replicationDelayMs: 12,
      meanResponseMs: 1.5,
      errorRate: 0.01,
      eager: [nodeB],
      lazy: [],
    },
    ...overrides,
  };
}

const valid: PeerMessage[] = [
  {
    type: 'members',
    members: [
      member(),
      member({ id: nodeB, left: true, geo: { lat: -33.9, lon: 151.2 } }),
      member({ signals: { ...member().signals, clockOffsets: { [nodeB]: -12.5 } } }),
    ],
  },
  // A beat: only the heartbeat of a member whose full row the receiver had before.
  { type: 'members', members: [{ id: nodeB, incarnation: 2, heartbeat: 9 }, member()] },
  { type: 'members', members: [] },
  { type: 'ping', sentAt: 1_700_000_000_000 },
  { type: 'pong', pingSentAt: 1_700_000_000_000, receivedAt: 1_700_000_000_040 },
  { type: 'gossip', envelope: { id: commit1, body: '{"x":1}' }, round: 2 },
  { type: 'gossip', envelope: { id: commit1, body: '', blobs: { [blobHash]: 'aGVsbG8=' } }, round: 0 },
  { type: 'ihave', ids: [commit1, commit2], round: 0 },
  { type: 'graft', ids: [commit2] },
  { type: 'prune' },
  { type: 'sync', revision: {} },
  { type: 'sync', revision: { [nodeA]: 0, [nodeB]: 9 } },
  {
    type: 'sync_batch',
    envelopes: [
      { id: commit1, body: 'b1' },
      { id: commit2, body: 'b2' },
    ],
    more: true,
    revision: { [nodeA]: 3 },
  },
  { type: 'sync_batch', envelopes: [], more: false, revision: {} },
];

/** Through JSON, as a link delivers it. */
function wire(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

describe('parsePeerMessage', () => {
  it('round-trips every message type through JSON', () => {
    const types = new Set(valid.map((message) => message.type));
    expect([...types].sort()).toEqual(
      ['gossip', 'graft', 'ihave', 'members', 'ping', 'pong', 'prune', 'sync', 'sync_batch'].sort(),
    );
    for (const message of valid) expect(parsePeerMessage(wire(message))).toEqual(message);
  });

  it('keeps only the known members of a message (an extra field is not carried on)', () => {
    const parsed = parsePeerMessage({
      type: 'members',
      extra: 'x',
      members: [
        { ...member(), extra: 1, signals: { ...member().signals, extra: 2 } },
        { id: nodeB, incarnation: 1, heartbeat: 4, name: 'a beat has no name' },
      ],
    });
    expect(parsed).toEqual({
      type: 'members',
      members: [member(), { id: nodeB, incarnation: 1, heartbeat: 4 }],
    });
    expect(parsePeerMessage({ type: 'prune', ids: [commit1] })).toEqual({ type: 'prune' });
    expect(parsePeerMessage({ type: 'prune', origin: nodeA, ids: [commit1] })).toEqual({
      type: 'prune',
      origin: nodeA,
    });
    expect(
      parsePeerMessage({ type: 'gossip', round: 1, envelope: { id: commit1, body: 'x', from: nodeA } }),
    ).toEqual({ type: 'gossip', round: 1, envelope: { id: commit1, body: 'x' } });
  });

  it('accepts lists and vectors exactly at their bounds', () => {
    const ids = Array.from({ length: idsPerMessageMax }, () => commit1);
    expect(parsePeerMessage({ type: 'graft', ids })).toEqual({ type: 'graft', ids });
    const revision = Object.fromEntries(
      Array.from({ length: revisionEntriesMax }, (_, index) => [index.toString(16).padStart(16, '0'), index]),
    );
    expect(parsePeerMessage({ type: 'sync', revision })).toEqual({ type: 'sync', revision });
  });

  const cases: Array<[string, unknown]> = [
    ['null', null],
    ['a string', 'members'],
    ['a number', 7],
    ['an array', [{ type: 'prune' }]],
    ['no type', {}],
    ['an unknown type', { type: 'hello' }],
    ['a type that is not a string', { type: ['prune'] }],
    ['a type inherited from Object', { type: 'toString' }],
    ['a prune whose origin is not a node id', { type: 'prune', origin: 'nobody' }],
    ['a prune whose origin is null', { type: 'prune', origin: null }],
    ['members not a list', { type: 'members', members: {} }],
    [
      'too many members',
      { type: 'members', members: Array.from({ length: membersPerMessageMax + 1 }, member) },
    ],
    ['a member that is not an object', { type: 'members', members: ['a'] }],
    ['a member id that is too short', { type: 'members', members: [member({ id: 'abc' as NodeId })] }],
    [
      'a member id in capitals',
      { type: 'members', members: [member({ id: nodeA.toUpperCase() as NodeId })] },
    ],
    ['an empty member name', { type: 'members', members: [member({ name: '' })] }],
    ['a member name over 1 KiB', { type: 'members', members: [member({ name: 'é'.repeat(513) })] }],
    ['a member url that is not http', { type: 'members', members: [member({ url: 'ftp://x' })] }],
    ['a negative incarnation', { type: 'members', members: [member({ incarnation: -1 })] }],
    ['a fractional heartbeat', { type: 'members', members: [member({ heartbeat: 1.5 })] }],
    ['a heartbeat as a string', { type: 'members', members: [{ ...member(), heartbeat: '3' }] }],
    ['a heartbeat beyond 2^53', { type: 'members', members: [member({ heartbeat: 2 ** 53 })] }],
    ['left: false', { type: 'members', members: [{ ...member(), left: false }] }],
    ['a latitude beyond 90', { type: 'members', members: [member({ geo: { lat: 90.1, lon: 0 } })] }],
    ['a longitude beyond -180', { type: 'members', members: [member({ geo: { lat: 0, lon: -180.5 } })] }],
    ['a latitude as a string', { type: 'members', members: [{ ...member(), geo: { lat: '1', lon: 2 } }] }],
    ['geo without lon', { type: 'members', members: [{ ...member(), geo: { lat: 1 } }] }],
    ['geo that is a list', { type: 'members', members: [{ ...member(), geo: [1, 2] }] }],
    ['no signals', { type: 'members', members: [{ ...member(), signals: undefined }] }],
    ['signals without a url', { type: 'members', members: [{ ...member(), url: undefined }] }],
    ['a beat without an id', { type: 'members', members: [{ incarnation: 1, heartbeat: 2 }] }],
    [
      'a beat with a negative heartbeat',
      { type: 'members', members: [{ id: nodeB, incarnation: 1, heartbeat: -2 }] },
    ],
    [
      'a beat with a text incarnation',
      { type: 'members', members: [{ id: nodeB, incarnation: '1', heartbeat: 2 }] },
    ],
    [
      'a negative error rate',
      { type: 'members', members: [member({ signals: { ...member().signals, errorRate: -0.1 } })] },
    ],
    [
      'an error rate over 1',
      { type: 'members', members: [member({ signals: { ...member().signals, errorRate: 7 } })] },
    ],
    [
      'a mean response time over a day',
      {
        type: 'members',
        members: [member({ signals: { ...member().signals, meanResponseMs: 12_345_678_901_234 } })],
      },
    ],
    [
      'an impossible replication delay',
      { type: 'members', members: [member({ signals: { ...member().signals, replicationDelayMs: 1e300 } })] },
    ],
    [
      'an eager peer that is not a node id',
      { type: 'members', members: [member({ signals: { ...member().signals, eager: ['x' as NodeId] } })] },
    ],
    [
      'a signals revision seq that is negative',
      { type: 'members', members: [member({ signals: { ...member().signals, revision: { [nodeA]: -1 } } })] },
    ],
    [
      'a clock offset that is not a number',
      {
        type: 'members',
        members: [member({ signals: { ...member().signals, clockOffsets: { [nodeB]: '5' as never } } })],
      },
    ],
    [
      'a clock offset of more than a day',
      {
        type: 'members',
        members: [member({ signals: { ...member().signals, clockOffsets: { [nodeB]: 86_400_001 } } })],
      },
    ],
    [
      'a clock offset to something that is not a node id',
      {
        type: 'members',
        members: [member({ signals: { ...member().signals, clockOffsets: { ['x' as NodeId]: 1 } } })],
      },
    ],
    ['ping without sentAt', { type: 'ping' }],
    ['ping with a negative time', { type: 'ping', sentAt: -5 }],
    ['pong with a fractional time', { type: 'pong', pingSentAt: 1, receivedAt: 2.5 }],
    ['gossip without an envelope', { type: 'gossip', round: 0 }],
    ['gossip with a bad commit id', { type: 'gossip', round: 0, envelope: { id: 'abc', body: '' } }],
    [
      'gossip with a body that is not a string',
      { type: 'gossip', round: 0, envelope: { id: commit1, body: {} } },
    ],
    ['gossip with a negative round', { type: 'gossip', round: -1, envelope: { id: commit1, body: '' } }],
    [
      'gossip with a blob that is not a sha256 hash',
      { type: 'gossip', round: 0, envelope: { id: commit1, body: '', blobs: { abc: 'AA==' } } },
    ],
    [
      'gossip with blob bytes that are not a string',
      { type: 'gossip', round: 0, envelope: { id: commit1, body: '', blobs: { [blobHash]: 1 } } },
    ],
    ['ihave with ids that are not a list', { type: 'ihave', ids: commit1, round: 0 }],
    ['ihave with a commit id in capitals', { type: 'ihave', ids: [commit1.toUpperCase()], round: 0 }],
    ['ihave without a round', { type: 'ihave', ids: [commit1] }],
    [
      'graft with too many ids',
      { type: 'graft', ids: Array.from({ length: idsPerMessageMax + 1 }, () => commit1) },
    ],
    ['sync without a revision', { type: 'sync' }],
    ['sync with a revision that is a list', { type: 'sync', revision: [1] }],
    ['sync with an origin that is not a node id', { type: 'sync', revision: { origin: 1 } }],
    ['sync with a __proto__ origin', JSON.parse('{"type":"sync","revision":{"__proto__":1}}')],
    ['sync with a fractional seq', { type: 'sync', revision: { [nodeA]: 1.5 } }],
    [
      'sync with too many origins',
      {
        type: 'sync',
        revision: Object.fromEntries(
          Array.from({ length: revisionEntriesMax + 1 }, (_, index) => [
            index.toString(16).padStart(16, '0'),
            1,
          ]),
        ),
      },
    ],
    ['sync_batch without more', { type: 'sync_batch', envelopes: [], revision: {} }],
    ['sync_batch with more as a string', { type: 'sync_batch', envelopes: [], more: 'true', revision: {} }],
    [
      'sync_batch with too many envelopes',
      {
        type: 'sync_batch',
        envelopes: Array.from({ length: envelopesPerBatchMax + 1 }, () => ({ id: commit1, body: '' })),
        more: false,
        revision: {},
      },
    ],
    ['sync_batch without a revision', { type: 'sync_batch', envelopes: [], more: false }],
  ];

  it.each(cases)('refuses %s with STRATA_BAD_REQUEST', (_, value) => {
    expect(strataErrorCode(() => parsePeerMessage(value))).toBe('STRATA_BAD_REQUEST');
  });

  it('never throws anything but STRATA_BAD_REQUEST on random JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parsePeerMessage(value);
        } catch (error) {
          return error instanceof StrataError && error.code === 'STRATA_BAD_REQUEST';
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but STRATA_BAD_REQUEST when one part of a valid message is replaced', () => {
    // Random JSON rarely has a known type; replacing one node of a valid message reaches every check.
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.nat(),
        fc.jsonValue({ maxDepth: 3 }),
        (message, pick, replacement) => {
          const value = wire(message);
          const slots = slotsOf(value);
          const slot = slots[pick % slots.length];
          if (slot) slot.set(replacement);
          try {
            // As a link delivers it: through JSON text (which also has no -0).
            const parsed = parsePeerMessage(wire(value));
            // Whatever parses, parses again to itself: the result holds only checked values.
            expect(parsePeerMessage(wire(parsed))).toEqual(parsed);
          } catch (error) {
            return error instanceof StrataError && error.code === 'STRATA_BAD_REQUEST';
          }
          return true;
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** Every place in a JSON tree where a value can be put. */
function slotsOf(root: unknown): Array<{ set(value: unknown): void }> {
  const slots: Array<{ set(value: unknown): void }> = [];
  const visit = (node: unknown) => {
    if (typeof node !== 'object' || node === null) return;
    const container = node as Record<string, unknown>;
    for (const key of Object.keys(container)) {
      slots.push({
        set: (value) => {
          container[key] = value;
        },
      });
      visit(container[key]);
    }
  };
  visit(root);
  return slots;
}

describe('parseHello', () => {
  const hello: Hello = {
    type: 'hello',
    member: member({ geo: { lat: 48.1, lon: 11.6 } }),
    proof: 'f'.repeat(64),
  };

  it('round-trips a hello', () => {
    expect(parseHello(wire(hello))).toEqual(hello);
    expect(parseHello(wire({ ...hello, batches: true }))).toEqual({ ...hello, batches: true });
  });

  it('reads batches as absent unless it is true', () => {
    expect(parseHello(wire({ ...hello, batches: false }))).not.toHaveProperty('batches');
    expect(parseHello(wire(hello))).not.toHaveProperty('batches');
  });

  const cases: Array<[string, unknown]> = [
    ['null', null],
    ['a peer message', { type: 'prune' }],
    ['no proof', { ...hello, proof: undefined }],
    ['a short proof', { ...hello, proof: 'f'.repeat(63) }],
    ['a proof in capitals', { ...hello, proof: 'F'.repeat(64) }],
    ['a proof with a non-hex character', { ...hello, proof: `${'f'.repeat(63)}g` }],
    ['no member', { ...hello, member: undefined }],
    ['a member with a bad id', { ...hello, member: member({ id: 'nope' as NodeId }) }],
    ['a member with bad geo', { ...hello, member: member({ geo: { lat: 100, lon: 0 } }) }],
    ['batches that is not a boolean', { ...hello, batches: 'yes' }],
  ];

  it.each(cases)('refuses %s with STRATA_BAD_REQUEST', (_, value) => {
    expect(strataErrorCode(() => parseHello(value))).toBe('STRATA_BAD_REQUEST');
  });

  it('never throws anything but STRATA_BAD_REQUEST on random JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ type: fc.constant('hello'), member: fc.jsonValue(), proof: fc.string() }),
        ),
        (value) => {
          try {
            parseHello(value);
          } catch (error) {
            return error instanceof StrataError && error.code === 'STRATA_BAD_REQUEST';
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parsePeerMessage on a type that is not a string', () => {
  // Regression (found by the property above): String() of {"toString": null} throws a TypeError.
  it('refuses it with STRATA_BAD_REQUEST', () => {
    expect(() => parsePeerMessage({ type: { toString: null } })).toThrow(StrataError);
    expect(() => parsePeerMessage({ type: ['gossip'] })).toThrow(/message.type must be a string/);
  });
});
