import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  cleanUpProcesses,
  runCli,
  type StrataServer,
  startServer,
  temporaryDirectory,
} from '../support/process.js';

/** `strata search` and `strata recent` against a real `strata serve` process (DESIGN §4). */

const adminToken = 'search-cli-admin-token-0123456789abcdef';
const versionPattern = /[0-9a-f]{64}\.\d+/;
const timePattern = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/;

interface Hit {
  bucket: string;
  key: string;
  version: string;
  score: number;
  snippet: string;
  lines?: { added: string[]; removed: string[] };
}

/** Fails with the command's stderr in view unless it exited 0. */
function succeeded(result: CliResult): CliResult {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return result;
}

function json<T>(result: CliResult): T {
  return JSON.parse(succeeded(result).stdout) as T;
}

describe('strata search and strata recent', () => {
  let server: StrataServer;
  let workDir: string;
  const versions: Record<string, string> = {};

  const cli = (commandArguments: string[]) =>
    runCli(commandArguments, { env: { STRATA_URL: server.url, STRATA_TOKEN: adminToken }, cwd: workDir });

  /** Seeds over HTTP: one request each is much faster than one CLI process each. */
  async function put(bucket: string, key: string, body: string, contentType = 'text/plain; charset=utf-8') {
    const response = await request(`${server.url}/v1/buckets/${bucket}/keys/${key}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': contentType },
      body,
    });
    const answer = (await response.body.json()) as { version: string };
    expect(response.statusCode, JSON.stringify(answer)).toBe(201);
    return answer.version;
  }

  beforeAll(async () => {
    workDir = temporaryDirectory();
    server = await startServer({ dataDir: temporaryDirectory(), adminToken });
    versions.lighthouseOld = await put(
      'docs',
      'lighthouse.txt',
      'The lighthouse keeper lit the lamp.\nThe harbor was calm.\n',
    );
    versions.lighthouse = await put(
      'docs',
      'lighthouse.txt',
      'The lighthouse keeper trimmed the wick.\nThe harbor was calm.\n',
    );
    versions.semaphore = await put('docs', 'old.txt', 'a forgotten semaphore');
    await put('docs', 'old.txt', 'nothing to see');
    versions.main = await put(
      'app',
      'main.js',
      'export function renderScene(scene) {\n  drawMesh(scene);\n}\n',
      'text/javascript',
    );
    versions.notes = await put('notes', 'lighthouse.md', 'notes about the lighthouse');
  });
  afterAll(cleanUpProcesses);

  // Reads only, side by side: each command is a Node start-up.
  describe.concurrent('on a node with a few versions', { timeout: 60_000 }, () => {
    it('prints each hit with its time, bucket/key, version and marked snippet', async () => {
      const { stdout } = succeeded(await cli(['search', 'lighthouse']));
      const lines = stdout.trimEnd().split('\n');
      const headings = lines.filter((line) => !line.startsWith(' '));
      expect(headings).toHaveLength(2);
      for (const heading of headings)
        expect(heading).toMatch(new RegExp(`^${timePattern.source}  \\S+/\\S+  ${versionPattern.source}$`));
      expect(stdout).toContain(`docs/lighthouse.txt  ${versions.lighthouse}`);
      expect(stdout).toContain(`notes/lighthouse.md  ${versions.notes}`);
      expect(stdout).toContain('«lighthouse»');
    });

    it('prints JSON with --json', async () => {
      const body = json<{ hits: Hit[] }>(await cli(['search', 'keeper', '--json']));
      expect(body.hits).toEqual([
        expect.objectContaining({
          bucket: 'docs',
          key: 'lighthouse.txt',
          version: versions.lighthouse,
          score: expect.any(Number),
          snippet: expect.stringContaining('«keeper»'),
        }),
      ]);
    });

    it('shows the changed lines with --kind diff', async () => {
      const wick = succeeded(await cli(['search', '--kind', 'diff', 'wick'])).stdout;
      expect(wick).toContain(`docs/lighthouse.txt  ${versions.lighthouse}`);
      expect(wick).toContain('    + The lighthouse keeper trimmed the wick.');
      const lamp = succeeded(await cli(['search', '--kind', 'diff', 'lamp'])).stdout;
      expect(lamp).toContain('    - The lighthouse keeper lit the lamp.');
      expect(lamp).not.toContain('harbor');
      const body = json<{ hits: Hit[] }>(await cli(['search', '--kind', 'diff', 'wick', '--json']));
      expect(body.hits.map((hit) => hit.lines)).toEqual([
        { added: ['The lighthouse keeper trimmed the wick.'], removed: [] },
      ]);
    });

    it('finds definitions with --def and uses with --ref', async () => {
      expect(succeeded(await cli(['search', '--def', 'renderScene'])).stdout).toContain(
        `app/main.js  ${versions.main}`,
      );
      const parts = json<{ hits: Hit[] }>(await cli(['search', '--def', 'render', '--json']));
      expect(parts.hits.map((hit) => `${hit.bucket}/${hit.key}`)).toEqual(['app/main.js']);
      const uses = json<{ hits: Hit[] }>(await cli(['search', '--ref', 'drawMesh', '--json']));
      expect(uses.hits.map((hit) => hit.key)).toEqual(['main.js']);
      expect(succeeded(await cli(['search', '--def', 'drawMesh'])).stdout).toBe('no hits\n');
      const code = json<{ hits: Hit[] }>(await cli(['search', '--kind', 'code', 'scene', '--json']));
      expect(code.hits.map((hit) => hit.key)).toEqual(['main.js']);
    });

    it('finds old versions with --all-versions only', async () => {
      expect(succeeded(await cli(['search', 'semaphore'])).stdout).toBe('no hits\n');
      const all = succeeded(await cli(['search', 'semaphore', '--all-versions'])).stdout;
      expect(all).toContain(`docs/old.txt  ${versions.semaphore}`);
      const lamp = json<{ hits: Hit[] }>(await cli(['search', 'lamp', '--all-versions', '--json']));
      expect(lamp.hits.map((hit) => hit.version)).toEqual([versions.lighthouseOld]);
    });

    it('filters with --bucket, --prefix, --from and --limit', async () => {
      const notes = json<{ hits: Hit[] }>(await cli(['search', 'lighthouse', '--bucket', 'notes', '--json']));
      expect(notes.hits.map((hit) => `${hit.bucket}/${hit.key}`)).toEqual(['notes/lighthouse.md']);
      const prefixed = json<{ hits: Hit[] }>(
        await cli(['search', 'lighthouse', '--prefix', 'lighthouse.t', '--json']),
      );
      expect(prefixed.hits.map((hit) => `${hit.bucket}/${hit.key}`)).toEqual(['docs/lighthouse.txt']);
      expect(succeeded(await cli(['search', 'lighthouse', '--from', '2999-01-01T00:00:00Z'])).stdout).toBe(
        'no hits\n',
      );
      const one = json<{ hits: Hit[]; cursor?: string }>(
        await cli(['search', 'lighthouse', '--limit', '1', '--json']),
      );
      expect(one.hits).toHaveLength(1);
      const past = json<{ hits: Hit[] }>(
        await cli(['search', 'lighthouse', '--at', '2000-01-01T00:00:00Z', '--json']),
      );
      expect(past.hits).toEqual([]);
    });

    it('lists recent changes, newest first, one per key', async () => {
      const { stdout } = succeeded(await cli(['recent']));
      const lines = stdout.trimEnd().split('\n');
      expect(lines.map((line) => line.replace(timePattern, 'TIME'))).toEqual([
        'TIME  put     notes/lighthouse.md',
        'TIME  put     app/main.js',
        'TIME  put     docs/old.txt',
        'TIME  put     docs/lighthouse.txt',
      ]);
      const body = json<{ changes: Array<{ bucket: string; key: string; version: string; kind: string }> }>(
        await cli(['recent', '--json', '--bucket', 'docs']),
      );
      expect(body.changes.map((change) => [change.key, change.version])).toEqual([
        ['old.txt', expect.stringMatching(versionPattern)],
        ['lighthouse.txt', versions.lighthouse],
      ]);
      const limited = json<{ changes: unknown[] }>(await cli(['recent', '--limit', '1', '--json']));
      expect(limited.changes).toHaveLength(1);
      const future = json<{ changes: unknown[] }>(
        await cli(['recent', '--since', '2999-01-01T00:00:00Z', '--json']),
      );
      expect(future.changes).toEqual([]);
    });

    it('exits 1 with STRATA_BAD_QUERY on stderr for a malformed query', async () => {
      const result = await cli(['search', '"lighthouse']);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^error: STRATA_BAD_QUERY: .*closing " is missing/);
      const dangling = await cli(['search', 'lighthouse AND']);
      expect(dangling.code).toBe(1);
      expect(dangling.stderr).toMatch(/^error: STRATA_BAD_QUERY: .*ends too early/);
    });

    it('exits 1 with the error code for other bad input', async () => {
      const kind = await cli(['search', 'x', '--kind', 'regex']);
      expect(kind.code).toBe(1);
      expect(kind.stderr).toMatch(/^error: STRATA_BAD_REQUEST: /);
      const time = await cli(['recent', '--since', '2030-02-30T00:00:00Z']);
      expect(time.code).toBe(1);
      expect(time.stderr).toMatch(/^error: STRATA_INVALID_TIME: /);
    });

    it('has an Example section in the --help of search and recent', async () => {
      const search = succeeded(await runCli(['search', '--help'])).stdout;
      expect(search).toMatch(/^Example:\n {2}strata search /m);
      for (const option of [
        '--kind',
        '--def',
        '--ref',
        '--all-versions',
        '--bucket',
        '--prefix',
        '--from',
        '--to',
        '--at',
        '--limit',
        '--json',
      ])
        expect(search).toContain(option);
      const recent = succeeded(await runCli(['recent', '--help'])).stdout;
      expect(recent).toMatch(/^Example:\n {2}strata recent/m);
      for (const option of ['--bucket', '--since', '--limit', '--json']) expect(recent).toContain(option);
    });
  });

  it('says of a hit in an object over 1 MiB that it is truncated', async () => {
    const version = await put('big', 'long.txt', `zebraword ${'filler '.repeat(200_000)}lastword`);
    const { stdout } = succeeded(await cli(['search', 'zebraword', '--bucket', 'big']));
    expect(stdout).toContain(`big/long.txt  ${version}  (truncated: only its first 1 MiB is indexed)`);
    expect(succeeded(await cli(['search', 'lastword', '--bucket', 'big'])).stdout).toBe('no hits\n');
  });
});
