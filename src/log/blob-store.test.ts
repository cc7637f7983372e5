import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StrataError } from '../core/errors.js';
import { BlobStore, overflowBytesDrainMax } from './blob-store.js';
import { NodeDatabase } from './database.js';

/**
 * The real file system, with one seam: a hook that runs just before an unlink, so a test can make
 * a concurrent release() land at the one await where the interleaving matters (no timing games).
 */
const seam = vi.hoisted(() => ({ beforeUnlink: undefined as ((path: string) => Promise<void>) | undefined }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    unlink: async (path: string) => {
      const hook = seam.beforeUnlink;
      if (hook) {
        seam.beforeUnlink = undefined;
        await hook(path);
      }
      return actual.unlink(path);
    },
  };
});

const inlineBytesMax = 64 * 1024;
let dir: string;
let database: NodeDatabase;
let blobsDir: string;
let store: BlobStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-blobs-'));
  database = new NodeDatabase(join(dir, 'strata.db'));
  blobsDir = join(dir, 'blobs');
  store = new BlobStore(blobsDir, database.db, { inlineBytesMax });
});

afterEach(async () => {
  seam.beforeUnlink = undefined;
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random bytes, so that content is not trivially compressible or repetitive. */
function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[index] = state & 0xff;
  }
  return out;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An async source of `total` bytes in chunks; counts how many chunks were pulled. */
function source(data: Buffer, chunkBytes: number, options: { throwAfterBytes?: number } = {}) {
  const state = { pulled: 0, finished: false };
  async function* generate(): AsyncGenerator<Uint8Array> {
    try {
      for (let offset = 0; offset < data.length; offset += chunkBytes) {
        if (options.throwAfterBytes !== undefined && offset >= options.throwAfterBytes) {
          throw new Error('client went away');
        }
        state.pulled += 1;
        // A view into a larger buffer, as stream chunks often are.
        yield data.subarray(offset, Math.min(offset + chunkBytes, data.length));
        await Promise.resolve();
      }
    } finally {
      state.finished = true;
    }
  }
  return { iterable: generate(), state };
}

/** Every file under blobs/, including blobs/.incoming. */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(path));
    else found.push(path);
  }
  return found;
}

function blobPath(hash: string): string {
  return join(blobsDir, hash.slice(0, 2), hash);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('BlobStore.ingest', () => {
  it('streams a multi-MB source to a file with the right hash and size', async () => {
    const data = bytes(5 * 1024 * 1024 + 123, 7);
    const { iterable, state } = source(data, 64 * 1024);
    const staged = await store.ingest(iterable, 16 * 1024 * 1024);
    expect(staged.hash).toBe(sha256(data));
    expect(staged.size).toBe(data.length);
    expect(staged.inline).toBeUndefined();
    expect(state.finished).toBe(true);
    const path = blobPath(staged.hash);
    expect(statSync(path).size).toBe(data.length);
    expect(sha256(readFileSync(path))).toBe(staged.hash);
    expect(filesUnder(join(blobsDir, '.incoming'))).toEqual([]);
    expect(filesUnder(blobsDir)).toEqual([path]);
  });

  it('keeps a blob up to the inline limit in memory and writes no file', async () => {
    for (const length of [0, 1, 1000, inlineBytesMax]) {
      const data = bytes(length, length + 3);
      const staged = await store.ingest(source(data, 4096).iterable, 1024 * 1024);
      expect(staged.hash).toBe(sha256(data));
      expect(staged.size).toBe(length);
      expect(staged.inline?.equals(data)).toBe(true);
    }
    expect(filesUnder(blobsDir)).toEqual([]);
  });

  it('goes to a file one byte past the inline limit', async () => {
    const data = bytes(inlineBytesMax + 1, 9);
    const staged = await store.ingest(source(data, 1000).iterable, 1024 * 1024);
    expect(staged.inline).toBeUndefined();
    expect(readFileSync(blobPath(staged.hash)).equals(data)).toBe(true);
  });

  it('accepts a synchronous iterable of chunks', async () => {
    const data = bytes(200_000, 4);
    const staged = await store.ingest([data.subarray(0, 10), data.subarray(10)], data.length);
    expect(staged.hash).toBe(sha256(data));
    expect(readFileSync(blobPath(staged.hash)).equals(data)).toBe(true);
  });

  it.each([
    ['while still in memory', 10_000, 500, 2_000],
    ['after spilling to a file', 3 * 1024 * 1024, 16 * 1024, 1024 * 1024],
  ])(
    'refuses a source over the limit (%s) with STRATA_TOO_LARGE and leaves no file',
    async (_when, total, chunkBytes, limit) => {
      const data = bytes(total, 5);
      const { iterable, state } = source(data, chunkBytes);
      const error = await rejection(store.ingest(iterable, limit));
      expect(error).toBeInstanceOf(StrataError);
      expect((error as StrataError).code).toBe('STRATA_TOO_LARGE');
      // It read the rest of the source (discarding it), so an HTTP client gets its 413 on a live connection.
      expect(state.finished).toBe(true);
      expect(state.pulled).toBe(Math.ceil(total / chunkBytes));
      expect(filesUnder(blobsDir)).toEqual([]);
    },
  );

  it('stops reading a source that goes far past the limit', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled += 1;
        yield chunk;
      }
    }
    const error = await rejection(store.ingest(endless(), chunk.length));
    expect((error as StrataError).code).toBe('STRATA_TOO_LARGE');
    // 1 MiB allowed, then at most overflowBytesDrainMax more read and discarded.
    expect(pulled).toBe(1 + overflowBytesDrainMax / chunk.length + 1);
    expect(filesUnder(blobsDir)).toEqual([]);
  });

  it('accepts a source of exactly the limit', async () => {
    const data = bytes(100_000, 8);
    const staged = await store.ingest(source(data, 7_000).iterable, data.length);
    expect(staged.size).toBe(data.length);
  });

  it('leaves nothing behind when the source throws midway, and rethrows its error', async () => {
    const data = bytes(2 * 1024 * 1024, 6);
    const { iterable } = source(data, 32 * 1024, { throwAfterBytes: 1024 * 1024 });
    const error = await rejection(store.ingest(iterable, 16 * 1024 * 1024));
    expect((error as Error).message).toBe('client went away');
    expect(filesUnder(blobsDir)).toEqual([]);
  });

  it('leaves nothing behind when a small source throws before spilling', async () => {
    const data = bytes(10_000, 6);
    const { iterable } = source(data, 1_000, { throwAfterBytes: 5_000 });
    await expect(store.ingest(iterable, 1024 * 1024)).rejects.toThrow('client went away');
    expect(filesUnder(blobsDir)).toEqual([]);
  });
});

describe('BlobStore.fromBuffer', () => {
  it('keeps small buffers inline and writes large ones to a file', async () => {
    const small = bytes(100, 2);
    const large = bytes(inlineBytesMax * 2, 3);
    const stagedSmall = await store.fromBuffer(small);
    const stagedLarge = await store.fromBuffer(large);
    expect(stagedSmall.inline?.equals(small)).toBe(true);
    expect(stagedLarge.inline).toBeUndefined();
    expect(stagedLarge.hash).toBe(sha256(large));
    expect(filesUnder(blobsDir)).toEqual([blobPath(stagedLarge.hash)]);
  });
});

describe('BlobStore.register and get', () => {
  it('stores inline blobs in the database and file blobs by path', async () => {
    const small = await store.fromBuffer(Buffer.from('hello'));
    const large = await store.fromBuffer(bytes(100_000, 11));
    expect(store.has(small.hash)).toBe(false);
    store.register(small);
    store.register(large);
    expect(store.get(small.hash)).toEqual({ hash: small.hash, size: 5, data: Buffer.from('hello') });
    // A file blob up to 1 MiB is read once and kept in memory; its path stays known.
    const fromFile = store.get(large.hash);
    expect(fromFile).toMatchObject({ hash: large.hash, size: 100_000, path: blobPath(large.hash) });
    expect(fromFile?.data?.equals(bytes(100_000, 11))).toBe(true);
    expect(store.get(sha256(Buffer.from('absent')))).toBeUndefined();
  });

  it('streams file blobs over 1 MiB from disk instead of keeping them in memory', async () => {
    const huge = await store.fromBuffer(bytes(1024 * 1024 + 1, 12));
    store.register(huge);
    expect(store.get(huge.hash)).toEqual({
      hash: huge.hash,
      size: 1024 * 1024 + 1,
      path: blobPath(huge.hash),
    });
  });

  it('detects inline bytes that no longer match their hash', async () => {
    const small = await store.fromBuffer(Buffer.from('hello'));
    store.register(small);
    database.db.prepare('UPDATE blobs SET data = ? WHERE hash = ?').run(Buffer.from('jello'), small.hash);
    expect(() => store.get(small.hash)).toThrow(/corruption/);
  });

  it('removes temporary files left by a crash when it starts', () => {
    const incoming = join(blobsDir, '.incoming');
    mkdirSync(incoming, { recursive: true });
    writeFileSync(join(incoming, 'leftover'), 'partial upload');
    new BlobStore(blobsDir, database.db, { inlineBytesMax });
    expect(readdirSync(incoming)).toEqual([]);
  });
});

describe('BlobStore.release', () => {
  it('removes a staged file that no commit names', async () => {
    const staged = await store.fromBuffer(bytes(100_000, 12));
    expect(existsSync(blobPath(staged.hash))).toBe(true);
    await store.release(staged);
    expect(existsSync(blobPath(staged.hash))).toBe(false);
    expect(filesUnder(blobsDir)).toEqual([]);
  });

  it('keeps a file that a commit registered', async () => {
    const staged = await store.fromBuffer(bytes(100_000, 13));
    store.register(staged);
    await store.release(staged);
    expect(existsSync(blobPath(staged.hash))).toBe(true);
  });

  it('keeps a file still staged by a second upload of the same content, until that one is released too', async () => {
    const data = bytes(100_000, 14);
    const first = await store.fromBuffer(data);
    const second = await store.ingest(source(data, 10_000).iterable, 1024 * 1024);
    expect(second.hash).toBe(first.hash);
    await store.release(first);
    expect(existsSync(blobPath(first.hash))).toBe(true);
    await store.release(second);
    expect(existsSync(blobPath(first.hash))).toBe(false);
  });

  it('does nothing for inline blobs', async () => {
    const staged = await store.fromBuffer(Buffer.from('x'));
    await expect(store.release(staged)).resolves.toBeUndefined();
  });

  it('keeps the file of an upload that completes while the first upload of the same content is released', async () => {
    const data = bytes(100_000, 15);
    const first = await store.fromBuffer(data);
    // The second upload finds the file already placed and discards its own temporary copy; the
    // first upload's write is refused and released exactly then.
    let released: Promise<void> | undefined;
    seam.beforeUnlink = async (path) => {
      // Started from another flow, as a refused write would: not awaited inside the placement.
      if (path.includes('.incoming')) released = store.release(first);
    };
    const second = await store.ingest(source(data, 10_000).iterable, 1024 * 1024);
    expect(second.hash).toBe(first.hash);
    expect(released).toBeDefined();
    await released;
    // The second upload is still staged: its commit is about to name this file.
    expect(existsSync(blobPath(second.hash))).toBe(true);
  });
});
