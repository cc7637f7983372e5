import { hlcUpperBound } from '../core/hlc.js';
import type { VersionId } from '../core/ids.js';
import { isVersionId, parseVersionId } from '../core/ids.js';
import { Lru } from '../core/lru.js';
import type { Db } from '../log/database.js';
import { type RawVersionRow, toVersionRow, type VersionRow } from './derived.js';
import { type Resolution, resolve } from './winner.js';

/** 20,000 rows of a few hundred bytes: a few MB for the hot versions of many apps. */
const versionCacheEntriesMax = 20_000;

/** Reads at default transaction time see every applied version: no HLC string sorts after this. */
const everything = '~';

export interface ReadOptions {
  /** Effective time in epoch ms; defaults to the snapshot's time. */
  at?: number;
  /** Transaction time in epoch ms; defaults to "everything this node knows". */
  asOf?: number;
}

export interface KeyListing {
  key: string;
  winner: VersionRow;
  conflicts: number;
}

export interface HistoryEntry extends VersionRow {
  /** The retract version that withdrew this one, if any. */
  retractedBy?: VersionId;
}

/** Prepared statements shared by every snapshot of one database. */
export class Queries {
  readonly versionsOfKey;
  /**
   * Version rows never change once written, so lookups by id (every app request makes one per
   * asset) are cached. Cleared by reindex, which renumbers positions.
   */
  readonly versionCache = new Lru<string, VersionRow>(versionCacheEntriesMax);
  readonly versionById: (id: string, pos: number) => RawVersionRow | undefined;
  readonly versionsOfCommit;
  readonly putsInBucketUntil;
  readonly nextEffectiveInBucket;
  readonly retractionsOf;
  readonly keysFrom;
  readonly buckets;
  readonly changes;
  readonly changesInBucket;
  readonly lastCursor;

  constructor(db: Db) {
    this.versionsOfKey = db.prepare('SELECT * FROM versions WHERE bucket = ? AND key = ? AND pos <= ?');
    const byId = db.prepare(
      'SELECT v.* FROM commits c JOIN versions v ON v.pos = c.pos AND v.op_index = ? WHERE c.id = ? AND c.pos <= ?',
    );
    this.versionById = (id: string, pos: number): RawVersionRow | undefined => {
      if (!isVersionId(id)) return undefined;
      const { commit, opIndex } = parseVersionId(id);
      return byId.get(opIndex, commit, pos) as RawVersionRow | undefined;
    };
    this.versionsOfCommit = db.prepare(
      'SELECT v.* FROM commits c JOIN versions v ON v.pos = c.pos WHERE c.id = ? AND c.pos <= ? ORDER BY v.op_index',
    );
    this.putsInBucketUntil = db.prepare(
      "SELECT * FROM versions WHERE bucket = ? AND kind = 'put' AND effective_at <= ? AND pos <= ? ORDER BY effective_at",
    );
    this.nextEffectiveInBucket = db
      .prepare(
        "SELECT MIN(effective_at) FROM versions WHERE bucket = ? AND kind = 'put' AND effective_at > ? AND pos <= ?",
      )
      .pluck();
    this.retractionsOf = db.prepare('SELECT * FROM versions WHERE target = ? AND pos <= ? ORDER BY hlc');
    this.keysFrom = db
      .prepare(
        'SELECT DISTINCT key FROM versions WHERE bucket = ? AND key >= ? AND pos <= ? ORDER BY key LIMIT ?',
      )
      .pluck();
    this.buckets = db.prepare(
      'SELECT bucket AS name FROM versions WHERE pos <= ? GROUP BY bucket ORDER BY bucket',
    );
    this.changes = db.prepare(
      'SELECT cursor, commit_id, bucket, key, version, kind FROM versions WHERE cursor > ? AND pos <= ? ORDER BY cursor LIMIT ?',
    );
    this.changesInBucket = db.prepare(changesInBucketSql);
    // Cursors grow with log positions, so this reads back from the end to the first row in view.
    this.lastCursor = db
      .prepare('SELECT cursor FROM versions WHERE pos <= ? ORDER BY cursor DESC LIMIT 1')
      .pluck();
  }
}

/** One bucket's change feed; it must read through versions_by_bucket (see derived.ts), not sort the bucket. */
export const changesInBucketSql =
  'SELECT cursor, commit_id, bucket, key, version, kind FROM versions WHERE cursor > ? AND pos <= ? AND bucket = ? ORDER BY cursor LIMIT ?';

export interface ChangeRow {
  cursor: number;
  commit_id: string;
  bucket: string;
  key: string;
  version: string;
  kind: string;
}

/**
 * One request's view of the store (DESIGN §2: a request reads one snapshot). It sees exactly the
 * commits at log positions ≤ `pos`, which is the durable watermark when it was taken, so every
 * read in the request agrees even if writes land in between, and nothing that could still be lost
 * to a crash is ever shown.
 */
export class Snapshot {
  constructor(
    private readonly queries: Queries,
    readonly pos: number,
    /** Wall-clock time at which the snapshot was taken: the default effective time of reads. */
    readonly now: number,
  ) {}

  versionsOf(bucket: string, key: string): VersionRow[] {
    return (this.queries.versionsOfKey.all(bucket, key, this.pos) as RawVersionRow[]).map(toVersionRow);
  }

  read(bucket: string, key: string, options: ReadOptions = {}): Resolution<VersionRow> {
    return resolve(this.versionsOf(bucket, key), this.readPoint(options));
  }

  /** The live winner, or undefined when there is none or it is a tombstone. */
  live(bucket: string, key: string, options: ReadOptions = {}): VersionRow | undefined {
    const { winner } = this.read(bucket, key, options);
    return winner && winner.kind === 'put' ? winner : undefined;
  }

  version(id: string): VersionRow | undefined {
    const cached = this.queries.versionCache.get(id);
    if (cached) return cached.pos <= this.pos ? cached : undefined;
    const raw = this.queries.versionById(id, this.pos);
    if (!raw) return undefined;
    const row = toVersionRow(raw);
    this.queries.versionCache.set(id, row);
    return row;
  }

  /** The retract version that withdrew `id` in this snapshot, if one did. */
  retractionOf(id: string): VersionId | undefined {
    const [retraction] = this.queries.retractionsOf.all(id, this.pos) as RawVersionRow[];
    return retraction?.version as VersionId | undefined;
  }

  /** The versions a commit wrote, in op order, marked as history marks them when withdrawn since. */
  commitVersions(commit: string): HistoryEntry[] {
    return (this.queries.versionsOfCommit.all(commit, this.pos) as RawVersionRow[]).map((raw) => {
      const row = toVersionRow(raw);
      const retractedBy = this.retractionOf(row.version);
      return retractedBy ? { ...row, retractedBy } : row;
    });
  }

  /** Puts in a bucket that take effect at or before `until`, in effective order. */
  putsEffectiveBy(bucket: string, until: number): VersionRow[] {
    return (this.queries.putsInBucketUntil.all(bucket, until, this.pos) as RawVersionRow[]).map(toVersionRow);
  }

  /** The earliest effective time after `after` of any put in a bucket. */
  nextEffective(bucket: string, after: number): number | undefined {
    return (this.queries.nextEffectiveInBucket.get(bucket, after, this.pos) as number | null) ?? undefined;
  }

  /** Every version of a key, newest transaction first, with withdrawn ones marked. */
  history(bucket: string, key: string): HistoryEntry[] {
    const rows = this.versionsOf(bucket, key);
    const retractedBy = new Map<VersionId, VersionId>();
    for (const row of rows)
      if (row.kind === 'retract' && row.target) retractedBy.set(row.target, row.version);
    rows.sort((a, b) => (a.hlc === b.hlc ? b.opIndex - a.opIndex : a.hlc < b.hlc ? 1 : -1));
    return rows.map((row) => {
      const by = retractedBy.get(row.version);
      return by ? { ...row, retractedBy: by } : row;
    });
  }

  /** Live keys in key order, starting after `after`, restricted to `prefix`. */
  listKeys(
    bucket: string,
    options: { prefix?: string; after?: string; limit: number; at?: number },
  ): { keys: KeyListing[]; next?: string } {
    const prefix = options.prefix ?? '';
    const point = this.readPoint({ at: options.at });
    const keys: KeyListing[] = [];
    // Page through distinct keys; each page is bounded so a bucket of tombstones cannot stall a request.
    const pageSize = 256;
    let from = options.after !== undefined && options.after >= prefix ? `${options.after}\u0000` : prefix;
    for (;;) {
      const page = this.queries.keysFrom.all(bucket, from, this.pos, pageSize) as string[];
      for (const key of page) {
        if (!key.startsWith(prefix)) return { keys };
        const { winner, conflicts } = resolve(this.versionsOf(bucket, key), point);
        if (winner?.kind !== 'put') continue;
        if (keys.length === options.limit) return { keys, next: (keys[keys.length - 1] as KeyListing).key };
        keys.push({ key, winner, conflicts: conflicts.length });
      }
      if (page.length < pageSize) return { keys };
      from = `${page[page.length - 1]}\u0000`;
    }
  }

  buckets(): string[] {
    return (this.queries.buckets.all(this.pos) as Array<{ name: string }>).map((row) => row.name);
  }

  changes(since: number, limit: number, bucket?: string): ChangeRow[] {
    const rows = bucket
      ? this.queries.changesInBucket.all(since, this.pos, bucket, limit)
      : this.queries.changes.all(since, this.pos, limit);
    return rows as ChangeRow[];
  }

  /** The cursor of the latest change in this snapshot (0 when there is none). */
  lastCursor(): number {
    return (this.queries.lastCursor.get(this.pos) as number | undefined) ?? 0;
  }

  private readPoint(options: ReadOptions): { at: number; hlcBefore: string } {
    return {
      at: options.at ?? this.now,
      hlcBefore: options.asOf === undefined ? everything : hlcUpperBound(options.asOf),
    };
  }
}
