import { fail } from '../core/errors.js';
import { isVersionId, type VersionId } from '../core/ids.js';

/** A release: which version serves each path of an app (DESIGN §3). Stored as JSON in `_releases/<app>`. */
export interface RouteTable {
  routes: Record<string, VersionId>;
  /** The document served for `/` (and, with `spa`, for unrouted paths). */
  entry?: string;
  /** Single-page app: unrouted paths get the entry document instead of 404. */
  spa?: boolean;
  message?: string;
  /** Set on a release written by rollback: the release whose routes it re-issued. */
  rollbackOf?: VersionId;
}

/** Route tables are read on every app request; bounding them bounds that work. */
export const routesPerReleaseMax = 50_000;
const routePathBytesMax = 1024;

/** A route path: absolute, no empty, `.` or `..` segments, no query or fragment. */
export function checkRoutePath(path: string): string {
  const bad = (why: string): never => fail('STRATA_BAD_REQUEST', `route "${path.slice(0, 100)}" ${why}`);
  if (!path.startsWith('/')) bad('must start with /');
  if (Buffer.byteLength(path) > routePathBytesMax) bad(`is longer than ${routePathBytesMax} bytes`);
  // A plain space is allowed: files are named "logo big.png", and a URL asks for it as %20. Other
  // white space (tabs, line breaks, no-break spaces) is refused with the control characters.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
  if (/[?#\u0000-\u001f\u007f-\u009f]|[^\S ]/.test(path))
    bad('must not contain ?, #, control characters or white space other than a plain space');
  // A lone surrogate has no UTF-8 form, so no URL could ever request the route.
  if (!path.isWellFormed()) bad('is not well-formed Unicode (a lone surrogate)');
  const segments = path.slice(1).split('/');
  if (
    segments.some(
      (segment, index) =>
        segment === '.' || segment === '..' || (segment === '' && index < segments.length - 1),
    )
  ) {
    bad('must not contain empty, . or .. segments');
  }
  if (path.startsWith('/@') || path === '/_routes.json')
    bad('is reserved (paths starting with /@ and /_routes.json)');
  return path;
}

export function encodeRouteTable(table: RouteTable): Buffer {
  const ordered: RouteTable = {
    routes: Object.fromEntries(Object.entries(table.routes).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  if (table.entry !== undefined) ordered.entry = table.entry;
  if (table.spa) ordered.spa = true;
  if (table.message !== undefined) ordered.message = table.message;
  if (table.rollbackOf !== undefined) ordered.rollbackOf = table.rollbackOf;
  return Buffer.from(JSON.stringify(ordered));
}

/** Parses a stored route table; these were validated when written, so a failure here is corruption. */
export function decodeRouteTable(bytes: Buffer): RouteTable {
  const parsed = JSON.parse(bytes.toString('utf8')) as RouteTable;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.routes !== 'object') {
    throw new Error('stored route table is malformed');
  }
  for (const version of Object.values(parsed.routes)) {
    if (!isVersionId(version)) throw new Error('stored route table names a malformed version');
  }
  return parsed;
}

/** Distinct routed versions, sorted: the `refs` of the release version. */
export function routedVersions(table: RouteTable): VersionId[] {
  return [...new Set(Object.values(table.routes))].sort();
}
