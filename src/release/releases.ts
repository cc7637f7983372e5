import { readFileSync } from 'node:fs';
import { createTwoFilesPatch } from 'diff';
import { isTextLike } from '../core/content-kind.js';
import { fail, onlyFields } from '../core/errors.js';
import { hlcWall } from '../core/hlc.js';
import type { VersionId } from '../core/ids.js';
import { Lru } from '../core/lru.js';
import { checkBucketName, checkKey } from '../core/names.js';
import type { VersionRow } from '../store/derived.js';
import type { Snapshot } from '../store/snapshot.js';
import type { Store } from '../store/store.js';
import { compareVersions, resolve } from '../store/winner.js';
import {
  checkRoutePath,
  decodeRouteTable,
  encodeRouteTable,
  type RouteTable,
  routedVersions,
  routesPerReleaseMax,
} from './route-table.js';

/** The timeline of app A is the history of key A in this bucket (DESIGN §3). */
export const releasesBucket = '_releases';

export type RouteTarget = string | { bucket: string; key: string };

export interface ReleaseRequest {
  routes: Record<string, RouteTarget>;
  entry?: string;
  spa?: boolean;
  message?: string;
  effectiveAt?: number;
  author?: string;
}

export type ReleaseState = 'scheduled' | 'active' | 'past' | 'cancelled';

export interface ReleaseInfo {
  release: VersionId;
  effectiveAt: number;
  txTime: number;
  message?: string;
  author?: string;
  routes: number;
  state: ReleaseState;
  conflicts: VersionId[];
}

/** What a route serves: where the version lives and its bytes' hash (publish compares hashes). */
export interface RoutedFile {
  bucket: string;
  key: string;
  blob: string | undefined;
  contentType: string | undefined;
  size: number | undefined;
}

export interface ServedRelease {
  release: VersionRow;
  table: RouteTable;
}

/** Diffs of objects larger than this are not computed (they are reported as changed, without a patch). */
const diffBytesMax = 1024 * 1024;
/** Decoded route tables kept in memory: they are immutable, and every app request needs one. */
const tableCacheMax = 256;

export class Releases {
  private readonly tables = new Lru<VersionId, RouteTable>(tableCacheMax);
  /** Per app: the release in effect over [from, until) as of log position `pos`. */
  private readonly effective = new Lru<
    string,
    { pos: number; from: number; until: number; served: ServedRelease | undefined }
  >(tableCacheMax);

  /**
   * Per app, the change of its timeline under way. Creating, rolling back and cancelling decide
   * from a snapshot and then write: two at once would decide from the same snapshot (two rollbacks
   * restoring the same release), so on this node they run one after the other.
   */
  private readonly changing = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  private async oneAtATime<T>(app: string, change: () => Promise<T>): Promise<T> {
    const before = this.changing.get(app) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(change);
    this.changing.set(app, mine);
    try {
      return await mine;
    } finally {
      if (this.changing.get(app) === mine) this.changing.delete(app);
    }
  }

  apps(snapshot: Snapshot): string[] {
    return snapshot
      .listKeys(releasesBucket, { limit: 100_000, at: Number.MAX_SAFE_INTEGER })
      .keys.map((k) => k.key);
  }

  create(app: string, request: ReleaseRequest): Promise<{ release: VersionId; effectiveAt: number }> {
    return this.oneAtATime(app, () => this.createNow(app, request));
  }

  private async createNow(
    app: string,
    request: ReleaseRequest,
  ): Promise<{ release: VersionId; effectiveAt: number }> {
    checkBucketName(app, 'app');
    const snapshot = this.store.snapshot();
    const entries = Object.entries(request.routes);
    if (entries.length === 0) fail('STRATA_BAD_REQUEST', 'a release needs at least one route');
    if (entries.length > routesPerReleaseMax)
      fail('STRATA_BAD_REQUEST', `a release has at most ${routesPerReleaseMax} routes`);
    const routes: Record<string, VersionId> = {};
    const missing: string[] = [];
    for (const [path, target] of entries) {
      checkRoutePath(path);
      const version = this.resolveTarget(snapshot, target);
      if (version) routes[path] = version;
      else missing.push(typeof target === 'string' ? target : `${target.bucket}/${target.key}`);
    }
    if (missing.length > 0) {
      fail(
        'STRATA_UNKNOWN_VERSION',
        `the release routes to ${missing.length} target(s) with no value to serve (a route needs ` +
          `a put in a user bucket, not an unknown version, a delete, a retraction or a system version): ` +
          missing.slice(0, 10).join(', ') +
          (missing.length > 10 ? `, and ${missing.length - 10} more (all in missing)` : ''),
        {
          missing,
        },
      );
    }
    const entry = request.entry ?? (Object.hasOwn(routes, '/index.html') ? '/index.html' : undefined);
    if (entry !== undefined && !Object.hasOwn(routes, entry)) {
      const routed = `/${entry}`;
      fail(
        'STRATA_BAD_REQUEST',
        `entry ${JSON.stringify(entry)} is not one of the routes` +
          (!entry.startsWith('/') && Object.hasOwn(routes, routed)
            ? `: a route path starts with /, so give ${JSON.stringify(routed)}`
            : ': give the path of one of them, such as "/index.html"'),
      );
    }
    if (request.spa && entry === undefined)
      fail(
        'STRATA_BAD_REQUEST',
        'spa serves the entry document for paths no route matches, and there is none: route /index.html, or give entry',
      );
    const table: RouteTable = { routes };
    if (entry !== undefined) table.entry = entry;
    if (request.spa) table.spa = true;
    if (request.message !== undefined) table.message = request.message;
    return this.write(app, table, request.effectiveAt, request.message ?? `release ${app}`, request.author);
  }

  timeline(app: string, snapshot: Snapshot): ReleaseInfo[] {
    const versions = snapshot.versionsOf(releasesBucket, app);
    const retracted = new Set(versions.filter((v) => v.kind === 'retract').map((v) => v.target));
    const { winner: active } = resolve(versions, { at: snapshot.now, hlcBefore: '~' });
    return versions
      .filter((v) => v.kind === 'put')
      .sort((a, b) => compareVersions(b, a))
      .map((release) => {
        const state: ReleaseState = retracted.has(release.version)
          ? 'cancelled'
          : release.effectiveAt > snapshot.now
            ? 'scheduled'
            : release.version === active?.version
              ? 'active'
              : 'past';
        return this.info(
          release,
          state,
          state === 'scheduled' || state === 'active' ? this.conflictsOf(release, versions) : [],
        );
      });
  }

  /** The release in effect at `at` (with today's knowledge), if the app has one. */
  inEffect(app: string, at: number, snapshot: Snapshot): ServedRelease | undefined {
    // The answer holds while the log does not move and until the next effective time of the app's
    // timeline: serving a busy app then costs no query at all.
    const cached = this.effective.get(app);
    if (cached && cached.pos === snapshot.pos && cached.from <= at && at < cached.until) return cached.served;
    const versions = snapshot.versionsOf(releasesBucket, app);
    const { winner } = resolve(versions, { at, hlcBefore: '~' });
    const served = winner?.kind === 'put' ? { release: winner, table: this.table(winner) } : undefined;
    let from = winner?.effectiveAt ?? Number.MIN_SAFE_INTEGER;
    let until = Number.MAX_SAFE_INTEGER;
    for (const version of versions) {
      if (version.effectiveAt > at) until = Math.min(until, version.effectiveAt);
      else if (version.effectiveAt > from) from = version.effectiveAt;
    }
    this.effective.set(app, { pos: snapshot.pos, from, until, served });
    return served;
  }

  /** Exactly that release of that app. */
  pinned(app: string, release: string, snapshot: Snapshot): ServedRelease | undefined {
    const row = snapshot.version(release);
    if (!row || row.bucket !== releasesBucket || row.key !== app || row.kind !== 'put') return undefined;
    return { release: row, table: this.table(row) };
  }

  get(
    app: string,
    release: string,
    snapshot: Snapshot,
  ): { info: ReleaseInfo; table: RouteTable; files: Record<string, RoutedFile> } {
    const info = this.timeline(app, snapshot).find((r) => r.release === release);
    const served = this.pinned(app, release, snapshot);
    if (!info || !served) fail('STRATA_NOT_FOUND', `app ${app} has no release ${release}`);
    const files: Record<string, RoutedFile> = {};
    for (const [path, version] of Object.entries(served.table.routes)) {
      const row = snapshot.version(version);
      if (row)
        files[path] = {
          bucket: row.bucket,
          key: row.key,
          blob: row.blob,
          contentType: row.contentType,
          size: row.size,
        };
    }
    return { info, table: served.table, files };
  }

  rollback(
    app: string,
    options: { to?: string; effectiveAt?: number; author?: string },
  ): Promise<{ release: VersionId; effectiveAt: number; rolledBackTo: VersionId }> {
    return this.oneAtATime(app, () => this.rollbackNow(app, options));
  }

  private async rollbackNow(
    app: string,
    options: { to?: string; effectiveAt?: number; author?: string },
  ): Promise<{ release: VersionId; effectiveAt: number; rolledBackTo: VersionId }> {
    const snapshot = this.store.snapshot();
    const timeline = this.timeline(app, snapshot);
    if (timeline.length === 0) fail('STRATA_NOT_FOUND', `app ${app} has no releases`);
    let target: ReleaseInfo | undefined;
    if (options.to !== undefined) {
      target = timeline.find((r) => r.release === options.to);
      if (!target) fail('STRATA_NOT_FOUND', `app ${app} has no release ${options.to}`);
      if (target.state === 'cancelled')
        fail('STRATA_CONFLICT', `release ${options.to} was cancelled; choose another`);
    } else {
      const activeIndex = timeline.findIndex((r) => r.state === 'active');
      const active = timeline[activeIndex];
      if (!active) fail('STRATA_CONFLICT', `app ${app} has no active release to roll back from`);
      const routesOf = (release: VersionId) =>
        JSON.stringify(this.pinned(app, release, snapshot)?.table.routes);
      // A rollback stands for the release it restored: start from that one, so that rolling back
      // twice goes further back instead of undoing the first rollback.
      let anchor: VersionId = active.release;
      for (let hops = 0; hops < timeline.length; hops += 1) {
        const restored = this.pinned(app, anchor, snapshot)?.table.rollbackOf;
        if (!restored) break;
        anchor = restored;
      }
      const anchorIndex = Math.max(
        activeIndex,
        timeline.findIndex((r) => r.release === anchor),
      );
      const activeRoutes = routesOf(active.release);
      // Timeline order is newest first: the newest earlier release that serves something different.
      target = timeline
        .slice(anchorIndex + 1)
        .find((r) => r.state === 'past' && routesOf(r.release) !== activeRoutes);
      if (!target) {
        fail(
          'STRATA_CONFLICT',
          anchor === active.release
            ? `app ${app} has no release before ${active.release} to roll back to`
            : `app ${app} is rolled back as far as it goes: the active release restores ${anchor}, and ` +
                'no earlier release serves something else (roll back --to a release to choose one)',
        );
      }
    }
    if (options.to !== undefined) {
      const active = timeline.find((r) => r.state === 'active');
      const serves = (release: VersionId) => {
        const table = this.pinned(app, release, snapshot)?.table;
        return JSON.stringify([table?.routes, table?.entry, table?.spa]);
      };
      const same = active !== undefined && serves(active.release) === serves(target.release);
      if (same && options.effectiveAt === undefined)
        fail(
          'STRATA_CONFLICT',
          `release ${target.release} serves what the active release serves: nothing to roll back`,
        );
    }
    const source = this.pinned(app, target.release, snapshot)?.table as RouteTable;
    const message = `rollback to ${target.release}`;
    const table: RouteTable = { ...source, message, rollbackOf: target.release };
    const written = await this.write(app, table, options.effectiveAt, message, options.author);
    return { ...written, rolledBackTo: target.release };
  }

  cancel(app: string, release: string): Promise<VersionId> {
    return this.oneAtATime(app, () => this.cancelNow(app, release));
  }

  private async cancelNow(app: string, release: string): Promise<VersionId> {
    const snapshot = this.store.snapshot();
    const info = this.timeline(app, snapshot).find((r) => r.release === release);
    if (!info) fail('STRATA_NOT_FOUND', `app ${app} has no release ${release}`);
    if (info.state === 'cancelled') fail('STRATA_CONFLICT', `release ${release} is already cancelled`);
    if (info.state !== 'scheduled') {
      fail(
        'STRATA_CONFLICT',
        `release ${release} took effect at ${new Date(info.effectiveAt).toISOString()}; roll back instead`,
      );
    }
    const result = await this.store.write({
      ops: [{ kind: 'retract', target: info.release }],
      message: `cancel ${release}`,
    });
    return result.versions[0] as VersionId;
  }

  diff(app: string, from: string, to: string, snapshot: Snapshot) {
    const left = this.pinned(app, from, snapshot);
    const right = this.pinned(app, to, snapshot);
    if (!left) fail('STRATA_NOT_FOUND', `app ${app} has no release ${from}`);
    if (!right) fail('STRATA_NOT_FOUND', `app ${app} has no release ${to}`);
    const a = left.table.routes;
    const b = right.table.routes;
    const added = Object.keys(b)
      .filter((path) => !(path in a))
      .sort();
    const removed = Object.keys(a)
      .filter((path) => !(path in b))
      .sort();
    const changed = Object.keys(b)
      .filter((path) => path in a && a[path] !== b[path])
      .sort()
      .map((path) => {
        const before = snapshot.version(a[path] as VersionId);
        const after = snapshot.version(b[path] as VersionId);
        const diff = this.textDiff(path, before, after, from, to);
        const change: {
          path: string;
          from?: string;
          to?: string;
          diff: string | null;
          notCompared?: string;
        } = { path, from: a[path], to: b[path], diff };
        if (diff === null) {
          const text = (row: VersionRow | undefined) =>
            row !== undefined && isTextLike(row.contentType, row.key);
          change.notCompared = text(before) && text(after) ? `text over ${diffBytesMax} bytes` : 'binary';
        }
        return change;
      });
    return { from, to, added, removed, changed };
  }

  private textDiff(
    path: string,
    before: VersionRow | undefined,
    after: VersionRow | undefined,
    from: string,
    to: string,
  ) {
    if (!before || !after) return null;
    if (!isTextLike(before.contentType, before.key) || !isTextLike(after.contentType, after.key)) return null;
    const left = this.text(before);
    const right = this.text(after);
    if (left === undefined || right === undefined) return null;
    return createTwoFilesPatch(path, path, left, right, `release ${from}`, `release ${to}`);
  }

  private text(row: VersionRow): string | undefined {
    if (!row.blob || (row.size ?? 0) > diffBytesMax) return undefined;
    const blob = this.store.blobs.get(row.blob);
    if (!blob) return undefined;
    return (blob.data ?? readFileSync(blob.path as string)).toString('utf8');
  }

  private resolveTarget(snapshot: Snapshot, target: RouteTarget): VersionId | undefined {
    if (typeof target === 'string') {
      const row = snapshot.version(target);
      return row && row.kind === 'put' && !row.bucket.startsWith('_') ? row.version : undefined;
    }
    if (
      typeof target !== 'object' ||
      target === null ||
      typeof target.bucket !== 'string' ||
      typeof target.key !== 'string'
    ) {
      fail('STRATA_BAD_REQUEST', 'a route is "<version>" or {"bucket": "...", "key": "..."}');
    }
    onlyFields(target, ['bucket', 'key'], 'a route');
    return snapshot.live(checkBucketName(target.bucket), checkKey(target.key))?.version;
  }

  private conflictsOf(release: VersionRow, versions: VersionRow[]): VersionId[] {
    const { winner, conflicts } = resolve(versions, { at: release.effectiveAt, hlcBefore: '~' });
    return winner?.version === release.version ? conflicts.map((c) => c.version) : [];
  }

  private info(release: VersionRow, state: ReleaseState, conflicts: VersionId[]): ReleaseInfo {
    const table = this.table(release);
    const commit = this.store.commit(release.commit)?.commit;
    const info: ReleaseInfo = {
      release: release.version,
      effectiveAt: release.effectiveAt,
      txTime: hlcWall(release.hlc),
      routes: Object.keys(table.routes).length,
      state,
      conflicts,
    };
    const message = table.message ?? commit?.message;
    if (message !== undefined) info.message = message;
    if (commit?.author !== undefined) info.author = commit.author;
    return info;
  }

  private table(release: VersionRow): RouteTable {
    const cached = this.tables.get(release.version);
    if (cached) return cached;
    const blob = release.blob ? this.store.blobs.get(release.blob) : undefined;
    if (!blob) throw new Error(`route table blob of ${release.version} is missing`);
    const table = decodeRouteTable(blob.data ?? readFileSync(blob.path as string));
    this.tables.set(release.version, table);
    return table;
  }

  private async write(
    app: string,
    table: RouteTable,
    effectiveAt: number | undefined,
    message: string,
    author?: string,
  ) {
    const blob = await this.store.blobs.fromBuffer(encodeRouteTable(table));
    const result = await this.store.write({
      ops: [
        {
          kind: 'put',
          bucket: releasesBucket,
          key: app,
          blob,
          contentType: 'application/json',
          refs: routedVersions(table),
          ...(effectiveAt !== undefined ? { effectiveAt } : {}),
        },
      ],
      message,
      ...(author !== undefined ? { author } : {}),
    });
    const release = result.versions[0] as VersionId;
    const row = this.store.snapshot().version(release);
    return { release, effectiveAt: row?.effectiveAt ?? effectiveAt ?? hlcWall(result.hlc) };
  }
}
