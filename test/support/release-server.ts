import { request } from 'undici';
import { expect } from 'vitest';
import { type CliResult, runCli, type StrataServer, startServer, temporaryDirectory } from './process.js';

/**
 * A real `strata serve` for the release tests (DESIGN §3), with the helpers they share: JSON calls to
 * the API and `strata publish` runs against the node. Processes and directories are registered with
 * test/support/process.ts, so `cleanUpProcesses()` removes them.
 */

export const releaseAdminToken = 'release-test-admin-token-0123456789abcdef';

export interface PublishSummary {
  app: string;
  files: number;
  uploaded: number;
  unchanged: number;
  release?: string;
  effectiveAt?: string;
  dryRun: boolean;
  unchangedRelease?: boolean;
  behind?: { release: string; effectiveAt: string };
  unmatchedExcludes?: string[];
}

export interface ReleaseInfo {
  release: string;
  effectiveAt: string;
  txTime: string;
  message?: string;
  routes: number;
  state: 'scheduled' | 'active' | 'past' | 'cancelled';
}

export interface ReleaseServer {
  server: StrataServer;
  /** What a CLI run needs to reach the node as admin. */
  env: { STRATA_URL: string; STRATA_TOKEN: string };
  api<T>(path: string, options?: ApiOptions): Promise<T>;
  /** Runs `strata <arguments>` against the node and fails, with its stderr in view, unless it exits 0. */
  cli(commandArguments: string[], options?: { cwd?: string }): Promise<CliResult>;
  /** `strata publish DIR --app APP --json`. */
  publish(dir: string, app: string, extraArguments?: string[]): Promise<PublishSummary>;
  /** The app's timeline, newest effective first, from the API (what `strata releases --json` prints). */
  releases(app: string): Promise<ReleaseInfo[]>;
}

export interface ApiOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  /** Defaults to the admin token; `null` sends none. */
  token?: string | null;
}

export async function startReleaseServer(extraArguments: string[] = []): Promise<ReleaseServer> {
  const server = await startServer({
    dataDir: temporaryDirectory('strata-release-'),
    adminToken: releaseAdminToken,
    extraArguments,
  });
  const env = { STRATA_URL: server.url, STRATA_TOKEN: releaseAdminToken };

  async function api<T>(path: string, options: ApiOptions = {}): Promise<T> {
    const token = options.token === undefined ? releaseAdminToken : options.token;
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await request(`${server.url}${path}`, {
      method: options.method ?? 'GET',
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      throw new Error(`${options.method ?? 'GET'} ${path}: HTTP ${response.statusCode} ${text}`);
    }
    return JSON.parse(text) as T;
  }

  async function cli(commandArguments: string[], options: { cwd?: string } = {}): Promise<CliResult> {
    const result = await runCli(commandArguments, { env, ...options });
    expect(
      { code: result.code, stderr: result.code === 0 ? '' : result.stderr },
      `strata ${commandArguments.join(' ')}`,
    ).toEqual({ code: 0, stderr: '' });
    return result;
  }

  return {
    server,
    env,
    api,
    cli,
    async publish(dir, app, extra = []) {
      const result = await cli(['publish', dir, '--app', app, '--json', ...extra]);
      return JSON.parse(result.stdout) as PublishSummary;
    },
    async releases(app) {
      return (await api<{ releases: ReleaseInfo[] }>(`/v1/apps/${encodeURIComponent(app)}/releases`))
        .releases;
    },
  };
}

/** A time strictly between two RFC 3339 instants, as RFC 3339 (time travel lands on the earlier one). */
export function midpoint(earlier: string, later: string): string {
  const from = Date.parse(earlier);
  const to = Date.parse(later);
  expect(to - from, `${earlier} is at least 2 ms before ${later}`).toBeGreaterThanOrEqual(2);
  return new Date(Math.floor((from + to) / 2)).toISOString();
}
