import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StrataError } from '../core/errors.js';
import { BlobStore, overflowBytesDrainMax } from './blob-store.js';
import { NodeDatabase } from './database.js';

/**
 * The real file system, with one seam: a hook that runs just before a rename, so a test can make
 * a concurrent release() land at the one await where the interleaving matters (no timing games).
 */
const seam = vi.hoisted(() => ({ beforeRename: undefined as ((path: string) => Promise<void>) | undefined }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rename: async (from: string, to: string) => {
      const hook = seam.beforeRename;
      if (hook) {
        seam.beforeRename = undefined;
        await hook(from);
      }
      return actual.rename(from, to);
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
  seam.beforeRename = undefined;
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
    const stored = store.get(huge.hash);
    expect(stored).toMatchObject({ hash: huge.hash, size: 1024 * 1024 + 1, path: blobPath(huge.hash) });
    expect(stored?.data).toBeUndefined();
  });

  it('refuses inline bytes that no longer match their hash, until a write brings them again', async () => {
    const small = await store.fromBuffer(Buffer.from('hello'));
    store.register(small);
    const heard: string[] = [];
    store.onDamage((hash, reason, first) => heard.push(`${hash}: ${reason}${first ? '' : ' (again)'}`));
    database.db.prepare('UPDATE blobs SET data = ? WHERE hash = ?').run(Buffer.from('jello'), small.hash);
    expectDamaged(() => store.get(small.hash), small.hash, /in the database do not hash/);
    expectDamaged(() => store.get(small.hash), small.hash, /in the database do not hash/);
    expect(heard).toEqual([
      `${small.hash}: its bytes in the database do not hash to it`,
      `${small.hash}: its bytes in the database do not hash to it (again)`,
    ]);
    expect(store.held(small.hash)).toBeUndefined();
    expect(store.has(small.hash)).toBe(true);

    store.register(await store.fromBuffer(Buffer.from('hello')));
    expect(store.get(small.hash)?.data?.toString()).toBe('hello');
    expect(store.held(small.hash)).toEqual({ hash: small.hash, size: 5 });
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
    // The second upload finds the file already placed and puts its own copy in its place; the
    // first upload's write is refused and released exactly then.
    let released: Promise<void> | undefined;
    seam.beforeRename = async (path) => {
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

function expectDamaged(read: () => unknown, hash: string, reason: RegExp): void {
  let thrown: unknown;
  try {
    read();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(StrataError);
  expect((thrown as StrataError).code).toBe('STRATA_DAMAGED');
  expect((thrown as StrataError).message).toMatch(reason);
  expect((thrown as StrataError).details).toEqual({ blob: hash });
}

/** Overwrites `length` bytes at `at` in a file, keeping its size. */
function scribble(path: string, at: number, length = 1): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(length, 0x5a), 0, length, at);
  } finally {
    closeSync(fd);
  }
}

describe('damaged file blobs', () => {
  let heard: string[];
  beforeEach(() => {
    heard = [];
    store.onDamage((hash, reason, first) =>
      heard.push(`${hash.slice(0, 8)}: ${reason}${first ? '' : ' (again)'}`),
    );
  });

  function setAside(): string[] {
    const damaged = join(blobsDir, '.damaged');
    return existsSync(damaged) ? readdirSync(damaged) : [];
  }

  it('refuses a file read whole that does not hash to its id, and sets it aside', async () => {
    const blob = await store.fromBuffer(bytes(100_000, 21));
    store.register(blob);
    scribble(blobPath(blob.hash), 50_000);
    expectDamaged(() => store.get(blob.hash), blob.hash, /its file does not hash to it/);
    expect(existsSync(blobPath(blob.hash))).toBe(false);
    expect(setAside()).toEqual([expect.stringMatching(new RegExp(`^${blob.hash}\\.\\d+$`))]);
    expect(heard).toEqual([`${blob.hash.slice(0, 8)}: its file does not hash to it`]);
    // Missing from now on, as far as uploads and peers are concerned.
    expect(store.held(blob.hash)).toBeUndefined();
    expectDamaged(() => store.get(blob.hash), blob.hash, /its file is missing/);
    expect(heard).toEqual([
      `${blob.hash.slice(0, 8)}: its file does not hash to it`,
      `${blob.hash.slice(0, 8)}: its file is missing (again)`,
    ]);
    // Stored again, it is served again.
    const again = await store.fromBuffer(bytes(100_000, 21));
    store.register(again);
    await store.release(again);
    expect(store.get(blob.hash)?.data?.equals(bytes(100_000, 21))).toBe(true);
  });

  it('refuses a missing or cut-short file, even one cached by an earlier read', async () => {
    const huge = await store.fromBuffer(bytes(1024 * 1024 + 10, 22));
    store.register(huge);
    expect(store.get(huge.hash)?.path).toBe(blobPath(huge.hash));
    truncateSync(blobPath(huge.hash), 1000);
    expectDamaged(() => store.get(huge.hash), huge.hash, /holds 1000 bytes, not 1048586/);
    const other = await store.fromBuffer(bytes(100_000, 23));
    store.register(other);
    rmSync(blobPath(other.hash));
    expectDamaged(() => store.get(other.hash), other.hash, /its file is missing/);
    expect(heard).toHaveLength(2);
  });

  it('cuts a whole stream short before its last bytes when the file does not hash to its id; a range is served', async () => {
    const data = bytes(3 * 1024 * 1024, 24);
    const huge = await store.fromBuffer(data);
    store.register(huge);
    scribble(blobPath(huge.hash), 2 * 1024 * 1024);
    const stored = store.get(huge.hash);
    if (!stored?.stream) throw new Error('expected a file blob');
    // A range is checked for the file's size only.
    const range = await buffer(stored.stream(0, 1023));
    expect(range.equals(data.subarray(0, 1024))).toBe(true);

    let received = 0;
    let thrown: unknown;
    try {
      for await (const chunk of stored.stream(0, data.length - 1)) received += (chunk as Buffer).length;
    } catch (error) {
      thrown = error;
    }
    expect((thrown as StrataError).code).toBe('STRATA_DAMAGED');
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(data.length);
    expect(setAside()).toHaveLength(1);
    expect(store.held(huge.hash)).toBeUndefined();
  });

  it('streams an intact file whole, and a new upload of the bytes repairs a damaged copy', async () => {
    const data = bytes(2 * 1024 * 1024, 25);
    const huge = await store.fromBuffer(data);
    store.register(huge);
    const stored = store.get(huge.hash);
    expect((await buffer(stored?.stream?.(0, data.length - 1) as Readable)).equals(data)).toBe(true);

    scribble(blobPath(huge.hash), 10);
    // An upload replaces a file that is there (damaged, though not read yet) with its own copy.
    const again = await store.ingest(source(data, 64 * 1024).iterable, 16 * 1024 * 1024);
    store.register(again);
    await store.release(again);
    const repaired = store.get(huge.hash);
    expect((await buffer(repaired?.stream?.(0, data.length - 1) as Readable)).equals(data)).toBe(true);
    expect(heard).toEqual([]);
  });

  it('does not set aside a good copy that an upload placed while a damaged one was streaming', async () => {
    const data = bytes(2 * 1024 * 1024, 26);
    const huge = await store.fromBuffer(data);
    store.register(huge);
    scribble(blobPath(huge.hash), 10);
    const stream = store.get(huge.hash)?.stream?.(0, data.length - 1) as Readable;
    const again = await store.ingest(source(data, 64 * 1024).iterable, 16 * 1024 * 1024);
    store.register(again);
    await store.release(again);
    // The stream read the damaged file through its descriptor, and fails; the good file stays.
    await expect(buffer(stream)).rejects.toMatchObject({ code: 'STRATA_DAMAGED' });
    expect(setAside()).toEqual([]);
    expect(readFileSync(blobPath(huge.hash)).equals(data)).toBe(true);
    expect(store.held(huge.hash)).toEqual({ hash: huge.hash, size: data.length });
  });
});
