import type { Hlc, VersionId } from '../core/ids.js';

/** What the winner rule needs to know about one version of a key. */
export interface VersionNode {
  version: VersionId;
  kind: 'put' | 'delete' | 'retract';
  hlc: Hlc;
  effectiveAt: number;
  parents: readonly VersionId[];
  target?: VersionId;
}

export interface ReadPoint {
  /** Effective time: versions with effectiveAt ≤ at are candidates. */
  at: number;
  /** Exclusive upper bound on hlc (transaction time): see hlcUpperBound. */
  hlcBefore: string;
}

export interface Resolution<V extends VersionNode> {
  /** The candidate with the greatest (effectiveAt, hlc, version); may be a tombstone. */
  winner?: V;
  /** Heads among the candidates other than the winner, and not its ancestors. */
  conflicts: V[];
}

/**
 * The winner rule of DESIGN §2 "Reads", over every version of one key. Pure: the same versions
 * and read point give the same answer on every node.
 */
export function resolve<V extends VersionNode>(versions: readonly V[], point: ReadPoint): Resolution<V> {
  const known = versions.filter((v) => v.hlc < point.hlcBefore);
  const retracted = new Set<VersionId>();
  for (const v of known) if (v.kind === 'retract' && v.target) retracted.add(v.target);

  const candidates = known.filter(
    (v) => v.kind !== 'retract' && v.effectiveAt <= point.at && !retracted.has(v.version),
  );
  if (candidates.length === 0) return { conflicts: [] };

  let winner = candidates[0] as V;
  for (const v of candidates) if (compareVersions(v, winner) > 0) winner = v;

  const byId = new Map<VersionId, V>();
  for (const v of known) byId.set(v.version, v);
  // A candidate is a head unless some other candidate descends from it.
  const superseded = ancestors(candidates, byId);
  const winnerAncestors = ancestors([winner], byId);
  const conflicts = candidates.filter(
    (v) => v !== winner && !superseded.has(v.version) && !winnerAncestors.has(v.version),
  );
  conflicts.sort((a, b) => compareVersions(b, a));
  return { winner, conflicts };
}

/** Order of the winner rule: effective time, then transaction time, then version id. */
export function compareVersions(a: VersionNode, b: VersionNode): number {
  if (a.effectiveAt !== b.effectiveAt) return a.effectiveAt < b.effectiveAt ? -1 : 1;
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return 0;
}

/** Every strict ancestor of the given versions, following `parents` through the known versions. */
function ancestors<V extends VersionNode>(
  from: readonly V[],
  byId: ReadonlyMap<VersionId, V>,
): Set<VersionId> {
  const seen = new Set<VersionId>();
  const stack: VersionId[] = [];
  for (const v of from) stack.push(...v.parents);
  while (stack.length > 0) {
    const id = stack.pop() as VersionId;
    if (seen.has(id)) continue;
    seen.add(id);
    const parent = byId.get(id);
    if (parent) stack.push(...parent.parents);
  }
  return seen;
}
