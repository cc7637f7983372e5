import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Built, build, MemoryStorage, start } from '../../test/support/replica-storage.js';
import { ManualClock } from '../core/clock.js';
import { sha256 } from '../core/hash.js';
import { type CommitId, type NodeId, type VersionId, versionId } from '../core/ids.js';
import { Delivery, type Source } from './delivery.js';
import type { Envelope, PeerMessage } from './messages.js';
import { type ClusterOutput, type ClusterTiming, defaultTiming } from './protocol.js';
import type { VersionVector } from './version-vector.js';

const A = 'aaaaaaaaaaaaaaaa' as NodeId; // this node
const [B, C] = ['b', 'c'].map((digit) => digit.repeat(16) as NodeId) as [NodeId, NodeId];
const [X, Y, Z] = ['1', '2', '3'].map((digit) => digit.repeat(16) as NodeId) as [NodeId, NodeId, NodeId];

const v = (built: Built): VersionId => versionId(built.id, 0);

class Harness {
  readonly clock = new ManualClock(start);
  readonly storage = new MemoryStorage();
  readonly timing: ClusterTiming;
  linked: NodeId[] = [B, C];
  outputs: ClusterOutput[] = [];
  /** Handed out with `apply`, not yet durable, in order. */
  readonly applying: Envelope[] = [];
  /** Every commit handed out with `apply`, in order. */
  readonly handedOut: CommitId[] = [];
  readonly delivery: Delivery;

  constructor(timing: Partial<ClusterTiming> = {}, random: () => number = () => 0) {
    this.timing = { ...defaultTiming, ...timing };
    this.delivery = new Delivery(A, this.storage, this.timing, {
      emit: (output) => {
        this.outputs.push(output);
        if (output.type === 'apply') {
          this.applying.push(output.envelope);
          this.handedOut.push(output.envelope.id);
        }
      },
      now: () => this.clock.now(),
      random,
      linkedPeers: () => this.linked,
    });
  }

  /** Runs `act`; returns its outputs, checking the invariants after. */
  run(act: () => void): ClusterOutput[] {
    const before = this.outputs.length;
    act();
    this.delivery.checkInvariants();
    return this.outputs.slice(before);
  }

  receive(built: Built, from: NodeId = B, source: Source = { kind: 'gossip', round: 0 }): ClusterOutput[] {
    return this.run(() => this.delivery.receive(built.envelope, from, source));
  }

  /** Makes everything handed out durable, in order, as the store does. */
  settle(): ClusterOutput[] {
    return this.run(() => {
      for (let envelope = this.applying.shift(); envelope; envelope = this.applying.shift()) {
        this.storage.add(envelope);
        this.delivery.applied(envelope.id);
      }
    });
  }

  /** The store refuses the oldest commit handed out. */
  failOldest(): ClusterOutput[] {
    const envelope = this.applying.shift();
    if (!envelope) throw new Error('nothing is being applied');
    return this.run(() => this.delivery.applyFailed(envelope.id));
  }

  tick(ms = this.timing.tickIntervalMs): ClusterOutput[] {
    this.clock.advance(ms);
    return this.run(() => this.delivery.tick());
  }
}

const appliedIds = (outputs: ClusterOutput[]): CommitId[] =>
  outputs.flatMap((output) => (output.type === 'apply' ? [output.envelope.id] : []));

const sentTo = (outputs: ClusterOutput[], to: NodeId, type: PeerMessage['type']): PeerMessage[] =>
  outputs.flatMap((output) =>
    output.type === 'send' && output.to === to && output.message.type === type ? [output.message] : [],
  );

const syncsTo = (outputs: ClusterOutput[], to: NodeId): VersionVector[] =>
  sentTo(outputs, to, 'sync').map((message) => (message.type === 'sync' ? message.revision : {}));

describe('Delivery', () => {
  describe('causal order', () => {
    it('applies a commit at once when it depends on nothing missing', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const outputs = node.receive(x1);
      expect(outputs).toEqual([{ type: 'apply', envelope: x1.envelope, commit: x1.commit, from: B }]);
      expect(node.delivery.seen(x1.id)).toBe(true);
      expect(node.delivery.scheduledCount()).toBe(1);
      node.settle();
      expect(node.delivery.scheduledCount()).toBe(0);
      expect(node.delivery.counters.applied).toBe(1);
    });

    it('holds a commit whose predecessor of the same origin is missing, asks the sender, and applies both in order', () => {
      const node = new Harness();
      const [x1, x2, x3] = [1, 2, 3].map((seq) => build(X, seq)) as [Built, Built, Built];
      const waiting = node.receive(x3);
      expect(appliedIds(waiting)).toEqual([]);
      expect(syncsTo(waiting, B)).toEqual([{}]);
      expect(node.delivery.seen(x3.id)).toBe(true);
      expect(appliedIds(node.receive(x2, C))).toEqual([]);
      expect(node.delivery.pendingCount()).toBe(2);

      const released = node.receive(x1, C);
      expect(appliedIds(released)).toEqual([x1.id, x2.id, x3.id]);
      expect(
        released
          .filter((output) => output.type === 'apply')
          .map((output) => output.type === 'apply' && output.from),
      ).toEqual([C, C, B]);
      expect(node.delivery.pendingCount()).toBe(0);
      node.settle();
      expect(node.storage.revision()).toEqual({ [X]: 3 });
    });

    it.each([
      ['a parent', (x1: Built) => build(Y, 1, { parents: [v(x1)] })],
      ['a ref', (x1: Built) => build(Y, 1, { refs: [v(x1)] })],
      [
        'a retraction target',
        (x1: Built) => build(Y, 1, { target: v(x1), key: x1.commit.ops[0]?.key as string }),
      ],
    ])('holds a commit naming %s from another origin until that commit is handed out', (_, make) => {
      const node = new Harness();
      const x1 = build(X, 1);
      const y1 = make(x1);
      const waiting = node.receive(y1);
      expect(appliedIds(waiting)).toEqual([]);
      expect(syncsTo(waiting, B)).toHaveLength(1);
      expect(appliedIds(node.receive(x1, C))).toEqual([x1.id, y1.id]);
      node.settle();
      expect(node.storage.revision()).toEqual({ [X]: 1, [Y]: 1 });
    });

    it('does not wait for a commit that is durable, or handed out but not yet durable', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const x2 = build(X, 2);
      node.receive(x1);
      node.settle();
      expect(appliedIds(node.receive(build(Y, 1, { parents: [v(x1)] })))).toHaveLength(1);
      node.receive(x2);
      expect(appliedIds(node.receive(build(Z, 1, { parents: [v(x2)] })))).toHaveLength(1);
      node.settle();
    });

    it('a chain across origins arriving backwards is applied in causal order', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const x2 = build(X, 2, { parents: [v(x1)] });
      const y1 = build(Y, 1, { parents: [v(x2)] });
      const y2 = build(Y, 2);
      const z1 = build(Z, 1, { refs: [v(y2), v(x1)] });
      for (const built of [z1, y2, y1, x2]) expect(appliedIds(node.receive(built))).toEqual([]);
      expect(appliedIds(node.receive(x1))).toEqual([x1.id, x2.id, y1.id, y2.id, z1.id]);
      node.settle();
    });

    it('receives a commit once: a duplicate is neither applied again nor counted invalid', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      node.receive(x1);
      expect(node.receive(x1, C)).toEqual([]);
      node.settle();
      expect(node.receive(x1, C)).toEqual([]);
      const x3 = build(X, 3);
      node.receive(x3);
      expect(node.receive(x3, C)).toEqual([]);
      expect(node.delivery.counters.invalid).toBe(0);
    });

    it('knows the commits it applied or wrote lately without asking the store; older ones it asks for', () => {
      const node = new Harness();
      const lookups: CommitId[] = [];
      const hasCommit = node.storage.hasCommit.bind(node.storage);
      node.storage.hasCommit = (id) => {
        lookups.push(id);
        return hasCommit(id);
      };
      const x1 = build(X, 1);
      node.receive(x1);
      node.settle();
      const own = build(A, 1);
      node.storage.add(own.envelope);
      node.delivery.committed(own.id);
      lookups.length = 0;
      expect(node.delivery.seen(x1.id)).toBe(true);
      expect(node.delivery.seen(own.id)).toBe(true);
      const y1 = build(Y, 1, { parents: [v(x1), v(own)] });
      expect(appliedIds(node.receive(y1))).toHaveLength(1);
      // Only the new commit itself is looked up: its parents were known.
      expect(lookups).toEqual([y1.id]);

      // Beyond the bound the store answers, and still says yes.
      node.settle();
      for (let seq = 2; seq <= 4097; seq += 1) {
        node.receive(build(X, seq));
        node.settle();
      }
      lookups.length = 0;
      expect(node.delivery.seen(x1.id)).toBe(true);
      expect(lookups).toEqual([x1.id]);
    });
    it('applies in causal order whatever the order and duplication of arrival', () => {
      // A random causal history over three origins; each commit may name earlier commits of others.
      const history = fc
        .array(fc.record({ origin: fc.constantFrom(X, Y, Z), names: fc.array(fc.nat(), { maxLength: 2 }) }), {
          minLength: 1,
          maxLength: 25,
        })
        .map((steps) => {
          const built: Built[] = [];
          const seqs = new Map<NodeId, number>();
          for (const step of steps) {
            const seq = (seqs.get(step.origin) ?? 0) + 1;
            seqs.set(step.origin, seq);
            const named =
              built.length === 0
                ? []
                : [...new Set(step.names.map((n) => v(built[n % built.length] as Built)))];
            built.push(build(step.origin, seq, { parents: named }));
          }
          return built;
        });
      fc.assert(
        fc.property(
          history,
          fc.array(fc.nat(), { maxLength: 60 }),
          fc.array(fc.boolean(), { maxLength: 60 }),
          (commits, order, settleAfter) => {
            const node = new Harness();
            // Every commit once, then duplicates, in a random order; applied now and then.
            const arrivals = [
              ...commits,
              ...order.slice(0, 10).map((n) => commits[n % commits.length] as Built),
            ];
            for (let index = arrivals.length - 1; index > 0; index -= 1) {
              const swap = (order[index] ?? index) % (index + 1);
              [arrivals[index], arrivals[swap]] = [arrivals[swap] as Built, arrivals[index] as Built];
            }
            for (const [index, built] of arrivals.entries()) {
              node.receive(built, index % 2 === 0 ? B : C);
              if (settleAfter[index]) node.settle(); // the fake store throws on anything out of order
            }
            node.settle();
            expect(node.storage.log.map((entry) => entry.id).sort()).toEqual(commits.map((c) => c.id).sort());
            expect(new Set(node.handedOut).size).toBe(node.handedOut.length);
            expect(node.delivery.pendingCount()).toBe(0);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('blobs', () => {
    const bytes = Buffer.from('a blob too large to ride inline');
    const hash = sha256(bytes);

    it('fetches a missing blob from the sender, once, and applies after blobs_fetched ok', () => {
      const node = new Harness();
      const x1 = build(X, 1, { blob: bytes });
      const y1 = build(Y, 1, { blob: bytes });
      const first = node.receive(x1);
      expect(first).toEqual([{ type: 'fetch_blobs', from: B, hashes: [hash] }]);
      // A blob is not a commit: nothing to ask anti-entropy for.
      expect(syncsTo(first, B)).toEqual([]);
      expect(node.receive(y1, C)).toEqual([]);
      node.storage.blobs.add(hash);
      expect(appliedIds(node.run(() => node.delivery.blobsFetched([hash], true)))).toEqual([x1.id, y1.id]);
      node.settle();
    });

    it('drops what waits for a blob that could not be fetched; it can be received again', () => {
      const node = new Harness();
      const x1 = build(X, 1, { blob: bytes });
      const x2 = build(X, 2);
      node.receive(x1);
      node.receive(x2);
      expect(appliedIds(node.run(() => node.delivery.blobsFetched([hash], false)))).toEqual([]);
      expect(node.delivery.pendingCount()).toBe(1); // x2 still waits for x1
      expect(node.delivery.seen(x1.id)).toBe(false);
      expect(node.receive(x1, C)).toEqual([{ type: 'fetch_blobs', from: C, hashes: [hash] }]);
    });

    it('does not fetch a blob that is stored, inline, or carried inline by a commit being applied', () => {
      const node = new Harness();
      node.storage.blobs.add(sha256('stored'));
      expect(appliedIds(node.receive(build(X, 1, { blob: Buffer.from('stored') })))).toHaveLength(1);
      const carrier = build(Y, 1, { blob: bytes, inline: true });
      expect(appliedIds(node.receive(carrier))).toEqual([carrier.id]);
      const second = build(Z, 1, { blob: bytes });
      expect(node.receive(second)).toMatchObject([{ type: 'apply', envelope: { id: second.id } }]);
      node.settle();
    });

    it('a commit carrying the blob inline releases those waiting for it', () => {
      const node = new Harness();
      const waiting = build(X, 1, { blob: bytes });
      const carrier = build(Y, 1, { blob: bytes, inline: true });
      node.receive(waiting);
      expect(appliedIds(node.receive(carrier, C))).toEqual([carrier.id, waiting.id]);
      node.settle();
    });
  });

  describe('refusals', () => {
    it('refuses an envelope whose id does not match its body, and does not take it as seen', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const other = build(X, 2);
      const forged: Built = { ...x1, envelope: { id: other.id, body: x1.envelope.body } };
      expect(node.receive(forged)).toEqual([]);
      expect(node.delivery.counters.invalid).toBe(1);
      expect(node.delivery.seen(other.id)).toBe(false);
      // The real x2 under that id still comes through.
      node.receive(x1);
      expect(appliedIds(node.receive(other))).toEqual([other.id]);
    });

    it('refuses a body that is not a canonical commit even when its id is its hash', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const body = JSON.stringify(JSON.parse(x1.envelope.body), null, 1);
      expect(node.receive({ ...x1, envelope: { id: sha256(body) as CommitId, body } })).toEqual([]);
      expect(node.receive({ ...x1, envelope: { id: sha256('{}') as CommitId, body: '{}' } })).toEqual([]);
      expect(node.delivery.counters.invalid).toBe(2);
    });

    it('refuses a fork: another commit with the (origin, seq) of one applied or being applied', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      const fork1 = build(X, 1, { key: 'other' });
      expect(fork1.id).not.toBe(x1.id);
      node.receive(x1);
      expect(node.receive(fork1, C)).toEqual([]);
      node.settle();
      expect(node.receive(fork1, C)).toEqual([]);
      expect(node.delivery.counters.invalid).toBe(2);
      expect(node.storage.log.map((entry) => entry.id)).toEqual([x1.id]);
    });

    it('refuses a commit that claims to come from this node', () => {
      const node = new Harness();
      expect(node.receive(build(A, 1))).toEqual([]);
      expect(node.delivery.counters.invalid).toBe(1);
    });
  });

  describe('anti-entropy', () => {
    it('answers a sync with what the asker lacks, in bounded batches, with its own revision', () => {
      const node = new Harness({ syncBatchCommitsMax: 2 });
      const held = [build(X, 1), build(Y, 1), build(X, 2)];
      for (const built of held) node.storage.add(built.envelope);
      const first = node.run(() => node.delivery.onSync(B, {}));
      expect(sentTo(first, B, 'sync_batch')).toEqual([
        {
          type: 'sync_batch',
          envelopes: [held[0]?.envelope, held[1]?.envelope],
          more: true,
          revision: { [X]: 2, [Y]: 1 },
        },
      ]);
      expect(syncsTo(first, B)).toEqual([]); // the asker has nothing we lack
      const rest = node.run(() => node.delivery.onSync(C, { [X]: 1, [Y]: 1 }));
      expect(sentTo(rest, C, 'sync_batch')).toMatchObject([{ envelopes: [held[2]?.envelope], more: false }]);
    });

    it('asks back an asker that holds something it lacks (push-pull)', () => {
      const node = new Harness();
      const outputs = node.run(() => node.delivery.onSync(B, { [X]: 4 }));
      expect(sentTo(outputs, B, 'sync_batch')).toHaveLength(1);
      expect(syncsTo(outputs, B)).toEqual([{}]);
    });

    it('after a batch with more=true, asks for the next only once all its commits are applied', () => {
      const node = new Harness();
      const [x1, x2, y1] = [build(X, 1), build(X, 2), build(Y, 1)];
      const batch = node.run(() =>
        node.delivery.onSyncBatch(B, [x1.envelope, x2.envelope, y1.envelope], true),
      );
      expect(appliedIds(batch)).toEqual([x1.id, x2.id, y1.id]);
      expect(syncsTo(batch, B)).toEqual([]);
      // Not while the follow-up is awaited, by anti-entropy either.
      node.storage.add(node.applying.shift() as Envelope);
      expect(
        syncsTo(
          node.run(() => node.delivery.applied(x1.id)),
          B,
        ),
      ).toEqual([]);
      node.linked = [B];
      expect(syncsTo(node.tick(), B)).toEqual([]);
      expect(syncsTo(node.settle(), B)).toEqual([{ [X]: 2, [Y]: 1 }]);
      expect(node.delivery.counters).toMatchObject({ syncBatchesReceived: 1, commitsPulled: 3 });
    });

    it('commits pulled by anti-entropy are not forwarded as broadcast', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      node.run(() => node.delivery.onSyncBatch(B, [x1.envelope], false));
      node.storage.add(node.applying.shift() as Envelope);
      expect(node.delivery.applied(x1.id)?.source).toEqual({ kind: 'sync' });
    });

    it('a batch without more ends the exchange; a batch of nothing new with more asks again at once', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      expect(
        syncsTo(
          node.run(() => node.delivery.onSyncBatch(B, [x1.envelope], false)),
          B,
        ),
      ).toEqual([]);
      expect(syncsTo(node.settle(), B)).toEqual([]);
      expect(
        syncsTo(
          node.run(() => node.delivery.onSyncBatch(B, [x1.envelope], true)),
          B,
        ),
      ).toEqual([{ [X]: 1 }]);
    });

    it('forgets the follow-up of a peer whose link went down', () => {
      const node = new Harness();
      node.run(() => node.delivery.onSyncBatch(B, [build(X, 1).envelope], true));
      node.delivery.linkDown(B);
      node.linked = [C];
      expect(syncsTo(node.settle(), B)).toEqual([]);
    });

    // Regression: commits of a batch that wait (here for a blob being fetched) must hold back the
    // next sync too, or the peer answers with the same batch again and again while the blob arrives.
    it('after a batch with more=true whose commits wait for a blob, waits for them before asking again', () => {
      const node = new Harness();
      const bytes = Buffer.from('a large blob, pulled by hash');
      const x1 = build(X, 1, { blob: bytes });
      const x2 = build(X, 2);
      const batch = node.run(() => node.delivery.onSyncBatch(B, [x1.envelope, x2.envelope], true));
      expect(batch).toContainEqual({ type: 'fetch_blobs', from: B, hashes: [sha256(bytes)] });
      // The loop: the same batch again is all duplicates, and the next sync goes out at once.
      const again = node.run(() => node.delivery.onSyncBatch(B, [x1.envelope, x2.envelope], true));
      expect(syncsTo([...batch, ...again], B)).toEqual([]);
    });

    it('apply_failed recounts what is known from the store, so that the commit is asked for again', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      node.receive(x1);
      expect(
        syncsTo(
          node.run(() => node.delivery.linkUp(C)),
          C,
        ),
      ).toEqual([{ [X]: 1 }]);
      node.failOldest();
      expect(node.delivery.counters.applyFailed).toBe(1);
      expect(node.delivery.seen(x1.id)).toBe(false);
      expect(
        syncsTo(
          node.run(() => node.delivery.linkUp(B)),
          B,
        ),
      ).toEqual([{}]);
      expect(appliedIds(node.receive(x1, C))).toEqual([x1.id]);
      node.settle();
      expect(node.storage.revision()).toEqual({ [X]: 1 });
    });

    it('apply_failed of a commit that others were handed out after: they fail too, then all come again', () => {
      const node = new Harness();
      const [x1, x2] = [build(X, 1), build(X, 2)];
      node.receive(x2);
      node.receive(x1);
      expect(node.handedOut).toEqual([x1.id, x2.id]);
      node.failOldest();
      node.failOldest(); // the store refuses x2 too: its predecessor is not there
      expect(node.delivery.scheduledCount()).toBe(0);
      expect(appliedIds(node.receive(x1))).toEqual([x1.id]);
      expect(appliedIds(node.receive(x2))).toEqual([x2.id]);
      node.settle();
    });

    it('a failed apply from a batch with more=true settles the follow-up too', () => {
      const node = new Harness();
      const x1 = build(X, 1);
      node.run(() => node.delivery.onSyncBatch(B, [x1.envelope], true));
      expect(syncsTo(node.failOldest(), B)).toEqual([{}]);
    });

    it('reconciles with a new link at once, and with a random linked peer every antiEntropyIntervalMs', () => {
      let draw = 0.9;
      const node = new Harness({ antiEntropyIntervalMs: 1000, syncTimeoutMs: 10_000 }, () => draw);
      expect(
        syncsTo(
          node.run(() => node.delivery.linkUp(C)),
          C,
        ),
      ).toEqual([{}]);
      // C has a request in flight, so the first round asks B, whatever the draw.
      const first = node.tick();
      expect(syncsTo(first, B)).toEqual([{}]);
      expect(syncsTo(first, C)).toEqual([]);
      expect(node.tick(999)).toEqual([]);
      // A round is due, but both have a request in flight.
      expect(node.tick(1)).toEqual([]);
      node.run(() => node.delivery.onSyncBatch(B, [], false));
      node.run(() => node.delivery.onSyncBatch(C, [], false));
      draw = 0;
      const second = node.tick(1000);
      expect(syncsTo(second, B)).toEqual([{}]);
      expect(syncsTo(second, C)).toEqual([]);
      node.run(() => node.delivery.onSyncBatch(B, [], false));
      draw = 0.99;
      expect(syncsTo(node.tick(1000), C)).toEqual([{}]);
    });

    it('gives up a sync request unanswered after syncTimeoutMs, and asks again', () => {
      const node = new Harness({ antiEntropyIntervalMs: 1000, syncTimeoutMs: 5000 });
      node.linked = [B];
      expect(syncsTo(node.tick(), B)).toHaveLength(1);
      const later: VersionVector[] = [];
      const from = node.clock.now();
      while (later.length === 0) later.push(...syncsTo(node.tick(100), B));
      expect(node.clock.now() - from).toBeGreaterThan(5000);
      expect(node.clock.now() - from).toBeLessThanOrEqual(6000);
    });

    // Regression (fixed in dd6383f): `known` grows only with remote commits, so a sync asked without
    // this node's own commits since its start, peers sent them back, and past one batch the exchange
    // never ended (more=true with nothing new). Also: an asker is not "ahead" for holding our commits.
    it('asks with a revision that includes the commits this node wrote since it started', () => {
      const node = new Harness();
      for (const seq of [1, 2, 3]) node.storage.add(build(A, seq).envelope);
      expect(
        syncsTo(
          node.run(() => node.delivery.linkUp(B)),
          B,
        ),
      ).toEqual([{ [A]: 3 }]);
    });

    it('does not ask back an asker that holds only what this node wrote itself', () => {
      const node = new Harness();
      for (const seq of [1, 2]) node.storage.add(build(A, seq).envelope);
      const outputs = node.run(() => node.delivery.onSync(B, { [A]: 2 }));
      expect(sentTo(outputs, B, 'sync_batch')).toMatchObject([{ envelopes: [], more: false }]);
      expect(syncsTo(outputs, B)).toEqual([]);
    });
  });

  describe('bounds', () => {
    it('drops a commit that waited longer than pendingTtlMs; it can be received again', () => {
      const node = new Harness({ pendingTtlMs: 60_000 });
      const [x1, x2] = [build(X, 1), build(X, 2)];
      node.receive(x2);
      node.tick(60_000 - node.timing.tickIntervalMs);
      node.tick(node.timing.tickIntervalMs);
      expect(node.delivery.pendingCount()).toBe(1);
      node.tick(1);
      expect(node.delivery.pendingCount()).toBe(0);
      expect(node.delivery.counters.pendingDropped).toBe(1);
      expect(node.delivery.seen(x2.id)).toBe(false);
      expect(appliedIds(node.receive(x1))).toEqual([x1.id]);
      expect(appliedIds(node.receive(x2))).toEqual([x2.id]);
      node.settle();
    });

    it('holds at most pendingCommitsMax waiting commits; beyond, new ones are dropped', () => {
      const node = new Harness({ pendingCommitsMax: 2 });
      node.receive(build(X, 2));
      node.receive(build(X, 3));
      const y2 = build(Y, 2);
      expect(node.receive(y2)).toEqual([]);
      expect(node.delivery.pendingCount()).toBe(2);
      expect(node.delivery.counters.pendingDropped).toBe(1);
      expect(node.delivery.seen(y2.id)).toBe(false);
      // One that waits for nothing is not held back by the bound.
      expect(appliedIds(node.receive(build(Z, 1)))).toHaveLength(1);
    });
  });

  it('measures the replication delay of recent commits from their HLC wall time', () => {
    const node = new Harness();
    node.receive(build(X, 1, { wall: start - 300 }));
    node.receive(build(Y, 1, { wall: start - 100 }));
    node.settle();
    expect(node.delivery.replicationDelayMs()).toBe(200);
    node.clock.advance(10_001);
    expect(node.delivery.replicationDelayMs()).toBe(0);
  });
});
