import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../../core/errors.js';
import type { VersionId } from '../../core/ids.js';
import { checkBucketName } from '../../core/names.js';
import { formatTime } from '../../core/time.js';
import { readPrefix, type StoredBlob } from '../../log/blob-store.js';
import { baseTag, isHtml, pinDocument, pinPosition } from '../../release/pin.js';
import type { Releases, ServedRelease } from '../../release/releases.js';
import type { RouteTable } from '../../release/route-table.js';
import {
  CodedCopies,
  codedBytesMax,
  codedBytesMin,
  isCompressible,
  negotiateCoding,
  weightOf,
} from '../content-coding.js';
import type { Context } from '../context.js';
import { rawPath, servedContentType, timeParam } from '../params.js';
import { isNotModified, sendBlob, sendNotModified, streamOf } from '../send-blob.js';

/** HTML larger than this is pinned as it streams from disk (sendLargePage), not read into memory. */
const pinnedHtmlBytesMax = 8 * 1024 * 1024;
/** How much of a larger page is read to find where its `<base>` goes. */
const pinWindowBytes = 1024 * 1024;
const immutable = 'public, max-age=31536000, immutable';
/**
 * One cache for the process: its keys name immutable bytes (versions are unique to their commit),
 * so apps of every node in the process can share it.
 */
const copies = new CodedCopies();

export interface AppServingOptions {
  releases: Releases;
  /** Serve this app at `/` as well as at `/apps/<app>/`. */
  defaultApp?: string;
}

/**
 * Serves apps straight from the store (DESIGN §3). App URLs are public: a release publishes what
 * it routes. Unpinned URLs follow the release in effect at request time (or `?at=`); pinned URLs
 * (`/@<release>/…`) serve exactly one release and are immutable.
 */
export function appRoutes(options: AppServingOptions) {
  return async (app: FastifyInstance, context: Context): Promise<void> => {
    app.get('/apps/:app', async (request, reply) => {
      const { app: name } = request.params as { app: string };
      const { query } = splitUrl(request);
      return reply.redirect(`/apps/${encodeURIComponent(checkBucketName(name, 'app'))}/${query}`, 301);
    });

    app.get('/apps/:app/*', async (request, reply) => {
      const { app: name } = request.params as { app: string };
      const raw = rawPath(request);
      const path = raw.slice(raw.indexOf('/', '/apps/'.length));
      return serve(
        request,
        reply,
        context,
        options.releases,
        checkBucketName(name, 'app'),
        `/apps/${name}`,
        path,
      );
    });

    if (options.defaultApp !== undefined) {
      const name = checkBucketName(options.defaultApp, 'app');
      app.get('/', async (request, reply) => serve(request, reply, context, options.releases, name, '', '/'));
      app.get('/@*', async (request, reply) =>
        serve(request, reply, context, options.releases, name, '', rawPath(request)),
      );
    }
  };
}

/** Fallback for the default app: any other GET that no API route matched. */
export function serveDefaultApp(
  request: FastifyRequest,
  reply: FastifyReply,
  context: Context,
  releases: Releases,
  name: string,
): Promise<FastifyReply> {
  return serve(request, reply, context, releases, name, '', rawPath(request));
}

async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  context: Context,
  releases: Releases,
  app: string,
  prefix: string,
  rawRest: string,
): Promise<FastifyReply> {
  const snapshot = context.store.snapshot();
  let rest = decodePath(rawRest === '' ? '/' : rawRest);
  let served: ServedRelease | undefined;
  if (rest.startsWith('/@')) {
    const end = rest.indexOf('/', 2);
    const release = rest.slice(2, end < 0 ? undefined : end);
    if (release === '')
      fail('STRATA_NOT_FOUND', `a pinned URL names its release: /@<release>/<path> of app ${app}`);
    rest = end < 0 ? '/' : rest.slice(end);
    served = releases.pinned(app, release, snapshot);
    if (!served) fail('STRATA_NOT_FOUND', `app ${app} has no release ${release.slice(0, 80)}`);
    // A cancelled release is withdrawn: it is never served, not even by its own URL. One still
    // scheduled can be cancelled, so caches must ask again until it has taken effect.
    if (snapshot.retractionOf(release))
      fail('STRATA_NOT_FOUND', `release ${release} of app ${app} was cancelled; it is not served`);
    void reply.header('Cache-Control', served.release.effectiveAt > snapshot.now ? 'no-cache' : immutable);
  } else {
    const at = timeParam(request, 'at');
    served = releases.inEffect(app, at ?? snapshot.now, snapshot);
    if (!served) {
      fail(
        'STRATA_NOT_FOUND',
        at === undefined
          ? `app ${app} has no release in effect`
          : `app ${app} had no release in effect at ${formatTime(at)}`,
      );
    }
    void reply.header('Cache-Control', 'no-cache');
  }
  const release = served.release.version;
  void reply.header('Strata-Release', release);

  if (rest === '/_routes.json') {
    return reply
      .header('Content-Type', 'application/json; charset=utf-8')
      .header('ETag', `"${release}"`)
      .send({ release, effectiveAt: formatTime(served.release.effectiveAt), ...served.table });
  }

  // A directory asked for without its slash goes to it, as a web server would (and before an SPA
  // fallback): relative URLs in its index.html resolve against the directory only with the slash.
  const routes = served.table.routes;
  if (!rest.endsWith('/') && !Object.hasOwn(routes, rest) && Object.hasOwn(routes, `${rest}/index.html`)) {
    const { path, query } = splitUrl(request);
    return reply.redirect(`${path}/${query}`, 301);
  }
  // Whether an SPA's path falls back to the entry depends on Accept where it has an extension.
  if (served.table.spa && hasExtension(rest) && !Object.hasOwn(routes, rest)) vary(reply, 'Accept');
  const file = routeFor(served.table, rest, request);
  if (!file) fail('STRATA_NOT_FOUND', `release ${release} of app ${app} has no route ${rest.slice(0, 200)}`);
  const row = snapshot.version(file.version);
  const blob = row?.blob ? context.store.blobs.get(row.blob) : undefined;
  if (!row || !blob) throw new Error(`route ${file.path} of ${release} names a version without bytes`);
  const contentType = servedContentType(row.contentType);
  void reply.header('Content-Type', contentType);

  if (isHtml(contentType)) {
    const base = `${prefix}/@${release}${file.path.slice(0, file.path.lastIndexOf('/') + 1)}`;
    // The page's bytes depend on where the app is mounted, its ETag only on the release and file.
    const tag = `${release}:${row.version}`;
    if (blob.size > pinnedHtmlBytesMax) return sendLargePage(request, reply, blob, baseTag(base), `"${tag}"`);
    // Read as Latin-1, byte for byte: a page in another charset keeps its bytes (pin.ts).
    const html = (blob.data ?? (await buffer(streamOf(blob)))).toString('latin1');
    const body = Buffer.from(pinDocument(html, base), 'latin1');
    const page = { hash: blob.hash, size: body.length, data: body };
    return sendFile(request, reply, page, contentType, tag, `${prefix}/@${tag}`);
  }
  return sendFile(request, reply, blob, contentType, row.version, row.version);
}

/**
 * A page too large to hold in memory, pinned as it streams: the `<base>` goes where `pinPosition`
 * finds its place in the first `pinWindowBytes` (a `<head>` further in than that is not looked
 * for), then the rest of the file follows from disk. Sent whole and as stored otherwise (no range,
 * no compression: the compressed sizes stop at 8 MiB anyway).
 */
function sendLargePage(
  request: FastifyRequest,
  reply: FastifyReply,
  blob: StoredBlob,
  tag: string,
  etag: string,
): FastifyReply {
  const path = blob.path as string;
  const window = readPrefix(path, pinWindowBytes);
  const at = pinPosition(window.toString('latin1'));
  const size = at === undefined ? blob.size : blob.size + Buffer.byteLength(tag);
  void reply.header('ETag', etag);
  if (isNotModified(request, etag)) return sendNotModified(request, reply, size);
  void reply.header('Content-Length', String(size));
  if (at === undefined) return reply.send(streamOf(blob));
  // The whole file streams through the store's hash check, and the tag goes in at its offset.
  async function* page(at: number) {
    let offset = 0;
    for await (const chunk of streamOf(blob) as AsyncIterable<Buffer>) {
      if (at >= offset && at < offset + chunk.length) {
        yield chunk.subarray(0, at - offset);
        yield Buffer.from(tag);
        yield chunk.subarray(at - offset);
      } else {
        yield chunk;
      }
      offset += chunk.length;
    }
  }
  return reply.send(Readable.from(page(at)));
}

/**
 * Sends a file of a release, compressed with brotli or gzip when it is text the client accepts so
 * (`Vary: Accept-Encoding`). Each coding has its own ETag (RFC 9110 §8.8.3: a strong validator
 * names one representation).
 */
async function sendFile(
  request: FastifyRequest,
  reply: FastifyReply,
  blob: StoredBlob,
  contentType: string,
  tag: string,
  copyName: string,
): Promise<FastifyReply> {
  if (isCompressible(contentType) && blob.size >= codedBytesMin && blob.size <= codedBytesMax) {
    vary(reply, 'Accept-Encoding');
    // A range names bytes of the file as stored (a media player's request), so it is served from them.
    const coding =
      request.headers.range === undefined ? negotiateCoding(request.headers['accept-encoding']) : undefined;
    if (coding) {
      const etag = `"${tag}-${coding}"`;
      // A 304 sends no bytes: answer it before compressing anything.
      if (isNotModified(request, etag)) {
        void reply.header('ETag', etag).header('Accept-Ranges', 'bytes');
        return sendNotModified(request, reply, copies.lengthOf(copyName, coding, blob));
      }
      const coded = await copies.copyOf(copyName, coding, blob);
      if (coded) {
        void reply.header('Content-Encoding', coding);
        return sendBlob(request, reply, { hash: blob.hash, size: coded.length, data: coded }, etag);
      }
    }
  }
  return sendBlob(request, reply, blob, `"${tag}"`);
}

/** Maps a request path to a route: exact, then `dir/` → `dir/index.html`, then the entry for `/` or an SPA. */
function routeFor(
  table: RouteTable,
  path: string,
  request: FastifyRequest,
): { path: string; version: VersionId } | undefined {
  const candidates = [path];
  if (path === '/' && table.entry) candidates.unshift(table.entry);
  if (path.endsWith('/')) candidates.push(`${path}index.html`);
  // Own properties only: a stored entry such as "constructor" must not find Object.prototype's.
  for (const candidate of candidates) {
    const version = Object.hasOwn(table.routes, candidate) ? table.routes[candidate] : undefined;
    if (version) return { path: candidate, version };
  }
  const wantsDocument = !hasExtension(path) || acceptsHtml(request.headers.accept);
  if (table.spa && table.entry && wantsDocument && Object.hasOwn(table.routes, table.entry)) {
    const version = table.routes[table.entry];
    if (version) return { path: table.entry, version };
  }
  return undefined;
}

function hasExtension(path: string): boolean {
  return /\.[a-z0-9]{1,8}$/i.test(path);
}

/** Whether Accept names text/html with a weight above zero (`text/html;q=0` refuses it). */
function acceptsHtml(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((item) => {
    const [range, ...parameters] = item.split(';').map((part) => part.trim().toLowerCase());
    return range === 'text/html' && weightOf(parameters) > 0;
  });
}

/** Adds a field to the response's Vary, keeping those already there. */
function vary(reply: FastifyReply, field: string): void {
  const current = reply.getHeader('vary');
  const fields = typeof current === 'string' && current !== '' ? current.split(/\s*,\s*/) : [];
  if (!fields.some((known) => known.toLowerCase() === field.toLowerCase())) fields.push(field);
  void reply.header('Vary', fields.join(', '));
}

/** The request URL's path, and its query with its `?` (all of it: a `?` may appear inside a query), or ''. */
function splitUrl(request: FastifyRequest): { path: string; query: string } {
  const url = request.raw.url ?? '';
  const at = url.indexOf('?');
  return at < 0 ? { path: url, query: '' } : { path: url.slice(0, at), query: url.slice(at) };
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    fail('STRATA_BAD_REQUEST', 'the URL path has a malformed percent-encoding');
  }
}
