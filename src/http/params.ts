import type { FastifyRequest } from 'fastify';
import { contentTypeBytesMax } from '../core/commit.js';
import { fail } from '../core/errors.js';
import { isVersionId, type VersionId } from '../core/ids.js';
import { checkBucketName, checkKey } from '../core/names.js';
import { parseTime } from '../core/time.js';

type Query = Record<string, string | string[] | undefined>;

export function query(request: FastifyRequest): Query {
  return (request.query ?? {}) as Query;
}

/**
 * Refuses a query parameter the endpoint does not take: on a paged endpoint an ignored `offset`
 * or a misspelt `cursor` would answer page 1 again and again.
 */
export function onlyParams(request: FastifyRequest, names: readonly string[]): void {
  for (const name of Object.keys(query(request))) {
    if (!names.includes(name)) {
      fail(
        'STRATA_BAD_REQUEST',
        `unknown query parameter "${name.slice(0, 80)}" (this endpoint takes ${names.join(', ')})`,
      );
    }
  }
}

/** A single-valued query parameter; repeating it is an error rather than a silent pick. */
export function single(request: FastifyRequest, name: string): string | undefined {
  const value = query(request)[name];
  if (Array.isArray(value)) fail('STRATA_BAD_REQUEST', `query parameter ${name} is given more than once`);
  return value;
}

export function timeParam(request: FastifyRequest, name: string): number | undefined {
  const value = single(request, name);
  // An empty one (`at=`, as an HTML form sends a blank field) is the same as none.
  return value === undefined || value === '' ? undefined : parseTime(value, name);
}

export function intParam(
  request: FastifyRequest,
  name: string,
  fallback: number,
  max: number,
  min = 1,
): number {
  const value = single(request, name);
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,15}$/.test(value) || Number(value) < min || Number(value) > max) {
    fail('STRATA_BAD_REQUEST', `${name} must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

export function versionParam(value: string, what: string): VersionId {
  if (!isVersionId(value)) fail('STRATA_BAD_REQUEST', `${what} "${value.slice(0, 80)}" is not a version id`);
  return value;
}

export function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  if (Array.isArray(value)) fail('STRATA_BAD_REQUEST', `header ${name} is given more than once`);
  return value;
}

/** If-Match: `"<version>"` (an entity tag as in RFC 9110 §8.8.3) or `*`. */
export function ifMatchHeader(request: FastifyRequest): { version?: VersionId; exists?: boolean } {
  const value = header(request, 'if-match')?.trim();
  if (value === undefined) return {};
  if (value === '*') return { exists: true };
  // If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches, so nothing is written.
  if (/^W\/"[^"]*"$/.test(value))
    fail(
      'STRATA_PRECONDITION_FAILED',
      'If-Match compares strongly: a weak tag (W/"…") never matches; send the version as ETag gives it, "<version>"',
    );
  const match = /^"([^"]*)"$/.exec(value) ?? /^([^",\s]+)$/.exec(value);
  if (!match) fail('STRATA_BAD_REQUEST', 'If-Match takes one quoted version id, as returned in ETag, or *');
  return { version: versionParam(match[1] as string, 'If-Match') };
}

export function ifNoneMatchAny(request: FastifyRequest): boolean {
  const value = header(request, 'if-none-match')?.trim();
  if (value === undefined) return false;
  if (value !== '*') fail('STRATA_BAD_REQUEST', 'on writes, If-None-Match takes only *');
  return true;
}

/**
 * A Content-Type to store: it is sent back as a header on every read, so it must be a valid header
 * value (visible ASCII, spaces and tabs; RFC 9110 §5.5) and short.
 */
export function checkContentType(value: unknown, what: string): string {
  if (typeof value !== 'string' || Buffer.byteLength(value) > contentTypeBytesMax) {
    fail('STRATA_BAD_REQUEST', `${what} must be a string of at most ${contentTypeBytesMax} bytes`);
  }
  if (!isHeaderValue(value)) {
    fail(
      'STRATA_BAD_REQUEST',
      `${what} may hold only visible ASCII characters, spaces and tabs, as it is sent back as a header`,
    );
  }
  if (!isMediaType(value)) {
    fail(
      'STRATA_BAD_REQUEST',
      `${what} "${value.slice(0, 100)}" is not a valid media type (type/subtype; name=value), e.g. text/plain; charset=utf-8`,
    );
  }
  return value;
}

/** RFC 9110 §8.3.1: `type/subtype`, then `; name=value` parameters (a value a token or a quoted string; empty ones allowed). */
const token = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const quoted = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
const mediaType = new RegExp(
  `^${token}/${token}(?:[ \\t]*;(?:[ \\t]*${token}=(?:${token}|${quoted}))?)*[ \\t]*$`,
);

export function isMediaType(value: string): boolean {
  return mediaType.test(value);
}

/** The Content-Type a read sends: a stored one that is not a valid header (a peer's) is withheld. */
export function servedContentType(stored: string | undefined): string {
  return stored !== undefined && isHeaderValue(stored) ? stored : 'application/octet-stream';
}

function isHeaderValue(value: string): boolean {
  return /^[\t\x20-\x7e]*$/.test(value);
}

/** Refuses a body declared over the limit before reading any of it (the limit is also enforced while it streams). */
export function refuseDeclaredOverLimit(request: FastifyRequest, bytesMax: number): void {
  const declared = header(request, 'content-length');
  if (declared !== undefined && Number(declared) > bytesMax) {
    fail('STRATA_TOO_LARGE', `object of ${declared} bytes exceeds --max-object-bytes ${bytesMax}`);
  }
}

export function effectiveAtHeader(request: FastifyRequest): number | undefined {
  const value = header(request, 'strata-effective-at');
  return value === undefined ? undefined : parseTime(value, 'Strata-Effective-At');
}

/**
 * The bucket and key of a `/v1/buckets/{bucket}/keys/{key}` URL, decoded from the raw path: the
 * router would decode `%2F` into `/`, and the raw form is needed to tell a key ending in
 * `/versions` (sent as `…%2Fversions`) from the history of a key.
 */
export function keyTarget(request: FastifyRequest): { bucket: string; key: string; history: boolean } {
  // Segments of the raw path: '', 'v1', 'buckets', <bucket>, 'keys', <key segments…>. Counting
  // segments (not characters) also copes with percent-encoded letters in the fixed parts.
  const segments = rawPath(request).split('/');
  if (segments.length < 6) fail('STRATA_BAD_REQUEST', 'expected /v1/buckets/{bucket}/keys/{key}');
  let rawKey = segments.slice(5).join('/');
  const history =
    request.method === 'GET' || request.method === 'HEAD' ? rawKey.endsWith('/versions') : false;
  if (history) rawKey = rawKey.slice(0, -'/versions'.length);
  return { bucket: checkBucketName(decode(segments[3] as string)), key: checkKey(decode(rawKey)), history };
}

/**
 * The request's path as sent, percent-encoding intact. A request line in absolute form
 * (`PUT http://host/v1/…`, RFC 9112 §3.2.2, what a proxy-minded client sends) names the same
 * resource as its path, so the scheme and authority are dropped.
 */
export function rawPath(request: FastifyRequest): string {
  const path = (request.raw.url ?? '/').split('?')[0] as string;
  const origin = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/]*/.exec(path);
  return origin ? path.slice(origin[0].length) || '/' : path;
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    fail('STRATA_BAD_REQUEST', 'the URL path has a malformed percent-encoding');
  }
}

/**
 * For endpoints that take no body: none, an empty one or `{}`. Anything else is refused, as a
 * member an endpoint does not take is, rather than acted on as if it were not there.
 */
export function refuseBody(request: FastifyRequest, what: string): void {
  const body = request.body;
  if (body === undefined || body === null || body === '') return;
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return;
  const first = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body)[0] : undefined;
  fail(
    'STRATA_BAD_REQUEST',
    first !== undefined
      ? `${what} takes no body: unknown field "${first.slice(0, 80)}"`
      : `${what} takes no body (send none, or {})`,
  );
}

/** Whether Node took the request as an upgrade (a `Connection: upgrade` with an `Upgrade` header). */
export function isUpgrade(request: FastifyRequest): boolean {
  return (request.raw as { upgrade?: boolean }).upgrade === true;
}
