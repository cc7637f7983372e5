import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { type ApiClient, callJson } from '../client/api-client.js';
import { messageBytesMax, opsPerCommitMax } from '../core/commit.js';
import { classifyFile, extensionOf } from '../core/content-kind.js';
import { fail, StrataError } from '../core/errors.js';
import { repeatedMember } from '../core/json-members.js';
import { checkBucketName, checkKey, checkNewKey } from '../core/names.js';
import { parseTime } from '../core/time.js';
import { checkRoutePath } from './route-table.js';

/** A file to publish: where its bytes come from, and where they go. */
export interface SourceFile {
  /** Path relative to the published root, with `/` separators; with a leading `/`, the route. */
  path: string;
  /** Its key: the path, after the config's `keyPrefix` if it has one (keyOf). */
  key?: string;
  size: number;
  hash: string;
  bucket: string;
  contentType: string;
  open(): NodeJS.ReadableStream;
}

export interface PublishOptions {
  app: string;
  effectiveAt?: string;
  message?: string;
  dryRun?: boolean;
  entry?: string;
  spa?: boolean;
}

export interface PublishConfig {
  /** Extension (without dot) → bucket, overriding the kind buckets (application, objects, images, …). */
  buckets?: Record<string, string>;
  /** Paths and globs left out of the release, as in .gitignore (see `Exclusions`). */
  exclude?: string[];
  /** Publish files and directories whose names start with a dot (by default only `.well-known/`). */
  dotfiles?: boolean;
  entry?: string;
  spa?: boolean;
  /** Put in front of every key (`blog/` stores `index.html` as `blog/index.html`): keeps apps' keys apart. */
  keyPrefix?: string;
}

export interface PublishReporter {
  start(files: number, uploadBytes: number): void;
  uploaded(file: SourceFile): void;
  done(summary: PublishSummary): void;
}

export interface PublishSummary {
  app: string;
  files: number;
  uploaded: number;
  uploadedBytes: number;
  /** Files whose key already held exactly these bytes: no upload, no new version. */
  unchanged: number;
  /** Files whose bytes the store already had under another key: a new version, no upload. */
  reused: number;
  release?: string;
  effectiveAt?: string;
  dryRun: boolean;
  /** Every file was unchanged and the active release already routes them: no release was written. */
  unchangedRelease?: boolean;
  /** The active release when the new one takes effect before it: the new one is never served now. */
  behind?: { release: string; effectiveAt: string };
  /**
   * Files whose key holds these bytes already but which the active release does not serve (after
   * a rollback, say): no new version, yet the release changes. Counted apart from `unchanged`.
   */
  rerouted?: number;
  /**
   * On a dry run: each file the release would serve differently, whether its key gets a new
   * version, and whether its bytes would be uploaded.
   */
  changes?: Array<{ bucket: string; key: string; size: number; upload: boolean; newVersion: boolean }>;
  /** Rules of the config's `exclude` that left out nothing: most often a typo. */
  unmatchedExcludes?: string[];
  /** Symbolic links in the directory, left out (not followed). */
  skippedSymlinks?: string[];
}

/** The file a directory may hold to configure publishing. */
export const configFileName = 'strata.publish.json';
/** Never published: dependencies and the config itself (version control and data are dotfiles). */
const alwaysExcluded = ['node_modules/', `/${configFileName}`];
/** Uploads in flight at once: enough to hide latency, few enough not to flood a small node. */
const uploadConcurrency = 4;

export function readPublishConfig(root: string): PublishConfig {
  const file = join(root, configFileName);
  if (!existsSync(file)) return {};
  let config: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    config = JSON.parse(text);
  } catch (error) {
    fail('STRATA_BAD_REQUEST', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  // JSON.parse keeps the last of two members unseen: {"spa":true,"spa":false} would publish spa false.
  const repeated = repeatedMember(text);
  if (repeated !== undefined)
    fail(
      'STRATA_BAD_REQUEST',
      `${file}: gives ${JSON.stringify(repeated)} twice in one object: give it once`,
    );
  return checkPublishConfig(config, file);
}

/** The config's shape, checked field by field, so that a typo is reported before anything is uploaded. */
function checkPublishConfig(config: unknown, file: string): PublishConfig {
  const wrong = (what: string) => fail('STRATA_BAD_REQUEST', `${file}: ${what}`);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) wrong('must be a JSON object');
  const known = ['buckets', 'exclude', 'dotfiles', 'entry', 'spa', 'keyPrefix'];
  const { buckets, exclude, dotfiles, entry, spa, keyPrefix, ...rest } = config as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) wrong(`unknown field ${unknown[0]} (known: ${known.join(', ')})`);
  if (
    buckets !== undefined &&
    (typeof buckets !== 'object' ||
      buckets === null ||
      Array.isArray(buckets) ||
      Object.values(buckets).some((bucket) => typeof bucket !== 'string'))
  )
    wrong('buckets must map extensions to bucket names, e.g. {"md": "docs"}');
  const dotted = Object.keys(buckets ?? {}).find((extension) => extension.startsWith('.'));
  if (dotted !== undefined)
    wrong(`buckets takes extensions without the dot: "${dotted.slice(1)}", not "${dotted}"`);
  if (
    exclude !== undefined &&
    (!Array.isArray(exclude) || exclude.some((rule) => typeof rule !== 'string' || rule.trim() === ''))
  )
    wrong('exclude must be a list of paths or globs, e.g. ["drafts/", "notes.txt", "**/*.map"]');
  if (dotfiles !== undefined && typeof dotfiles !== 'boolean') wrong('dotfiles must be true or false');
  if (entry !== undefined && typeof entry !== 'string') wrong('entry must be a path, e.g. "/home.html"');
  if (spa !== undefined && typeof spa !== 'boolean') wrong('spa must be true or false');
  if (keyPrefix !== undefined) {
    if (typeof keyPrefix !== 'string' || keyPrefix === '' || keyPrefix.startsWith('/'))
      wrong('keyPrefix must be a non-empty string that does not start with /, e.g. "blog/"');
    try {
      checkNewKey(`${keyPrefix}x`);
    } catch (error) {
      if (!(error instanceof StrataError)) throw error;
      wrong(`keyPrefix ${JSON.stringify(keyPrefix)} makes bad keys: ${error.message}`);
    }
  }
  return config as PublishConfig;
}

/**
 * The entry as a route (`home.html` and `/home.html` alike), which must be one of the published
 * files: checked before anything is uploaded or written, and by --dry-run too.
 */
const spaWithoutEntry =
  'spa serves the entry document for paths no file matches, and there is none: add an index.html, or set entry';

function entryRoute(entry: string, files: SourceFile[]): string {
  const route = entry.startsWith('/') ? entry : `/${entry}`;
  if (!files.some((file) => `/${file.path}` === route))
    fail('STRATA_BAD_REQUEST', `entry ${entry} is not one of the files to publish`);
  return route;
}

/** The key of a published file: its path, after the config's keyPrefix. */
export function keyOf(file: SourceFile): string {
  return file.key ?? file.path;
}

/** Bucket, key and content type of a file at this path. */
function placeOf(path: string, config: PublishConfig): { bucket: string; key: string; contentType: string } {
  let key: string;
  try {
    key = checkKey(`${config.keyPrefix ?? ''}${path}`);
  } catch (error) {
    if (!(error instanceof StrataError)) throw error;
    fail(
      error.code,
      `${JSON.stringify(path)} cannot be published: its ${error.message} (rename it, or exclude it in ${configFileName})`,
    );
  }
  return { ...bucketFor(path, config), key };
}

function bucketFor(path: string, config: PublishConfig): { bucket: string; contentType: string } {
  const { kind, contentType } = classifyFile(path);
  const extension = extensionOf(path);
  const bucket =
    (config.buckets && Object.hasOwn(config.buckets, extension) ? config.buckets[extension] : undefined) ??
    kind;
  return { bucket: checkBucketName(bucket), contentType };
}

/**
 * What a publish leaves out, with the rules of .gitignore: a rule matches a file or a directory
 * (and so everything under it); a trailing `/` matches directories only; a rule with a `/` before
 * its end is relative to the published directory (a leading `/` anchors it there), any other
 * matches at every depth; `*`, `?`, `[…]` and `**` are globs. Names that start with a dot (`.git`,
 * `.env`, `.strata`) are left out too unless `dotfiles` is set, except `.well-known/`.
 */
export class Exclusions {
  private readonly rules: Array<{ rule: string; directoryOnly: boolean; test: (path: string) => boolean }>;
  private readonly matched = new Set<string>();
  /** Symbolic links met in the walk: never followed, so never published (said in the summary). */
  readonly symlinks: string[] = [];

  constructor(private readonly config: PublishConfig) {
    this.rules = [...alwaysExcluded, ...(config.exclude ?? [])].map((rule) => {
      const directoryOnly = rule.endsWith('/');
      const pattern = rule.replace(/\/+$/, '');
      const anchored = pattern.includes('/');
      const glob = anchored ? pattern.replace(/^\/+/, '') : `**/${pattern}`;
      return { rule, directoryOnly, test: picomatch(glob, { dot: true }) };
    });
  }

  /** Whether `path` (relative, `/`-separated) is left out; call it for a directory before its files. */
  excludes(path: string, isDirectory: boolean): boolean {
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (!this.config.dotfiles && name.startsWith('.') && !(isDirectory && name === '.well-known'))
      return true;
    for (const { rule, directoryOnly, test } of this.rules) {
      if ((!directoryOnly || isDirectory) && test(path)) {
        this.matched.add(rule);
        return true;
      }
    }
    return false;
  }

  /** Whether a file is left out, itself or through a directory above it (for listings of files only). */
  excludesFile(path: string): boolean {
    const segments = path.split('/');
    for (let depth = 1; depth < segments.length; depth += 1) {
      if (this.excludes(segments.slice(0, depth).join('/'), true)) return true;
    }
    return this.excludes(path, false);
  }

  /** The config's rules that have left out nothing so far. */
  unmatched(): string[] {
    return (this.config.exclude ?? []).filter((rule) => !this.matched.has(rule));
  }
}

async function hashStream(stream: NodeJS.ReadableStream): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Files of a directory tree (regular files only; symlinks are not followed). */
export async function directoryFiles(
  root: string,
  config: PublishConfig,
  exclusions = new Exclusions(config),
): Promise<SourceFile[]> {
  const files: SourceFile[] = [];
  const walk = async (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const full = join(dir, entry.name);
      const path = relative(root, full).split(sep).join('/');
      if (exclusions.excludes(path, entry.isDirectory())) continue;
      if (entry.isDirectory()) await walk(full);
      else if (entry.isSymbolicLink()) exclusions.symlinks.push(path);
      else if (entry.isFile()) {
        const place = placeOf(path, config);
        files.push({
          path,
          size: statSync(full).size,
          hash: await hashStream(createReadStream(full)),
          ...place,
          open: () => createReadStream(full),
        });
      }
    }
  };
  await walk(root);
  return files;
}

/** Files tracked at HEAD of the git repository containing `root`, with their content at HEAD (not the work tree). */
export function gitFiles(
  root: string,
  config: PublishConfig,
  exclusions = new Exclusions(config),
): { files: SourceFile[]; commit: string; subject: string } {
  const git = (...args: string[]) =>
    // git's own complaints stay out of the output: a failure is reported below, in one line.
    execFileSync('git', ['-C', root, ...args], {
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  let commit: string;
  try {
    commit = git('rev-parse', 'HEAD').toString().trim();
  } catch {
    fail('STRATA_BAD_REQUEST', `${root} is not inside a git repository with at least one commit`);
  }
  const subject = git('log', '-1', '--format=%s', commit).toString().trim();
  const listing = git('ls-tree', '-r', '-z', '--long', 'HEAD', '--', '.')
    .toString('utf8')
    .split('\0')
    .filter(Boolean);
  const files: SourceFile[] = [];
  for (const line of listing) {
    // <mode> SP <type> SP <object> SP+ <size> TAB <path>
    const match = /^(\d+) (\w+) ([0-9a-f]+)\s+(\d+|-)\t(.*)$/s.exec(line);
    if (match?.[2] !== 'blob' || match[1] === '120000') continue;
    const object = match[3] as string;
    // Run inside `root`, ls-tree prints paths relative to it already.
    const path = match[5] as string;
    if (exclusions.excludesFile(path)) continue;
    const place = placeOf(path, config);
    const bytes = git('cat-file', 'blob', object);
    files.push({
      path,
      size: bytes.length,
      hash: createHash('sha256').update(bytes).digest('hex'),
      ...place,
      open: () => {
        const child = spawn('git', ['-C', root, 'cat-file', 'blob', object], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        return child.stdout;
      },
    });
  }
  return { files, commit, subject };
}

interface Listed {
  key: string;
  version: string;
  blob?: string;
  contentType?: string;
}

async function currentKeys(client: ApiClient, bucket: string): Promise<Map<string, Listed>> {
  const keys = new Map<string, Listed>();
  let after: string | undefined;
  for (;;) {
    const page = await callJson<{ keys: Listed[]; next?: string }>(client, `/v1/buckets/${bucket}/keys`, {
      query: { limit: 1000, after },
    });
    for (const entry of page.keys) keys.set(entry.key, entry);
    if (!page.next) return keys;
    after = page.next;
  }
}

/**
 * Publishes files as one release: uploads only the blobs the store lacks (by hash), writes every
 * changed key in one atomic commit (blob references, no bytes), then writes the route table. If
 * any step fails, no release is written and the previous one stays in effect.
 */
export async function publish(
  client: ApiClient,
  files: SourceFile[],
  options: PublishOptions,
  reporter: PublishReporter,
): Promise<PublishSummary> {
  checkBucketName(options.app, 'app');
  // Refuse a bad date before anything is uploaded or written.
  if (options.effectiveAt !== undefined) parseTime(options.effectiveAt, '--effective-at');
  if (files.length === 0) fail('STRATA_BAD_REQUEST', 'nothing to publish: no files');
  // What the node would refuse in the route table, refused here, before any upload or key write.
  if (options.message !== undefined && Buffer.byteLength(options.message) > messageBytesMax)
    fail('STRATA_BAD_REQUEST', `the message is longer than ${messageBytesMax} bytes`);
  for (const file of files) {
    try {
      checkRoutePath(`/${file.path}`);
    } catch (error) {
      if (!(error instanceof StrataError)) throw error;
      fail(
        'STRATA_BAD_REQUEST',
        `${file.path} cannot be served by an app: its ${error.message} (rename it, or exclude it in ${configFileName})`,
      );
    }
  }
  const entry = options.entry === undefined ? undefined : entryRoute(options.entry, files);
  if (options.spa && entry === undefined && !files.some((file) => file.path === 'index.html'))
    fail('STRATA_BAD_REQUEST', spaWithoutEntry);
  const active = await activeRelease(client, options.app);
  const buckets = [...new Set(files.map((file) => file.bucket))];
  const listings = new Map<string, Map<string, Listed>>();
  for (const bucket of buckets) listings.set(bucket, await currentKeys(client, bucket));

  const routes: Record<string, string> = {};
  const changed: SourceFile[] = [];
  /** Files whose key holds these bytes already, which the active release does not serve (a rollback's). */
  const rerouted: SourceFile[] = [];
  for (const file of files) {
    const route = `/${file.path}`;
    // Unchanged means: this app's active release already serves these bytes from this key. Apps
    // can share keys, so the key's current value (maybe another app's) is only the second choice.
    const served = active?.files[route];
    const current = listings.get(file.bucket)?.get(keyOf(file));
    if (served && active && sameFile(served, file)) routes[route] = active.routes[route] as string;
    else if (current && sameFile({ ...current, bucket: file.bucket }, file)) {
      routes[route] = current.version;
      rerouted.push(file);
    } else changed.push(file);
  }
  const hashes = [...new Set(changed.map((file) => file.hash))];
  const missing = new Set<string>();
  for (let start = 0; start < hashes.length; start += 10_000) {
    const answer = await callJson<{ missing: string[] }>(client, '/v1/blobs/missing', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hashes: hashes.slice(start, start + 10_000) }),
    });
    for (const hash of answer.missing) missing.add(hash);
  }
  const uploads = [
    ...new Map(changed.filter((file) => missing.has(file.hash)).map((file) => [file.hash, file])).values(),
  ];
  const uploadBytes = uploads.reduce((total, file) => total + file.size, 0);
  const summary: PublishSummary = {
    app: options.app,
    files: files.length,
    uploaded: uploads.length,
    uploadedBytes: uploadBytes,
    unchanged: files.length - changed.length - rerouted.length,
    reused: changed.length - changed.filter((file) => missing.has(file.hash)).length,
    dryRun: options.dryRun ?? false,
  };
  if (rerouted.length > 0) summary.rerouted = rerouted.length;
  const sameAsActive = () =>
    active !== undefined &&
    options.effectiveAt === undefined &&
    sameRoutes(active.routes, routes) &&
    (entry ?? defaultEntry(routes)) === active.entry &&
    (options.spa ?? false) === (active.spa ?? false);
  if (options.dryRun) {
    summary.changes = [
      ...changed.map((file) => ({
        bucket: file.bucket,
        key: keyOf(file),
        size: file.size,
        upload: missing.has(file.hash),
        newVersion: true,
      })),
      ...rerouted.map((file) => ({
        bucket: file.bucket,
        key: keyOf(file),
        size: file.size,
        upload: false,
        newVersion: false,
      })),
    ].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (changed.length === 0 && active && sameAsActive()) {
      summary.release = active.release;
      summary.effectiveAt = active.effectiveAt;
      summary.unchangedRelease = true;
    }
    reporter.done(summary);
    return summary;
  }

  reporter.start(files.length, uploadBytes);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < uploads.length && !failed) {
      const file = uploads[next++] as SourceFile;
      await callJson(client, `/v1/blobs/${file.hash}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(file.size) },
        body: file.open(),
      });
      reporter.uploaded(file);
    }
  };
  // On the first failure the other workers stop taking files; all are awaited before reporting it,
  // so no upload is still running when publish() returns.
  const outcomes = await Promise.allSettled(
    Array.from({ length: uploadConcurrency }, () =>
      worker().catch((error: unknown) => {
        failed = true;
        throw error;
      }),
    ),
  );
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure) throw failure.reason;

  for (let start = 0; start < changed.length; start += opsPerCommitMax) {
    const batch = changed.slice(start, start + opsPerCommitMax);
    const result = await callJson<{ versions: string[] }>(client, '/v1/commits', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: `publish ${options.app}: ${batch.length} file(s)`,
        ops: batch.map((file) => ({
          kind: 'put',
          bucket: file.bucket,
          key: keyOf(file),
          blob: file.hash,
          contentType: file.contentType,
        })),
      }),
    });
    batch.forEach((file, index) => {
      routes[`/${file.path}`] = result.versions[index] as string;
    });
  }

  if (active && sameAsActive()) {
    // Nothing changed: a new release would only add noise to the timeline.
    summary.release = active.release;
    summary.effectiveAt = active.effectiveAt;
    summary.unchangedRelease = true;
    reporter.done(summary);
    return summary;
  }
  const release = await callJson<{ release: string; effectiveAt: string }>(
    client,
    `/v1/apps/${options.app}/releases`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        routes,
        ...(entry !== undefined ? { entry } : {}),
        ...(options.spa !== undefined ? { spa: options.spa } : {}),
        ...(options.message !== undefined ? { message: options.message } : {}),
        ...(options.effectiveAt !== undefined ? { effectiveAt: options.effectiveAt } : {}),
      }),
    },
  );
  summary.release = release.release;
  summary.effectiveAt = release.effectiveAt;
  if (active && Date.parse(release.effectiveAt) < Date.parse(active.effectiveAt)) {
    summary.behind = { release: active.release, effectiveAt: active.effectiveAt };
  }
  reporter.done(summary);
  return summary;
}

interface ActiveRelease {
  release: string;
  effectiveAt: string;
  routes: Record<string, string>;
  entry?: string;
  spa?: boolean;
  files: Record<string, { bucket: string; key: string; blob?: string; contentType?: string }>;
}

function sameFile(
  stored: { bucket: string; key: string; blob?: string | undefined; contentType?: string | undefined },
  file: SourceFile,
): boolean {
  return (
    stored.bucket === file.bucket &&
    stored.key === keyOf(file) &&
    stored.blob === file.hash &&
    stored.contentType === file.contentType
  );
}

async function activeRelease(client: ApiClient, app: string): Promise<ActiveRelease | undefined> {
  let timeline: { releases: Array<{ release: string; state: string }> };
  try {
    timeline = await callJson(client, `/v1/apps/${app}/releases`);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
  const active = timeline.releases.find((release) => release.state === 'active');
  return active ? callJson(client, `/v1/apps/${app}/releases/${active.release}`) : undefined;
}

/** The server's default entry (see Releases.create), so an unchanged publish compares equal. */
function defaultEntry(routes: Record<string, string>): string | undefined {
  return Object.hasOwn(routes, '/index.html') ? '/index.html' : undefined;
}

function sameRoutes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
