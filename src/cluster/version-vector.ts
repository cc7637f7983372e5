import type { NodeId } from '../core/ids.js';

/**
 * A version vector: for each origin, the highest seq applied. Seqs of one origin are applied
 * without gaps (the log refuses a gap), so the entry is also the highest *contiguous* seq, and
 * "what do you lack" is answered per origin by everything above it (scuttlebutt reconciliation,
 * van Renesse et al., "Efficient Reconciliation and Flow Control for Anti-Entropy Protocols", 2008).
 */
export type VersionVector = Record<string, number>;

export function seqOf(vector: VersionVector, origin: NodeId): number {
  return vector[origin] ?? 0;
}

/** True when `a` holds something `b` lacks. */
export function isAheadOf(a: VersionVector, b: VersionVector): boolean {
  for (const [origin, seq] of Object.entries(a)) if (seq > (b[origin] ?? 0)) return true;
  return false;
}

/** How many commits `b` lacks that `a` holds. */
export function commitsBehind(a: VersionVector, b: VersionVector): number {
  let behind = 0;
  for (const [origin, seq] of Object.entries(a)) behind += Math.max(0, seq - (b[origin] ?? 0));
  return behind;
}

export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const merged: VersionVector = { ...a };
  for (const [origin, seq] of Object.entries(b)) if (seq > (merged[origin] ?? 0)) merged[origin] = seq;
  return merged;
}
