import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Dispatcher, getGlobalDispatcher } from 'undici';

/** Where client commands send requests: STRATA_URL, STRATA_TOKEN, or the local node's admin token. */
export interface ApiClient {
  url: string;
  token?: string;
}

export function clientConfig(): ApiClient {
  const url = nodeUrl(process.env.STRATA_URL || 'http://127.0.0.1:7070');
  let token = process.env.STRATA_TOKEN;
  if (!token) {
    // On the machine that runs the node, fall back to the admin token it saved.
    const file = join(process.env.STRATA_DATA ?? '.strata', 'admin-token');
    if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
  }
  return token ? { url, token } : { url };
}

/** STRATA_URL names a node: http(s), a host, maybe a port; the API's paths are appended to it. */
function nodeUrl(value: string): string {
  const refuse = (): never => {
    throw new ApiError(
      0,
      'STRATA_BAD_REQUEST',
      `STRATA_URL "${value.slice(0, 200)}" must be http://host[:port] or https://host[:port], with no path or query`,
    );
  };
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return refuse();
  }
  if (!['http:', 'https:'].includes(parsed.protocol) || parsed.hostname === '') refuse();
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '')
    refuse();
  return parsed.origin;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallOptions {
  method?: Dispatcher.HttpMethod;
  body?: string | Buffer | NodeJS.ReadableStream;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
}

export async function call(
  config: ApiClient,
  path: string,
  options: CallOptions = {},
): Promise<Dispatcher.ResponseData> {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined) query.set(name, String(value));
  }
  const search = query.toString();
  const headers: Record<string, string> = { ...options.headers };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  let response: Dispatcher.ResponseData;
  try {
    // The path goes out as written: a URL parser would fold a key's `.` and `..` segments away
    // (`a/../b` is `b` to it), and the request would read, overwrite or delete another key.
    response = await getGlobalDispatcher().request({
      origin: config.url,
      path: search === '' ? path : `${path}?${search}`,
      method: options.method ?? 'GET',
      headers,
      body: options.body as Dispatcher.DispatchOptions['body'],
    });
  } catch (error) {
    // undici refuses a malformed request (a header with a newline, say) before it connects.
    if ((error as { code?: string }).code === 'UND_ERR_INVALID_ARG')
      throw new ApiError(0, 'STRATA_BAD_REQUEST', `request not sent: ${(error as Error).message}`);
    throw new ApiError(0, 'STRATA_UNREACHABLE', `cannot reach ${config.url}: ${(error as Error).message}`);
  }
  if (response.statusCode >= 400) {
    const text = await response.body.text();
    let code = `HTTP_${response.statusCode}`;
    let message = text;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? code;
      message = parsed.error?.message ?? text;
    } catch {
      // Not a Strata error body: show it as it is.
    }
    throw new ApiError(response.statusCode, code, message);
  }
  return response;
}

export async function callJson<T>(config: ApiClient, path: string, options: CallOptions = {}): Promise<T> {
  const response = await call(config, path, options);
  return (await response.body.json()) as T;
}

/**
 * Path of a key: each segment encoded, `/` kept, as the server expects. A key that itself ends in
 * `/versions` has that last slash encoded, so that it is not read as the key's history.
 */
export function keyPath(bucket: string, key: string): string {
  let encoded = key.split('/').map(encodeURIComponent).join('/');
  if (encoded.endsWith('/versions')) encoded = `${encoded.slice(0, -'/versions'.length)}%2Fversions`;
  return `/v1/buckets/${encodeURIComponent(bucket)}/keys/${encoded}`;
}
