/**
 * Seeded randomness for the search benchmark: the same seed gives the same corpus and the same
 * queries on every machine, so two runs (or Strata and PostgreSQL) see identical input.
 */

/** mulberry32 (Tommy Ettinger, public domain): a 32-bit state, fast, good enough for test data. */
export function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The finaliser of MurmurHash3: turns related integers (key, block, revision) into unrelated seeds. */
function mix32(value) {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A seed derived from several integers, order-sensitive. */
export function seedOf(...parts) {
  let h = 0x9e3779b9;
  for (const part of parts) h = mix32(h ^ mix32(part));
  return h;
}

/** An integer in [low, high]. */
export function between(random, low, high) {
  return low + Math.floor(random() * (high - low + 1));
}

export function pick(random, items) {
  return items[Math.floor(random() * items.length)];
}

/** Lookup-table resolution of the Zipf sampler: 2^20 slots give ranks of probability down to 1e-6. */
const zipfSlots = 1 << 20;

/**
 * Samples ranks 0..count-1 with probability ∝ 1/(rank+1)^exponent, by table lookup (one multiply
 * per draw: the corpus draws hundreds of millions of words). Ranks rarer than one slot fall back to
 * a uniform draw over the tail, which keeps every word reachable.
 */
export function zipfSampler(count, exponent) {
  const weights = Array.from({ length: count }, (_, rank) => 1 / (rank + 1) ** exponent);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const table = new Uint32Array(zipfSlots);
  let slot = 0;
  let cumulative = 0;
  for (let rank = 0; rank < count && slot < zipfSlots; rank += 1) {
    cumulative += weights[rank] / total;
    const end = Math.min(zipfSlots, Math.round(cumulative * zipfSlots));
    for (; slot < end; slot += 1) table[slot] = rank;
  }
  for (; slot < zipfSlots; slot += 1) table[slot] = count - 1;
  const lastRank = table[zipfSlots - 1];
  return (random) => {
    const rank = table[Math.floor(random() * zipfSlots)];
    // The last slot stands for the whole tail: spread it over the ranks the table could not hold.
    return rank === lastRank ? lastRank + Math.floor(random() * (count - lastRank)) : rank;
  };
}

/** Fisher–Yates, in place. */
export function shuffle(random, items) {
  for (let index = items.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [items[index], items[other]] = [items[other], items[index]];
  }
  return items;
}
