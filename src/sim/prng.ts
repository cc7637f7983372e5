import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/**
 * The simulator's only source of randomness: xoroshiro128+ from pure-rand, seeded from the run's
 * seed (STYLE §5). Every consumer (network, workload, each node's protocol) gets its own stream by
 * `fork()`, a jump of 2^64 steps, so that one consumer drawing more numbers does not shift what the
 * others draw: a change to the workload leaves the network's choices for the same seed alone.
 */
export class Prng {
  private constructor(private readonly generator: JumpableRandomGenerator) {}

  static seeded(seed: number): Prng {
    return new Prng(xoroshiro128plus(seed));
  }

  /** An independent stream; this one moves on past it. */
  fork(): Prng {
    const child = this.generator.clone();
    this.generator.jump();
    this.generator.jump();
    child.jump();
    return new Prng(child);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return uniformFloat64(this.generator);
  }

  /** Uniform integer in [from, to], both included. */
  int(from: number, to: number): number {
    return uniformInt(this.generator, from, to);
  }

  /** Uniform in [from, to). */
  between(from: number, to: number): number {
    return from + (to - from) * this.float();
  }

  chance(probability: number): boolean {
    return probability > 0 && this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** `count` distinct items in random order (all of them when there are fewer). */
  sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    const chosen: T[] = [];
    while (chosen.length < count && pool.length > 0) {
      const [item] = pool.splice(this.int(0, pool.length - 1), 1);
      chosen.push(item as T);
    }
    return chosen;
  }

  bytes(length: number): Buffer {
    const bytes = Buffer.alloc(length);
    for (let index = 0; index < length; index += 1) bytes[index] = this.int(0, 255);
    return bytes;
  }

  /** Exponential with the given mean: the gap between events of a Poisson process. */
  exponential(meanMs: number): number {
    return -Math.log(1 - this.float()) * meanMs;
  }
}

/** A seeded `() => number` in [0, 1), for code that takes a plain random function (tests, Replica). */
export function seededRandom(seed: number): () => number {
  const prng = Prng.seeded(seed);
  return () => prng.float();
}
