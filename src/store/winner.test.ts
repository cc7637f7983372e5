import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatHlc, hlcUpperBound } from '../core/hlc.js';
import type { NodeId, VersionId } from '../core/ids.js';
import { compareVersions, type ReadPoint, resolve, type VersionNode } from './winner.js';

const nodeA = 'aaaaaaaaaaaaaaaa' as NodeId;
const nodeB = 'bbbbbbbbbbbbbbbb' as NodeId;

interface Spec {
  /** Transaction time (HLC wall). */
  wall: number;
  /** Effective time; defaults to the transaction time. */
  at?: number;
  parents?: VersionNode[];
  kind?: VersionNode['kind'];
  target?: VersionNode;
  node?: NodeId;
  counter?: number;
}

function version(name: string, spec: Spec): VersionNode {
  const node: VersionNode = {
    version: name as VersionId,
    kind: spec.kind ?? 'put',
    hlc: formatHlc({ wall: spec.wall, counter: spec.counter ?? 0, node: spec.node ?? nodeA }),
    effectiveAt: spec.at ?? spec.wall,
    parents: (spec.parents ?? []).map((p) => p.version),
  };
  if (spec.target) node.target = spec.target.version;
  return node;
}

function retraction(name: string, target: VersionNode, wall: number): VersionNode {
  return version(name, { wall, kind: 'retract', target });
}

/** A read at effective time `at`, knowing the transactions up to `asOf` (default: everything). */
function point(at: number, asOf?: number): ReadPoint {
  return { at, hlcBefore: asOf === undefined ? '~' : hlcUpperBound(asOf) };
}

function names(resolution: { winner?: VersionNode; conflicts: VersionNode[] }) {
  return { winner: resolution.winner?.version, conflicts: resolution.conflicts.map((c) => c.version) };
}

describe('resolve: the winner rule', () => {
  it('has no winner and no conflicts when there are no candidates', () => {
    expect(resolve([], point(100))).toEqual({ conflicts: [] });
    const future = version('f', { wall: 10, at: 500 });
    expect(resolve([future], point(100))).toEqual({ conflicts: [] });
  });

  it('picks the greatest effective time first, whatever the transaction time', () => {
    const old = version('old', { wall: 100 });
    const current = version('current', { wall: 300, parents: [old] });
    // Written last but effective earlier: a retroactive correction does not change the present winner.
    const retro = version('retro', { wall: 400, at: 150, parents: [old] });
    const all = [old, current, retro];
    expect(resolve(all, point(1_000)).winner?.version).toBe('current');
    expect(names(resolve(all, point(200)))).toEqual({ winner: 'retro', conflicts: [] });
    expect(names(resolve(all, point(200, 399)))).toEqual({ winner: 'old', conflicts: [] });
  });

  it('breaks a tie in effective time by hlc, then by version id', () => {
    const first = version('v1', { wall: 100, at: 500 });
    const second = version('v2', { wall: 101, at: 500, parents: [first] });
    expect(resolve([second, first], point(500)).winner?.version).toBe('v2');
    const sameHlcLowId = version('a', { wall: 100, at: 500 });
    const sameHlcHighId = version('b', { wall: 100, at: 500 });
    expect(resolve([sameHlcHighId, sameHlcLowId], point(500)).winner?.version).toBe('b');
    expect(resolve([sameHlcLowId, sameHlcHighId], point(500)).winner?.version).toBe('b');
    // The hlc compares before the version id: a greater counter wins over a greater id.
    const bumped = version('0-low-id', { wall: 100, at: 500, counter: 1 });
    expect(resolve([sameHlcHighId, bumped], point(500)).winner?.version).toBe('0-low-id');
  });

  it('does not count a future-dated version before its time, and does by itself once it comes', () => {
    const current = version('current', { wall: 100 });
    const scheduled = version('scheduled', { wall: 200, at: 1_000, parents: [current] });
    expect(names(resolve([current, scheduled], point(999)))).toEqual({ winner: 'current', conflicts: [] });
    expect(names(resolve([current, scheduled], point(1_000)))).toEqual({
      winner: 'scheduled',
      conflicts: [],
    });
  });

  it('hides versions written after the asOf bound', () => {
    const first = version('first', { wall: 100 });
    const second = version('second', { wall: 200, parents: [first] });
    const both = [first, second];
    expect(resolve(both, point(5_000, 199)).winner?.version).toBe('first');
    expect(resolve(both, point(5_000, 200)).winner?.version).toBe('second');
    expect(resolve(both, point(5_000)).winner?.version).toBe('second');
    expect(resolve(both, point(5_000, 99))).toEqual({ conflicts: [] });
  });

  it('hides a retracted version only for reads whose transaction time is after the retraction', () => {
    const first = version('first', { wall: 100 });
    const bad = version('bad', { wall: 200, parents: [first] });
    const undo = retraction('undo', bad, 300);
    const all = [first, bad, undo];
    expect(names(resolve(all, point(1_000, 299)))).toEqual({ winner: 'bad', conflicts: [] });
    expect(names(resolve(all, point(1_000, 300)))).toEqual({ winner: 'first', conflicts: [] });
    expect(names(resolve(all, point(1_000)))).toEqual({ winner: 'first', conflicts: [] });
  });

  it('withdraws a scheduled version (cancelling a release), and a retraction is never a winner', () => {
    const current = version('current', { wall: 100 });
    const scheduled = version('scheduled', { wall: 200, at: 1_000, parents: [current] });
    const cancel = retraction('cancel', scheduled, 300);
    expect(names(resolve([current, scheduled, cancel], point(2_000)))).toEqual({
      winner: 'current',
      conflicts: [],
    });
    expect(resolve([scheduled, cancel], point(2_000))).toEqual({ conflicts: [] });
  });

  it('returns a tombstone winner as such', () => {
    const put = version('put', { wall: 100 });
    const tomb = version('tomb', { wall: 200, kind: 'delete', parents: [put] });
    const resolution = resolve([put, tomb], point(1_000));
    expect(resolution.winner?.version).toBe('tomb');
    expect(resolution.winner?.kind).toBe('delete');
    expect(resolution.conflicts).toEqual([]);
    expect(resolve([put, tomb], point(150)).winner?.version).toBe('put');
  });

  it('reports concurrent siblings as conflicts, newest first', () => {
    const root = version('root', { wall: 100 });
    const a = version('a', { wall: 200, parents: [root], node: nodeA });
    const b = version('b', { wall: 200, parents: [root], node: nodeB });
    const c = version('c', { wall: 150, parents: [root] });
    expect(names(resolve([root, a, b, c], point(1_000)))).toEqual({ winner: 'b', conflicts: ['a', 'c'] });
  });

  it('reports two unrelated roots as conflicts of each other', () => {
    const x = version('x', { wall: 100 });
    const y = version('y', { wall: 101 });
    expect(names(resolve([x, y], point(1_000)))).toEqual({ winner: 'y', conflicts: ['x'] });
  });

  it('never reports an ancestor of the winner as a conflict, even through non-candidates', () => {
    const root = version('root', { wall: 100 });
    const middle = version('middle', { wall: 200, at: 5_000, parents: [root] });
    const tip = version('tip', { wall: 300, at: 300, parents: [middle] });
    // `middle` is not a candidate at 1,000 (future-dated), but `root` is still tip's ancestor through it.
    expect(names(resolve([root, middle, tip], point(1_000)))).toEqual({ winner: 'tip', conflicts: [] });
    const chain = [version('c1', { wall: 1 })];
    for (let index = 2; index <= 6; index += 1) {
      chain.push(version(`c${index}`, { wall: index, parents: [chain[chain.length - 1] as VersionNode] }));
    }
    expect(names(resolve(chain, point(100)))).toEqual({ winner: 'c6', conflicts: [] });
  });

  it('does not report a superseded candidate as a conflict when a sibling of the winner supersedes it', () => {
    const root = version('root', { wall: 100 });
    const left = version('left', { wall: 200, parents: [root] });
    const leftChild = version('leftChild', { wall: 210, parents: [left] });
    const right = version('right', { wall: 300, parents: [root] });
    expect(names(resolve([root, left, leftChild, right], point(1_000)))).toEqual({
      winner: 'right',
      conflicts: ['leftChild'],
    });
  });

  it('keeps the hotfix of DESIGN §2 visible as a conflict when the staged release takes effect', () => {
    const today = 10_000;
    const releaseTime = 50_000;
    const r1 = version('R1', { wall: 1_000 });
    // R2 staged yesterday for the future, descending from R1.
    const r2 = version('R2', { wall: 5_000, at: releaseTime, parents: [r1] });
    // A blind hotfix today descends from today's winner, R1 (DESIGN §2 "Parents of a write").
    const parentsToday = resolve([r1, r2], point(today));
    expect(names(parentsToday)).toEqual({ winner: 'R1', conflicts: [] });
    const h = version('H', { wall: today, parents: [r1] });
    const all = [r1, r2, h];
    expect(names(resolve(all, point(today)))).toEqual({ winner: 'H', conflicts: [] });
    expect(names(resolve(all, point(releaseTime - 1)))).toEqual({ winner: 'H', conflicts: [] });
    expect(names(resolve(all, point(releaseTime)))).toEqual({ winner: 'R2', conflicts: ['H'] });
    expect(names(resolve(all, point(releaseTime + 1_000_000)))).toEqual({ winner: 'R2', conflicts: ['H'] });
  });

  it('clears the conflicts once a writer names all of them as parents', () => {
    const releaseTime = 50_000;
    const r1 = version('R1', { wall: 1_000 });
    const r2 = version('R2', { wall: 5_000, at: releaseTime, parents: [r1] });
    const h = version('H', { wall: 10_000, parents: [r1] });
    const atRelease = resolve([r1, r2, h], point(releaseTime));
    const merged = version('M', {
      wall: 20_000,
      at: releaseTime,
      parents: [atRelease.winner as VersionNode, ...atRelease.conflicts],
    });
    const all = [r1, r2, h, merged];
    expect(names(resolve(all, point(releaseTime)))).toEqual({ winner: 'M', conflicts: [] });
    // Before the merge was written, the conflict is still there: history is not rewritten.
    expect(names(resolve(all, point(releaseTime, 19_999)))).toEqual({ winner: 'R2', conflicts: ['H'] });
  });

  it('a merge that names only some siblings leaves the others as conflicts', () => {
    const root = version('root', { wall: 100 });
    const a = version('a', { wall: 200, parents: [root] });
    const b = version('b', { wall: 201, parents: [root] });
    const c = version('c', { wall: 202, parents: [root] });
    const merge = version('merge', { wall: 300, parents: [b, c] });
    expect(names(resolve([root, a, b, c, merge], point(1_000)))).toEqual({
      winner: 'merge',
      conflicts: ['a'],
    });
  });
});

describe('compareVersions', () => {
  it('orders by effective time, then hlc, then version id', () => {
    const base = version('m', { wall: 100, at: 100 });
    expect(compareVersions(base, version('m', { wall: 100, at: 100 }))).toBe(0);
    expect(compareVersions(base, version('a', { wall: 1, at: 101 }))).toBe(-1);
    expect(compareVersions(base, version('a', { wall: 99, at: 100 }))).toBe(1);
    expect(compareVersions(base, version('n', { wall: 100, at: 100 }))).toBe(-1);
  });
});

/** Random histories of one key, as a brute-force oracle sees them. */
const history = fc
  .array(
    fc.record({
      wall: fc.integer({ min: 1, max: 12 }),
      effectiveDelta: fc.integer({ min: -4, max: 6 }),
      parentPicks: fc.array(fc.nat(), { maxLength: 3 }),
      retract: fc.boolean(),
      tombstone: fc.boolean(),
      node: fc.constantFrom(nodeA, nodeB),
    }),
    { minLength: 1, maxLength: 10 },
  )
  .map((specs) => {
    const versions: VersionNode[] = [];
    specs.forEach((spec, index) => {
      const name = `v${String(index).padStart(2, '0')}`;
      const earlier = versions.filter((v) => v.kind !== 'retract');
      if (spec.retract && earlier.length > 0) {
        const target = earlier[(spec.parentPicks[0] ?? 0) % earlier.length] as VersionNode;
        versions.push(retraction(name, target, spec.wall + index));
        return;
      }
      const parents = [
        ...new Set(spec.parentPicks.map((pick) => earlier[pick % Math.max(1, earlier.length)])),
      ].filter((p): p is VersionNode => p !== undefined);
      versions.push(
        version(name, {
          wall: spec.wall + index,
          at: Math.max(0, spec.wall + index + spec.effectiveDelta),
          parents,
          kind: spec.tombstone ? 'delete' : 'put',
          node: spec.node,
        }),
      );
    });
    return versions;
  });

function ancestorsOf(version: VersionNode, byId: Map<string, VersionNode>): Set<string> {
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const parent of byId.get(id)?.parents ?? []) visit(parent);
  };
  for (const parent of version.parents) visit(parent);
  return seen;
}

describe('resolve (properties)', () => {
  it('agrees with a brute-force reading of DESIGN §2 and does not depend on input order', () => {
    fc.assert(
      fc.property(
        history,
        fc.integer({ min: 0, max: 30 }),
        fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
        fc.nat(),
        (versions, at, asOf, rotation) => {
          const readPoint = point(at, asOf);
          const result = resolve(versions, readPoint);

          const known = versions.filter((v) => asOf === undefined || Number(v.hlc.slice(0, 15)) <= asOf);
          const byId = new Map(known.map((v) => [v.version as string, v]));
          const withdrawn = new Set(known.filter((v) => v.kind === 'retract').map((v) => v.target));
          const candidates = known.filter(
            (v) => v.kind !== 'retract' && v.effectiveAt <= at && !withdrawn.has(v.version),
          );
          const expectedWinner = [...candidates].sort(compareVersions).at(-1);
          expect(result.winner?.version).toBe(expectedWinner?.version);

          if (expectedWinner) {
            const winnerAncestors = ancestorsOf(expectedWinner, byId);
            const expectedConflicts = candidates.filter(
              (v) =>
                v !== expectedWinner &&
                !winnerAncestors.has(v.version) &&
                !candidates.some((other) => ancestorsOf(other, byId).has(v.version)),
            );
            expect(result.conflicts.map((c) => c.version).sort()).toEqual(
              expectedConflicts.map((c) => c.version).sort(),
            );
          } else {
            expect(result.conflicts).toEqual([]);
          }

          const shift = rotation % versions.length;
          const rotated = [...versions.slice(shift), ...versions.slice(0, shift)].reverse();
          expect(names(resolve(rotated, readPoint))).toEqual(names(result));
        },
      ),
      { numRuns: 300 },
    );
  });
});
