import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { StrataError } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import type { VersionRow } from './derived.js';
import type { Snapshot } from './snapshot.js';
import { Store, type WriteOp, type WriteRequest } from './store.js';

/**
 * DESIGN §1.1: every table but the log is an index, and rebuilding it from the log gives the same
 * state. Random histories go through the real write path (preconditions, parents, retractions,
 * group commit); the digest and every read must be the same after `reindex`.
 */
const start = Date.UTC(2026, 0, 1);
const minute = 60_000;
const day = 24 * 60 * minute;
const buckets = ['alpha', 'beta'] as const;
const keys = ['k1', 'k2', 'k3'] as const;
const values = ['a', 'b', 'c', 'same', ''] as const;

type Condition = 'none' | 'ifMatchWinner' | 'ifMatchAny' | 'ifNoneMatch' | 'ifExists';

type OpSpec =
  | {
      kind: 'put' | 'delete';
      bucket: (typeof buckets)[number];
      key: (typeof keys)[number];
      value: (typeof values)[number];
      /** Minutes from now; undefined = the commit's own time. */
      effectiveMinutes: number | undefined;
      condition: Condition;
      pick: number;
    }
  | { kind: 'retract'; pick: number };

type Action = { type: 'write'; requests: OpSpec[][] } | { type: 'clock'; deltaMs: number };

const writeOpSpec: fc.Arbitrary<OpSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constantFrom('put' as const, 'put' as const, 'put' as const, 'delete' as const),
      bucket: fc.constantFrom(...buckets),
      key: fc.constantFrom(...keys),
      value: fc.constantFrom(...values),
      effectiveMinutes: fc.option(
        fc.oneof(fc.integer({ min: -10, max: 10 }), fc.integer({ min: -3 * 24 * 60, max: 3 * 24 * 60 })),
        { nil: undefined, freq: 2 },
      ),
      condition: fc.oneof(
        { weight: 6, arbitrary: fc.constant<Condition>('none') },
        {
          weight: 4,
          arbitrary: fc.constantFrom<Condition>('ifMatchWinner', 'ifMatchAny', 'ifNoneMatch', 'ifExists'),
        },
      ),
      pick: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retract' as const), pick: fc.nat() }) },
);

/** Mostly single-op commits, some multi-op ones (which are refused whole if one op is). */
const request = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(writeOpSpec).map((specs): OpSpec[] => specs) },
  { weight: 1, arbitrary: fc.array(writeOpSpec, { minLength: 2, maxLength: 3 }) },
);

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('write' as const),
      // Up to three requests submitted together, so that some share a group-commit batch.
      requests: fc.array(request, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    // Mostly forward, sometimes backwards: the HLC must keep the log ordered anyway.
    arbitrary: fc.record({
      type: fc.constant('clock' as const),
      deltaMs: fc.integer({ min: -minute, max: 3 * minute }),
    }),
  },
);

interface Observed {
  digest: string;
  reads: unknown[];
}

function withoutCursor(row: VersionRow | undefined): Omit<VersionRow, 'cursor'> | undefined {
  if (!row) return undefined;
  const { cursor: _cursor, ...rest } = row;
  return rest;
}

function observe(store: Store, snapshot: Snapshot, versions: readonly VersionId[], now: number): Observed {
  const effectiveTimes = new Set<number>([start - day, start, start + 5 * minute, now, now + 4 * day]);
  for (const id of versions) {
    const row = snapshot.version(id);
    if (row) effectiveTimes.add(row.effectiveAt);
  }
  const asOfs: Array<number | undefined> = [
    undefined,
    start - 1,
    start,
    start + minute,
    start + 5 * minute,
    now,
  ];
  const reads: unknown[] = [];
  for (const bucket of buckets) {
    for (const key of keys) {
      reads.push(snapshot.history(bucket, key).map((entry) => [entry.version, entry.retractedBy]));
      for (const at of effectiveTimes) {
        for (const asOf of asOfs) {
          const { winner, conflicts } = snapshot.read(bucket, key, { at, asOf });
          reads.push({
            bucket,
            key,
            at,
            asOf,
            winner: withoutCursor(winner),
            conflicts: conflicts.map(withoutCursor),
          });
        }
      }
    }
    reads.push(
      snapshot.listKeys(bucket, { limit: 10 }).keys.map((listing) => [listing.key, listing.conflicts]),
    );
  }
  return { digest: store.digest(), reads };
}

async function toWriteOp(
  store: Store,
  spec: OpSpec,
  versions: readonly VersionId[],
  now: number,
): Promise<WriteOp> {
  if (spec.kind === 'retract') {
    // Mostly a put or delete; sometimes a retraction (refused) or a version that does not exist (refused).
    const retractable = versions.filter((id) => store.snapshot(now).version(id)?.kind !== 'retract');
    const pool = spec.pick % 5 === 0 ? versions : retractable;
    const target = pool.length > 0 ? pool[Math.floor(spec.pick / 5) % pool.length] : undefined;
    return { kind: 'retract', target: target ?? (`${'e'.repeat(64)}.0` as VersionId) };
  }
  const effectiveAt =
    spec.effectiveMinutes === undefined ? undefined : Math.max(0, now + spec.effectiveMinutes * minute);
  const conditions: { ifMatch?: VersionId; ifNoneMatch?: boolean; ifExists?: boolean } = {};
  switch (spec.condition) {
    case 'ifMatchWinner': {
      const winner = store.snapshot(now).read(spec.bucket, spec.key, { at: effectiveAt ?? now }).winner;
      if (winner) conditions.ifMatch = winner.version;
      break;
    }
    case 'ifMatchAny':
      if (versions.length > 0) conditions.ifMatch = versions[spec.pick % versions.length] as VersionId;
      break;
    case 'ifNoneMatch':
      conditions.ifNoneMatch = true;
      break;
    case 'ifExists':
      conditions.ifExists = true;
      break;
    case 'none':
      break;
  }
  if (spec.kind === 'delete') {
    const { ifNoneMatch: _ignored, ...deleteConditions } = conditions;
    return { kind: 'delete', bucket: spec.bucket, key: spec.key, effectiveAt, ...deleteConditions };
  }
  return {
    kind: 'put',
    bucket: spec.bucket,
    key: spec.key,
    blob: await store.blobs.fromBuffer(Buffer.from(spec.value)),
    contentType: 'text/plain',
    effectiveAt,
    ...conditions,
  };
}

async function runHistory(actions: readonly Action[]): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-reindex-'));
  const clock = new ManualClock(start);
  const store = new Store({ dataDir, clock });
  try {
    const versions: VersionId[] = [];
    let accepted = 0;
    for (const step of actions) {
      if (step.type === 'clock') {
        clock.advance(step.deltaMs);
        continue;
      }
      const requests: WriteRequest[] = [];
      for (const specs of step.requests) {
        const ops: WriteOp[] = [];
        for (const spec of specs) ops.push(await toWriteOp(store, spec, versions, clock.now()));
        requests.push({ ops, message: `step ${accepted}` });
      }
      const settled = await Promise.allSettled(requests.map((request) => store.write(request)));
      for (const outcome of settled) {
        if (outcome.status === 'fulfilled') {
          versions.push(...outcome.value.versions);
          accepted += 1;
        } else if (!(outcome.reason instanceof StrataError)) {
          throw outcome.reason;
        }
      }
    }

    const before = observe(store, store.snapshot(), versions, clock.now());
    const rebuilt = await store.reindex();
    expect(rebuilt.commits).toBe(accepted);
    expect(rebuilt.versions).toBe(versions.length);
    const after = observe(store, store.snapshot(), versions, clock.now());
    expect(after.digest).toBe(before.digest);
    expect(after.reads).toEqual(before.reads);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('reindex', () => {
  it('rebuilds the same digest and the same reads from the log, for random histories', async () => {
    await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 20 }), runHistory), {
      numRuns: 60,
    });
  });

  it('rebuilds the hotfix history of DESIGN §2 exactly', async () => {
    const put = (effectiveMinutes: number | undefined): OpSpec => ({
      kind: 'put',
      bucket: 'alpha',
      key: 'k1',
      value: 'a',
      effectiveMinutes,
      condition: 'none',
      pick: 0,
    });
    await runHistory([
      { type: 'write', requests: [[put(undefined)]] },
      { type: 'clock', deltaMs: minute },
      { type: 'write', requests: [[put(7 * 24 * 60)]] },
      { type: 'clock', deltaMs: minute },
      { type: 'write', requests: [[put(undefined)]] },
      { type: 'write', requests: [[{ kind: 'retract', pick: 0 }]] },
    ]);
  });
});
