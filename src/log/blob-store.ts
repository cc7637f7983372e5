import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { type FileHandle, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import { fail, StrataError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import type { BlobId } from '../core/ids.js';
import { Lru } from '../core/lru.js';
import type { Db } from './database.js';

/**
 * Bytes past the limit that are still read (and discarded) so that the refusal reaches the client
 * over a connection it can keep using; beyond this the connection is cut.
 */
export const overflowBytesDrainMax = 16 * 1024 * 1024;

/** Bytes of blobs kept in memory after a read: the hot assets of a few apps. */
const blobCacheBytesMax = 64 * 1024 * 1024;
/** File blobs up to this size are cached whole; larger ones are always streamed from disk. */
const cachedFileBytesMax = 1024 * 1024;

/** A blob whose bytes are durable (a synced file) or held in memory until its commit's transaction. */
export interface StagedBlob {
  hash: BlobId;
  size: number;
  /** Present for blobs up to the inline limit: they are stored in the database with their commit. */
  inline?: Buffer;
}

export interface StoredBlob {
  hash: BlobId;
  size: number;
  data?: Buffer;
  path?: string;
  /**
   * A file blob's bytes `start`..`end` (inclusive). A read of the whole file is checked against
   * the hash as it streams, and its last chunk is held back until the check passes: a copy that
   * fails ends the stream with STRATA_DAMAGED, so that a response is cut short rather than
   * completed with wrong bytes. A range is checked for the file's size only.
   */
  stream?: (start: number, end: number) => Readable;
}

/**
 * Called each time a read finds this node's copy of a blob damaged, after the copy was set aside;
 * `first` is true for the first such read since the blob was last stored.
 */
export type DamageListener = (hash: BlobId, reason: string, first: boolean) => void;

export interface BlobStoreOptions {
  /**
   * Blobs up to this size go into SQLite with their commit, sharing its fsync; a file per 1 KB
   * value would cost three fsyncs (file, rename, directory) per write. 64 KiB keeps rows small.
   */
  inlineBytesMax: number;
}

/**
 * Content-addressed blob storage. Large blobs are streamed to a temporary file while being hashed
 * (never held whole in memory), fsync'd, renamed to `<dir>/<2 hex>/<hash>`, and the directory is
 * fsync'd, all before the commit that names them is written.
 */
export class BlobStore {
  private readonly insert;
  private readonly lookup;
  private readonly temporaryDir: string;
  /** File blobs placed by uploads whose commits are not yet written: they must not be discarded. */
  private readonly staged = new Map<string, number>();
  /** Recently read blobs (inline bytes, or a file's path): app assets are read over and over. */
  private readonly recent = new Lru<string, StoredBlob>(
    blobCacheBytesMax,
    (blob) => 256 + (blob.data?.length ?? 0),
  );
  /** Placing and removing a hash's file are serialised per hash, so a removal never races a placement. */
  private readonly fileLocks = new Map<string, Promise<void>>();
  /** Inline blobs whose stored bytes failed their hash, until a write brings them again. */
  private readonly damagedInline = new Set<string>();
  /** Blobs found damaged since they were last stored (a damage is reported as first once). */
  private readonly damagedSeen = new Set<string>();
  private readonly damageListeners: DamageListener[] = [];
  private readonly damagedDir: string;
  private readonly state;

  constructor(
    private readonly dir: string,
    db: Db,
    private readonly options: BlobStoreOptions = { inlineBytesMax: 64 * 1024 },
  ) {
    this.temporaryDir = join(dir, '.incoming');
    this.damagedDir = join(dir, '.damaged');
    mkdirSync(this.temporaryDir, { recursive: true });
    // Uploads cut short by a crash leave temporary files behind; nothing refers to them.
    for (const name of readdirSync(this.temporaryDir)) rmSync(join(this.temporaryDir, name), { force: true });
    // An inline blob stored again replaces stored bytes that differ (they failed their hash: the
    // new ones were hashed on the way in); equal bytes leave the row untouched.
    this.insert = db.prepare(
      `INSERT INTO blobs (hash, size, data) VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET data = excluded.data
       WHERE blobs.data IS NOT NULL AND excluded.data IS NOT NULL AND blobs.data != excluded.data`,
    );
    this.lookup = db.prepare('SELECT hash, size, data FROM blobs WHERE hash = ?');
    this.state = db.prepare('SELECT size, data IS NOT NULL AS inline FROM blobs WHERE hash = ?');
  }

  /** Stages bytes already in memory (values sent inside a JSON commit). */
  async fromBuffer(bytes: Buffer): Promise<StagedBlob> {
    if (bytes.length <= this.options.inlineBytesMax) {
      return { hash: sha256(bytes) as BlobId, size: bytes.length, inline: bytes };
    }
    return this.ingest([bytes], Number.MAX_SAFE_INTEGER);
  }

  /**
   * Reads a stream to its end, hashing as it goes. Over `bytesMax` it stops reading, removes what
   * it wrote and fails with STRATA_TOO_LARGE; if the stream errors (client gone) it cleans up and
   * rethrows. Either way nothing is left behind.
   */
  async ingest(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    bytesMax: number,
  ): Promise<StagedBlob> {
    const hasher = createHash('sha256');
    const buffered: Buffer[] = [];
    let size = 0;
    let file: FileHandle | undefined;
    let temporaryPath: string | undefined;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > bytesMax) {
          // Read on and discard, so the client receives the 413 on a healthy connection; a body far
          // over the limit is cut off instead (leaving the loop destroys the stream).
          if (size - bytesMax > overflowBytesDrainMax) break;
          continue;
        }
        hasher.update(chunk);
        if (file) {
          await writeAll(file, chunk);
        } else {
          buffered.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if (size > this.options.inlineBytesMax) {
            temporaryPath = join(this.temporaryDir, randomUUID());
            file = await open(temporaryPath, 'wx', 0o600);
            for (const piece of buffered) await writeAll(file, piece);
            buffered.length = 0;
          }
        }
      }
      if (size > bytesMax) fail('STRATA_TOO_LARGE', `object exceeds the limit of ${bytesMax} bytes`);
      const hash = hasher.digest('hex') as BlobId;
      if (!file || !temporaryPath) return { hash, size, inline: Buffer.concat(buffered, size) };
      await file.sync();
      await file.close();
      file = undefined;
      // Counted before placing: from here on, a concurrent release of the same hash keeps the file.
      this.staged.set(hash, (this.staged.get(hash) ?? 0) + 1);
      try {
        await this.withFileLock(hash, () => this.place(temporaryPath as string, hash));
      } catch (error) {
        this.unstage(hash);
        throw error;
      }
      temporaryPath = undefined;
      return { hash, size };
    } finally {
      if (file) await file.close().catch(() => {});
      if (temporaryPath) await unlink(temporaryPath).catch(() => {});
    }
  }

  /** Records a staged blob; runs inside the transaction of the commit that names it. */
  register(blob: StagedBlob): void {
    this.insert.run(blob.hash, blob.size, blob.inline ?? null);
    if (blob.inline && this.damagedInline.delete(blob.hash)) this.damagedSeen.delete(blob.hash);
  }

  /**
   * A stored blob, or undefined when the store names no such hash. Bytes read whole are checked
   * against the hash (a cached copy was checked when read); a larger file is checked for its size
   * here and for its hash as it streams. A copy found damaged is set aside, the listeners are
   * told, and the read fails with STRATA_DAMAGED: this node never serves bytes that are not the
   * blob's, and an upload of the bytes (or a peer) brings them back.
   */
  get(hash: string): StoredBlob | undefined {
    const cached = this.recent.get(hash);
    if (cached?.data) return cached;
    if (cached) {
      this.checkSize(cached.hash, cached.size);
      return cached;
    }
    const row = this.lookup.get(hash) as { hash: BlobId; size: number; data: Buffer | null } | undefined;
    if (!row) return undefined;
    let blob: StoredBlob;
    if (row.data) {
      if (sha256(row.data) !== row.hash) {
        this.damagedInline.add(row.hash);
        this.damaged(row.hash, 'its bytes in the database do not hash to it');
      }
      blob = { hash: row.hash, size: row.size, data: row.data };
    } else {
      const path = this.checkSize(row.hash, row.size);
      const stream = (start: number, end: number) => this.streamFile(row.hash, row.size, start, end);
      if (row.size <= cachedFileBytesMax) {
        // Small enough to keep: served from memory next time instead of open/read/close per request.
        const fd = openSync(path, 'r');
        let data: Buffer;
        let inode: number;
        try {
          inode = fstatSync(fd).ino;
          data = readFileSync(fd);
        } finally {
          closeSync(fd);
        }
        if (sha256(data) !== row.hash) this.damaged(row.hash, 'its file does not hash to it', inode);
        blob = { hash: row.hash, size: row.size, data, path, stream };
      } else {
        blob = { hash: row.hash, size: row.size, path, stream };
      }
    }
    this.recent.set(hash, blob);
    return blob;
  }

  has(hash: string): boolean {
    return this.lookup.get(hash) !== undefined;
  }

  /**
   * The blob when this node holds its bytes: named by the store, not found damaged, and (for a
   * file) there with its size. A copy that an upload or a peer should bring again gives undefined.
   */
  held(hash: string): StagedBlob | undefined {
    const row = this.state.get(hash) as { size: number; inline: number } | undefined;
    if (!row) return undefined;
    const there = row.inline
      ? !this.damagedInline.has(hash)
      : statSync(this.pathOf(hash), { throwIfNoEntry: false })?.size === row.size;
    return there ? { hash: hash as BlobId, size: row.size } : undefined;
  }

  /** Calls `listener` each time a copy is found damaged (to log it, or to fetch the bytes from a peer). */
  onDamage(listener: DamageListener): void {
    this.damageListeners.push(listener);
  }

  /** The file's path, after checking that it is there with the blob's size. */
  private checkSize(hash: BlobId, size: number): string {
    const path = this.pathOf(hash);
    const found = statSync(path, { throwIfNoEntry: false });
    if (!found) this.damaged(hash, 'its file is missing');
    if (found.size !== size) this.damaged(hash, `its file holds ${found.size} bytes, not ${size}`, found.ino);
    return path;
  }

  private streamFile(hash: BlobId, size: number, start: number, end: number): Readable {
    let fd: number;
    try {
      fd = openSync(this.pathOf(hash), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.damaged(hash, 'its file is missing');
      throw error;
    }
    const inode = fstatSync(fd).ino;
    const file = createReadStream('', { fd, start, end });
    if (start !== 0 || end !== size - 1) return file;
    const hasher = createHash('sha256');
    let held: Buffer | undefined;
    const check = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hasher.update(chunk);
        const previous = held;
        held = chunk;
        done(null, previous);
      },
      flush: (done) => {
        if (hasher.digest('hex') !== hash) {
          try {
            this.damaged(hash, 'its file does not hash to it', inode);
          } catch (error) {
            done(error as Error);
            return;
          }
        }
        done(null, held);
      },
    });
    return pipeline(file, check, () => {});
  }

  /**
   * Sets a damaged copy aside (a file goes to `.damaged/`, kept for the operator to look at;
   * `inode` guards against moving a good copy that an upload placed meanwhile), tells the
   * listeners, and fails the read.
   */
  private damaged(hash: BlobId, reason: string, inode?: number): never {
    this.recent.delete(hash);
    const path = this.pathOf(hash);
    const found = statSync(path, { throwIfNoEntry: false });
    if (found && (inode === undefined || found.ino === inode)) {
      mkdirSync(this.damagedDir, { recursive: true });
      renameSync(path, join(this.damagedDir, `${hash}.${Date.now()}`));
    }
    const first = !this.damagedSeen.has(hash);
    this.damagedSeen.add(hash);
    for (const listener of this.damageListeners) listener(hash, reason, first);
    throw new StrataError(
      'STRATA_DAMAGED',
      `this node's copy of blob ${hash} is damaged (${reason}) and was set aside; ` +
        `upload the bytes again (PUT /v1/blobs/${hash}) or let a peer send them`,
      { blob: hash },
    );
  }

  /**
   * Called once the commit naming a staged blob was written or refused. A file blob that no
   * commit names and no other upload is about to name is removed, so a refused write leaves nothing.
   */
  async release(blob: StagedBlob): Promise<void> {
    if (blob.inline) return;
    this.unstage(blob.hash);
    await this.withFileLock(blob.hash, async () => {
      if (this.staged.has(blob.hash) || this.has(blob.hash)) return;
      await unlink(this.pathOf(blob.hash)).catch(() => {});
    });
  }

  private unstage(hash: string): void {
    const count = (this.staged.get(hash) ?? 1) - 1;
    if (count > 0) this.staged.set(hash, count);
    else this.staged.delete(hash);
  }

  private async withFileLock(hash: string, action: () => Promise<void>): Promise<void> {
    const previous = this.fileLocks.get(hash) ?? Promise.resolve();
    const current = previous.then(action, action);
    const settled = current.catch(() => {});
    this.fileLocks.set(hash, settled);
    try {
      await current;
    } finally {
      if (this.fileLocks.get(hash) === settled) this.fileLocks.delete(hash);
    }
  }

  private pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }

  private async place(temporaryPath: string, hash: string): Promise<void> {
    const target = this.pathOf(hash);
    const targetDir = join(this.dir, hash.slice(0, 2));
    // A file already there is replaced, not kept: these bytes were hashed on the way in, and the
    // one there may be damaged. Readers of the old file keep reading it through their descriptor.
    await mkdir(targetDir, { recursive: true });
    await rename(temporaryPath, target);
    this.damagedSeen.delete(hash);
    // The rename is durable only once the directory entry is.
    const directory = await open(targetDir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * `read()`, or undefined when it meets a damaged copy (which the store has already set aside and
 * reported): for readers that can go on without the bytes, such as indexing and replication.
 */
export function unlessDamaged<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (error instanceof StrataError && error.code === 'STRATA_DAMAGED') return undefined;
    throw error;
  }
}

/** The first `bytes` bytes of a blob file (all of it when shorter), read without the rest. */
export function readPrefix(path: string, bytes: number): Buffer {
  const buffer = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    const read = readSync(fd, buffer, 0, bytes, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
