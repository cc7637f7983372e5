import { systemClock } from '../../src/core/clock.js';
import { Store } from '../../src/store/store.js';

/**
 * Fills a data directory with many small commits quickly, in-process, through the store's own
 * write path (group commit), without a server: seeding 100,000 commits over HTTP would take minutes.
 * The node started on the directory afterwards serves them as its own (its id is in the directory).
 */

export interface SeedOptions {
  dataDir: string;
  commits: number;
  bucket?: string;
  /** Writes in flight at once: large enough for group commits of ~1,000, bounded for memory. */
  wave?: number;
  /** Called after each wave with the number written so far. */
  progress?(written: number): void;
}

export interface SeedResult {
  nodeId: string;
  commits: number;
  ms: number;
  /** Origin → highest seq after seeding. */
  revision: Record<string, number>;
}

/** The bytes of the value written as commit `n` (so a test can read any of them back). */
export function seededValue(n: number): Buffer {
  return Buffer.from(`value of seeded commit ${n}\n`);
}

/**
 * One commit in this many holds text (indexed for search, which costs about as much again as the
 * rest of a write); the others are binary, so that seeding and catching up stay fast.
 */
export const seededTextEvery = 10;

function isText(n: number): boolean {
  return n % seededTextEvery === 0;
}

export function seededKey(n: number): string {
  return `seed/${String(n).padStart(7, '0')}.${isText(n) ? 'txt' : 'bin'}`;
}

export function seededContentType(n: number): string {
  return isText(n) ? 'text/plain' : 'application/octet-stream';
}

export async function seedCommits(options: SeedOptions): Promise<SeedResult> {
  const bucket = options.bucket ?? 'seeded';
  const wave = options.wave ?? 2_000;
  const started = performance.now();
  const store = new Store({ dataDir: options.dataDir, clock: systemClock });
  try {
    for (let first = 0; first < options.commits; first += wave) {
      const last = Math.min(options.commits, first + wave);
      const writes: Promise<unknown>[] = [];
      for (let n = first; n < last; n++) {
        writes.push(
          store.blobs.fromBuffer(seededValue(n)).then((blob) =>
            store.write({
              ops: [{ kind: 'put', bucket, key: seededKey(n), blob, contentType: seededContentType(n) }],
            }),
          ),
        );
      }
      await Promise.all(writes);
      options.progress?.(last);
    }
    return {
      nodeId: store.nodeId,
      commits: options.commits,
      ms: performance.now() - started,
      revision: store.revision(),
    };
  } finally {
    await store.close();
  }
}
