// strata-client.js: a small browser client for Strata, served by every node at /strata-client.js.
//
//   import { Strata } from '/strata-client.js';
//   const strata = new Strata({ token });               // same origin by default
//   const { version } = await strata.put('notes', 'a.txt', 'hello', { contentType: 'text/plain' });
//   const note = await strata.get('notes', 'a.txt');    // { text(), json(), bytes(), version, conflicts, contentType }
//   const routes = await strata.routes();               // the route table of the release this page came from
//
// Errors are thrown as StrataError with the server's stable `code` (e.g. STRATA_PRECONDITION_FAILED).

export class StrataError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'StrataError';
    this.status = status;
    this.code = code;
  }
}

/**
 * Refused before any request, as the node would refuse it: fetch() folds `.` and `..` segments
 * away (`a/../b` would name `b`, even written `%2E%2E`), so such a key can never be reached from
 * a browser, and a name that is not a string of well-formed Unicode cannot be put in a URL.
 */
function checkName(value, what) {
  if (typeof value !== 'string' || value === '')
    throw new StrataError(0, 'STRATA_INVALID_NAME', `${what} must be a non-empty string`);
  if (!value.isWellFormed())
    throw new StrataError(0, 'STRATA_INVALID_NAME', `${what} is not well-formed Unicode (a lone surrogate)`);
  if (what === 'key' && value.split('/').some((segment) => segment === '.' || segment === '..'))
    throw new StrataError(
      0,
      'STRATA_INVALID_NAME',
      'key must not have . or .. segments: URLs fold them away, so none could reach it',
    );
  return value;
}

/** An option this call does not take is refused, never dropped: a misspelt `asof` would read the present. */
function checkOptions(options, known, call) {
  for (const name of Object.keys(options ?? {}))
    if (!known.includes(name))
      throw new StrataError(
        0,
        'STRATA_BAD_REQUEST',
        `${call} has no option ${name} (it takes ${known.join(', ')})`,
      );
}

function keyPath(bucket, key) {
  checkName(bucket, 'bucket');
  checkName(key, 'key');
  let encoded = key.split('/').map(encodeURIComponent).join('/');
  if (encoded.endsWith('/versions')) encoded = `${encoded.slice(0, -'/versions'.length)}%2Fversions`;
  return `/v1/buckets/${encodeURIComponent(bucket)}/keys/${encoded}`;
}

async function failure(response) {
  let code = `HTTP_${response.status}`;
  let message = response.statusText;
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not a Strata error body
  }
  return new StrataError(response.status, code, message);
}

/** The query parameters of get and list, which are also the options they take. */
const getOptions = ['at', 'asOf', 'version'];
const listOptions = ['prefix', 'after', 'limit', 'at'];

/** If-Match: `*`, or the version quoted as an ETag. */
function ifMatch(value) {
  return value === '*' ? '*' : `"${value}"`;
}

export class Strata {
  /** @param {{ url?: string, token?: string }} [options] */
  constructor(options = {}) {
    this.url = (options.url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.token = options.token;
  }

  async request(path, init = {}) {
    const headers = new Headers(init.headers);
    // An empty token is sent as one (and refused, 401): an unset variable must not read as "no token".
    if (this.token !== undefined && this.token !== null) headers.set('authorization', `Bearer ${this.token}`);
    const response = await fetch(this.url + path, { ...init, headers });
    if (!response.ok) throw await failure(response);
    return response;
  }

  /** Reads a key. Options: at, asOf (Date, RFC 3339 or epoch ms), version. */
  async get(bucket, key, options = {}) {
    checkOptions(options, getOptions, 'get');
    const query = new URLSearchParams();
    for (const name of getOptions) {
      const value = options[name];
      if (value !== undefined) query.set(name, value instanceof Date ? value.toISOString() : String(value));
    }
    const suffix = query.size > 0 ? `?${query}` : '';
    const response = await this.request(keyPath(bucket, key) + suffix);
    const conflicts = response.headers.get('strata-conflicts');
    return {
      version: response.headers.get('strata-version'),
      contentType: response.headers.get('content-type'),
      conflicts: conflicts ? conflicts.split(',') : [],
      text: () => response.text(),
      json: () => response.json(),
      bytes: async () => new Uint8Array(await response.arrayBuffer()),
    };
  }

  /**
   * Writes a key. Body: string, Blob, ArrayBuffer or a JSON-able object. Options: contentType,
   * ifMatch (a version, or '*': only if the key has a live value), ifNoneMatch, effectiveAt.
   */
  async put(bucket, key, body, options = {}) {
    checkOptions(options, ['contentType', 'ifMatch', 'ifNoneMatch', 'effectiveAt'], 'put');
    const headers = {};
    let payload = body;
    if (
      typeof body === 'object' &&
      !(body instanceof Blob) &&
      !(body instanceof ArrayBuffer) &&
      !ArrayBuffer.isView(body)
    ) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    if (options.contentType) headers['content-type'] = options.contentType;
    if (options.ifMatch) headers['if-match'] = ifMatch(options.ifMatch);
    if (options.ifNoneMatch) headers['if-none-match'] = '*';
    if (options.effectiveAt !== undefined) {
      headers['strata-effective-at'] =
        options.effectiveAt instanceof Date ? options.effectiveAt.toISOString() : String(options.effectiveAt);
    }
    const response = await this.request(keyPath(bucket, key), { method: 'PUT', headers, body: payload });
    return response.json();
  }

  async delete(bucket, key, options = {}) {
    checkOptions(options, ['ifMatch'], 'delete');
    const headers = options.ifMatch ? { 'if-match': ifMatch(options.ifMatch) } : {};
    const response = await this.request(keyPath(bucket, key), { method: 'DELETE', headers });
    return response.json();
  }

  /** Live keys of a bucket: { keys: [{ key, version, size, contentType, txTime, effectiveAt }], next? }. */
  async list(bucket, options = {}) {
    checkOptions(options, listOptions, 'list');
    checkName(bucket, 'bucket');
    const query = new URLSearchParams();
    for (const name of listOptions) if (options[name] !== undefined) query.set(name, String(options[name]));
    const response = await this.request(`/v1/buckets/${encodeURIComponent(bucket)}/keys?${query}`);
    return response.json();
  }

  async history(bucket, key) {
    const response = await this.request(`${keyPath(bucket, key)}/versions`);
    return (await response.json()).versions;
  }

  /**
   * The route table of the release this page was loaded from: { release, routes: { "/path": version }, entry }.
   * The document's base URL is pinned to the page's release (…/@<release>/ and the page's
   * directory): the table is at the top of that release, whatever directory the page is in.
   */
  async routes(base = globalThis.document?.baseURI) {
    const url = new URL(base);
    const segments = url.pathname.split('/');
    // App names never start with @: the first such segment is the release.
    const pinned = segments.findIndex((segment) => segment.startsWith('@'));
    // A page that set its own <base> is not pinned: the app's current table, at its top.
    const app = segments[1] === 'apps' && segments[2] ? `/apps/${segments[2]}/` : '/';
    const top = new URL(pinned < 0 ? app : `${segments.slice(0, pinned + 1).join('/')}/`, url);
    const response = await fetch(new URL('_routes.json', top));
    if (!response.ok) throw await failure(response);
    return response.json();
  }
}
