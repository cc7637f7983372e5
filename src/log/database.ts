import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { fail } from '../core/errors.js';

export type Db = Database.Database;

const fdatasyncAsync = promisify(fdatasync);

/**
 * The node's SQLite database: the log (commits, blobs) and the derived tables live in one file so
 * that a commit and everything derived from it land in one transaction.
 *
 * Durability: SQLite runs with `synchronous=NORMAL` (it syncs at checkpoints) and the writer
 * fdatasyncs the WAL itself after each group commit (see GroupCommit for on which thread). A commit
 * is acknowledged only after that sync, so concurrent writers share one fsync.
 *
 * `locking_mode=EXCLUSIVE` keeps any other connection out; the data directory's LOCK file says
 * which process holds it.
 */
export class NodeDatabase {
  readonly db: Db;
  private walFd: number | undefined;

  constructor(readonly file: string) {
    // No busy wait: another process holding the lock will not let go soon, so say so at once.
    const db = new Database(file, { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(logSchema);
      // The first write takes the exclusive lock and creates the WAL file.
      db.prepare('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run('opened', 'yes');
    } catch (error) {
      db.close();
      if (error instanceof Error && /locked|busy/i.test(error.message)) {
        fail(
          'STRATA_UNAVAILABLE',
          `database ${file} is in use by another process (is another strata serve running?)`,
        );
      }
      throw error;
    }
    this.db = db;
    this.walFd = openSync(`${file}-wal`, 'r+');
    fdatasyncSync(this.walFd);
  }

  /** Makes every transaction committed so far durable. */
  async sync(onThisThread = false): Promise<void> {
    if (this.walFd === undefined) fail('STRATA_UNAVAILABLE', 'database is closed');
    if (onThisThread) fdatasyncSync(this.walFd);
    else await fdatasyncAsync(this.walFd);
  }

  getMeta(name: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  setMeta(name: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run(name, value);
  }

  close(): void {
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (this.db.open) this.db.close();
  }
}

/**
 * The log: the truth (DESIGN §1.1). `pos` is this node's local position; the change feed and the
 * durable watermark count in it. Blobs up to the inline limit are stored in `blobs.data`; larger
 * ones live in content-addressed files and have `data` NULL.
 */
const logSchema = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS commits (
  pos INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hlc TEXT NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (origin, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  data BLOB
) STRICT;
`;
