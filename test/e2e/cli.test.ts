import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  cleanUpProcesses,
  freePort,
  runCli,
  type StrataServer,
  startServer,
  temporaryDirectory,
  waitFor,
} from '../support/process.js';

/** The `strata` command line against a real `strata serve` process. */

const adminToken = 'cli-test-admin-token-0123456789abcdef';
/** How tokens look when printed (src/auth/tokens.ts). */
const tokenPattern = /strata_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/;
/** Help screens are checked a few at a time: each is a Node start-up, and the machine has 2 cores. */
const helpConcurrency = 4;

/** Fails with the command's stderr in view unless it exited 0. */
function succeeded(result: CliResult): CliResult {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return result;
}

function json<T>(result: CliResult): T {
  return JSON.parse(succeeded(result).stdout) as T;
}

interface HistoryJson {
  versions: Array<{
    version: string;
    kind: string;
    effectiveAt: string;
    contentType?: string;
    size?: number;
  }>;
}

// The tests of each concurrent block share no state: they run side by side to keep the file fast,
// since every command is a Node start-up. Processes are cleaned up once the block is done.
describe.concurrent('strata serve', { timeout: 60_000 }, () => {
  afterAll(cleanUpProcesses);

  it('prints the URL, and the admin token only on first start, saved with mode 0600', async () => {
    const dataDir = temporaryDirectory();
    const first = await startServer({ dataDir });
    await waitFor(() => tokenPattern.test(first.stdout()), {
      timeoutMs: 5_000,
      what: 'the admin token on stdout',
    });
    expect(first.stdout()).toContain(`listening on ${first.url}`);
    const printed = tokenPattern.exec(first.stdout())?.[0] as string;
    const file = join(dataDir, 'admin-token');
    expect(readFileSync(file, 'utf8').trim()).toBe(printed);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    // The printed token works, and so does the fallback to <data>/admin-token.
    succeeded(await runCli(['ls'], { env: { STRATA_URL: first.url, STRATA_TOKEN: printed } }));
    succeeded(await runCli(['ls'], { env: { STRATA_URL: first.url, STRATA_DATA: dataDir } }));
    expect(await first.stop()).toEqual({ code: 0, signal: null });

    const second = await startServer({ dataDir });
    expect(await second.stop()).toEqual({ code: 0, signal: null });
    expect(second.stdout()).toContain(`listening on ${second.url}`);
    expect(second.stdout()).not.toContain('Admin token');
    expect(second.stdout()).not.toContain(printed);
    expect(readFileSync(file, 'utf8').trim()).toBe(printed);

    // STRATA_ADMIN_TOKEN replaces the saved token: the file, which no longer works, is removed.
    const third = await startServer({ dataDir, adminToken });
    expect(() => statSync(file)).toThrow(/ENOENT/);
    expect(third.stdout()).toContain('STRATA_ADMIN_TOKEN replaces the admin token saved in this file');
    const stale = await fetch(`${third.url}/v1/tokens`, { headers: { authorization: `Bearer ${printed}` } });
    expect(stale.status).toBe(401);
    const given = await fetch(`${third.url}/v1/tokens`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(given.status).toBe(200);
    expect(await third.stop()).toEqual({ code: 0, signal: null });
  });

  it('refuses an admin token that could never be presented, before it creates anything', async () => {
    for (const [token, message] of [
      ['short', 'STRATA_ADMIN_TOKEN must be at least 16 characters'],
      ['has a space in it 0123456789', 'STRATA_ADMIN_TOKEN must be printable ASCII without spaces'],
      ['a'.repeat(257), 'STRATA_ADMIN_TOKEN must be at most 256 characters'],
    ] as const) {
      const dataDir = join(temporaryDirectory(), 'never-made');
      const port = await freePort();
      const refused = await runCli(['serve', '--data', dataDir, '--port', String(port)], {
        env: { STRATA_ADMIN_TOKEN: token },
        timeoutMs: 15_000,
      });
      expect(refused.code, token).toBe(1);
      expect(refused.stderr, token).toContain(`error: STRATA_BAD_REQUEST: ${message}`);
      expect(() => statSync(dataDir)).toThrow(/ENOENT/);
    }
    // A saved token edited by hand is checked the same way.
    const dataDir = temporaryDirectory();
    writeFileSync(join(dataDir, 'admin-token'), 'two words 0123456789abcdef\n', { mode: 0o600 });
    const port = await freePort();
    const refused = await runCli(['serve', '--data', dataDir, '--port', String(port)], { timeoutMs: 15_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `error: STRATA_BAD_REQUEST: the admin token in ${join(dataDir, 'admin-token')} must be printable ASCII`,
    );
    expect(() => statSync(join(dataDir, 'strata.db'))).toThrow(/ENOENT/);
  });

  it('refuses a second serve on the same data directory with a clear message', async () => {
    const dataDir = temporaryDirectory();
    const running = await startServer({ dataDir, adminToken });
    const port = await freePort();
    const second = await runCli(
      ['serve', '--data', dataDir, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn'],
      { env: { STRATA_ADMIN_TOKEN: adminToken }, timeoutMs: 15_000 },
    );
    expect(second.code).not.toBe(0);
    expect(second.code).not.toBeNull();
    expect(second.stderr).toMatch(/^error: STRATA_UNAVAILABLE: .*in use by another process/);
    expect(second.stdout).not.toContain('listening on');
    // The first node is unaffected.
    succeeded(await runCli(['ls'], { env: { STRATA_URL: running.url, STRATA_TOKEN: adminToken } }));
  });

  it('ranks as many matches as --search-ranked-max says, and refuses a value out of range', async () => {
    const server = await startServer({
      dataDir: temporaryDirectory(),
      adminToken,
      extraArguments: ['--search-ranked-max', '1000'],
    });
    // 1,001 versions that all hold the word, in one commit.
    const ops = Array.from({ length: 1001 }, (_, index) => ({
      kind: 'put',
      bucket: 'notes',
      key: `n${index}.txt`,
      value: `lighthouse ${index}`,
      contentType: 'text/plain',
    }));
    const write = await fetch(`${server.url}/v1/commits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ops }),
    });
    expect(write.status).toBe(201);
    const search = await fetch(`${server.url}/v1/search?q=lighthouse&limit=5`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const answer = (await search.json()) as { hits: unknown[]; rankedWithin?: number };
    expect(answer.hits).toHaveLength(5);
    expect(answer.rankedWithin).toBe(1000);

    for (const value of ['999', '1000001', 'many']) {
      const port = await freePort();
      const refused = await runCli(
        ['serve', '--data', temporaryDirectory(), '--port', String(port), '--search-ranked-max', value],
        { env: { STRATA_ADMIN_TOKEN: adminToken }, timeoutMs: 15_000 },
      );
      expect(refused.code, value).toBe(1);
      expect(refused.stderr, value).toMatch(/--search-ranked-max/);
      expect(refused.stdout, value).not.toContain('listening on');
    }
  });

  it('refuses a --port out of range or an unknown --log-level before it creates anything', async () => {
    const dataDir = join(temporaryDirectory(), 'never-made');
    const result = await runCli(['serve', '--port', '99999', '--data', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('expected a TCP port from 0 to 65535');
    expect(() => statSync(dataDir)).toThrow(/ENOENT/);
    const level = await runCli(['serve', '--log-level', 'verbose', '--data', dataDir]);
    expect(level.code).toBe(1);
    expect(level.stderr).toMatch(
      /^error: option '--log-level <level>' argument 'verbose' is invalid\. Allowed choices are fatal, error, warn, info, debug\.\n$/,
    );
    expect(() => statSync(dataDir)).toThrow(/ENOENT/);
    // A name peers would refuse (too long, not ASCII: it travels in a header) is refused here.
    for (const name of ['n'.repeat(129), 'nœud', ' ']) {
      const refused = await runCli(['serve', '--node-name', name, '--data', dataDir]);
      expect(refused.code, name).toBe(1);
      expect(refused.stderr).toContain('expected 1–128 visible ASCII characters');
    }
    expect(() => statSync(dataDir)).toThrow(/ENOENT/);
  });

  it('leaves no data directory and no unseen admin token when the port is taken', async () => {
    const running = await startServer({ dataDir: temporaryDirectory(), adminToken });
    const dataDir = join(temporaryDirectory(), 'never-kept');
    const busy = await runCli(['serve', '--data', dataDir, '--port', String(running.port)], {
      timeoutMs: 15_000,
    });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^error: EADDRINUSE: .*another process holds it.*--port\)\n$/);
    expect(busy.stdout).not.toContain('Admin token');
    expect(() => statSync(dataDir)).toThrow(/ENOENT/);
    // A directory that was there stays, without the token that was never shown.
    const existing = temporaryDirectory();
    const again = await runCli(['serve', '--data', existing, '--port', String(running.port)], {
      timeoutMs: 15_000,
    });
    expect(again.code).toBe(1);
    expect(statSync(existing).isDirectory()).toBe(true);
    expect(() => statSync(join(existing, 'admin-token'))).toThrow(/ENOENT/);
    // The next start that listens generates a token and prints it.
    const next = await startServer({ dataDir: existing });
    await waitFor(() => tokenPattern.test(next.stdout()), { timeoutMs: 5_000, what: 'the admin token' });
    expect(await next.stop()).toEqual({ code: 0, signal: null });
  });

  it('reports an unreachable STRATA_URL clearly and exits 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(['get', 'notes', 'a.txt'], {
      env: { STRATA_URL: url, STRATA_TOKEN: adminToken },
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `error: STRATA_UNREACHABLE: cannot reach ${url}: connect ECONNREFUSED ${url.slice(7)}\n`,
    );
  });

  it('prints an Example: section in the --help of every command', async () => {
    /** Command names listed under "Commands:" in a help screen, without commander's own `help`. */
    const commandsIn = (help: string): string[] => {
      const section = help.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? '';
      return [...section.matchAll(/^ {2}(\S+)/gm)]
        .map((match) => match[1] as string)
        .filter((name) => name !== 'help');
    };
    const top = succeeded(await runCli(['--help']));
    expect(top.stdout).toContain('Example:');
    const pending = commandsIn(top.stdout).map((name) => [name]);
    expect(pending.map((path) => path[0])).toEqual(
      expect.arrayContaining(['serve', 'put', 'get', 'rm', 'ls', 'history', 'token', 'reindex', 'digest']),
    );
    const checked: string[] = [];
    const withoutExample: string[] = [];
    // Bounded: the tree of commands is small; anything deeper than this is a parsing mistake.
    for (let round = 0; round < 3 && pending.length > 0; round++) {
      const batch = pending.splice(0);
      for (let start = 0; start < batch.length; start += helpConcurrency) {
        await Promise.all(
          batch.slice(start, start + helpConcurrency).map(async (path) => {
            const help = succeeded(await runCli([...path, '--help']));
            checked.push(path.join(' '));
            if (!/^Example:\n {2}strata /m.test(help.stdout)) withoutExample.push(path.join(' '));
            for (const sub of commandsIn(help.stdout)) pending.push([...path, sub]);
          }),
        );
      }
    }
    expect(pending).toEqual([]);
    expect(checked).toEqual(expect.arrayContaining(['token create', 'token list', 'token revoke']));
    expect(withoutExample).toEqual([]);
  });
});

describe('strata client commands', () => {
  let server: StrataServer;
  let dataDir: string;
  let workDir: string;

  const cli = (commandArguments: string[], input?: string | Buffer, token = adminToken) =>
    runCli(commandArguments, { env: { STRATA_URL: server.url, STRATA_TOKEN: token }, input, cwd: workDir });

  beforeAll(async () => {
    dataDir = temporaryDirectory();
    workDir = temporaryDirectory();
    server = await startServer({ dataDir, adminToken });
  });
  afterAll(cleanUpProcesses);

  // Side by side, each test takes as long as the whole block: bound them by the file's budget.
  describe.concurrent('on a running node', { timeout: 60_000 }, () => {
    it('put from a file and from stdin, get back the same bytes', async () => {
      const photo = randomBytes(100 * 1024);
      const photoFile = join(workDir, 'photo.png');
      writeFileSync(photoFile, photo);
      const [fromFile, fromDash, fromStdin] = await Promise.all([
        cli(['put', 'files', 'images/photo.png', photoFile, '--content-type', 'image/png', '--json']),
        cli(['put', 'files', 'greeting.txt', '-', '--content-type', 'text/plain'], 'hi\n'),
        cli(['put', 'files', 'no-file-argument.bin'], Buffer.from([0, 1, 2, 255])),
      ]);
      const put = json<{ version: string; commit: string }>(fromFile);
      expect(put.version).toMatch(/\S+/);
      expect(put.commit).toMatch(/\S+/);
      expect(succeeded(fromDash).stdout).toMatch(/^\S+\n$/);
      succeeded(fromStdin);

      const [gotPhoto, gotGreeting, gotBinary] = await Promise.all([
        cli(['get', 'files', 'images/photo.png']),
        cli(['get', 'files', 'greeting.txt']),
        cli(['get', 'files', 'no-file-argument.bin']),
      ]);
      expect(succeeded(gotPhoto).stdoutBytes.equals(photo)).toBe(true);
      expect(succeeded(gotGreeting).stdout).toBe('hi\n');
      expect([...succeeded(gotBinary).stdoutBytes]).toEqual([0, 1, 2, 255]);

      const output = join(workDir, 'copy.png');
      succeeded(await cli(['get', 'files', 'images/photo.png', '-o', output]));
      expect(readFileSync(output).equals(photo)).toBe(true);
      const history = json<HistoryJson>(await cli(['history', 'files', 'images/photo.png', '--json']));
      expect(history.versions).toMatchObject([
        { version: put.version, contentType: 'image/png', size: photo.length },
      ]);
    });

    it('get --at reads the value effective at a time, past or future', async () => {
      const first = succeeded(await cli(['put', 'notes', 'plan.txt', '-'], 'one')).stdout.trim();
      // In this order: a plain write made after a future one was staged would become that future
      // version's conflict (DESIGN §2, "Parents of a write"), and get would warn about it.
      succeeded(await cli(['put', 'notes', 'plan.txt', '-'], 'two'));
      succeeded(
        await cli(['put', 'notes', 'plan.txt', '-', '--effective-at', '2999-01-01T00:00:00Z'], 'future'),
      );
      const history = json<HistoryJson>(await cli(['history', 'notes', 'plan.txt', '--json']));
      const firstEffectiveAt = history.versions.find((v) => v.version === first)?.effectiveAt as string;
      expect(firstEffectiveAt).toBeDefined();
      const [now, past, future] = await Promise.all([
        cli(['get', 'notes', 'plan.txt']),
        cli(['get', 'notes', 'plan.txt', '--at', firstEffectiveAt]),
        cli(['get', 'notes', 'plan.txt', '--at', '2999-06-01T00:00:00Z']),
      ]);
      expect(succeeded(now).stdout).toBe('two');
      expect(succeeded(past).stdout).toBe('one');
      expect(succeeded(future).stdout).toBe('future');
    });

    it('get --version reads that exact version', async () => {
      const first = succeeded(await cli(['put', 'notes', 'draft.txt', '-'], 'first draft')).stdout.trim();
      succeeded(await cli(['put', 'notes', 'draft.txt', '-'], 'second draft'));
      const pinned = await cli(['get', 'notes', 'draft.txt', '--version', first]);
      expect(succeeded(pinned).stdout).toBe('first draft');
    });

    it('put and rm --if-match take a version bare or quoted as in ETag; a stale one fails, a malformed one is refused unsent', async () => {
      const first = succeeded(await cli(['put', 'notes', 'guarded.txt', '-'], 'one')).stdout.trim();
      const second = succeeded(
        await cli(['put', 'notes', 'guarded.txt', '-', '--if-match', `"${first}"`], 'two'),
      ).stdout.trim();
      const [stale, malformed, badHeader] = await Promise.all([
        cli(['put', 'notes', 'guarded.txt', '-', '--if-match', first], 'three'),
        cli(['rm', 'notes', 'guarded.txt', '--if-match', 'W/"abc"']),
        cli(['put', 'notes', 'guarded.txt', '-', '--content-type', 'text/plain\nx'], 'four'),
      ]);
      expect(stale).toMatchObject({ code: 1, stdout: '' });
      expect(stale.stderr).toMatch(/^error: STRATA_PRECONDITION_FAILED: /);
      expect(malformed).toMatchObject({ code: 1, stdout: '' });
      expect(malformed.stderr).toMatch(/^error: STRATA_BAD_REQUEST: --if-match takes a version id/);
      // Refused by the HTTP client before sending: not reported as an unreachable server.
      expect(badHeader).toMatchObject({ code: 1, stdout: '' });
      expect(badHeader.stderr).toMatch(/^error: STRATA_BAD_REQUEST: request not sent: /);
      // get --version takes the same forms.
      expect(succeeded(await cli(['get', 'notes', 'guarded.txt', '--version', `"${first}"`])).stdout).toBe(
        'one',
      );
      const badVersion = await cli(['get', 'notes', 'guarded.txt', '--version', 'W/"abc"']);
      expect(badVersion.stderr).toMatch(/^error: STRATA_BAD_REQUEST: --version takes a version id/);
      succeeded(await cli(['rm', 'notes', 'guarded.txt', '--if-match', second]));
      const history = json<HistoryJson>(await cli(['history', 'notes', 'guarded.txt', '--json']));
      expect(history.versions.map((v) => v.kind)).toEqual(['delete', 'put', 'put']);
    });

    it('refuses unreadable inputs, unwritable outputs and a malformed STRATA_URL in one line, no stack', async () => {
      succeeded(await cli(['put', 'notes', 'out.txt', '-'], 'bytes'));
      const badUrl = (url: string) =>
        runCli(['ls'], { env: { STRATA_URL: url, STRATA_TOKEN: adminToken }, cwd: workDir });
      const results = await Promise.all([
        cli(['put', 'notes', 'missing.txt', join(workDir, 'no-such-file')]),
        cli(['put', 'notes', 'dir.txt', workDir]),
        cli(['get', 'notes', 'out.txt', '-o', join(workDir, 'no-such-dir', 'x')]),
        cli(['get', 'notes', 'out.txt', '-o', workDir]),
        badUrl('garbage'),
        badUrl('ftp://127.0.0.1'),
        badUrl(`${server.url}/v1`),
        badUrl(`${server.url}?x=1`),
      ]);
      const expected = [
        /^error: STRATA_BAD_REQUEST: cannot read .*no-such-file: ENOENT/,
        /^error: STRATA_BAD_REQUEST: .* is not a file: put uploads one file/,
        /^error: ENOENT: no such file or directory/,
        /^error: EISDIR: /,
        /^error: STRATA_BAD_REQUEST: STRATA_URL "garbage" must be http:\/\/host\[:port\]/,
        /^error: STRATA_BAD_REQUEST: STRATA_URL "ftp:/,
        /^error: STRATA_BAD_REQUEST: STRATA_URL ".*\/v1" must be/,
        /^error: STRATA_BAD_REQUEST: STRATA_URL ".*\?x=1" must be/,
      ];
      for (const [index, result] of results.entries()) {
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr).toMatch(expected[index] as RegExp);
        expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
      }
      const history = json<HistoryJson>(await cli(['history', 'notes', 'dir.txt', '--json']));
      expect(history.versions).toEqual([]);
    });

    it('refuses a directory on stdin, an empty time and a key with . or .. segments, changing nothing', async () => {
      succeeded(await cli(['put', 'notes', 'kept.txt', '-'], 'keep me'));
      const directory = openSync(workDir, 'r');
      const fromDirectory = await runCli(['put', 'notes', 'kept.txt'], {
        env: { STRATA_URL: server.url, STRATA_TOKEN: adminToken },
        cwd: workDir,
        stdinFd: directory,
      }).finally(() => closeSync(directory));
      const refused = await Promise.all([
        cli(['put', 'notes', 'kept.txt', '-', '--effective-at', ''], 'empty time'),
        cli(['get', 'notes', 'kept.txt', '--at', '']),
        cli(['ls', 'notes', '--at', '']),
        cli(['put', 'notes', 'zz/../kept.txt', '-'], 'clobbered'),
        cli(['rm', 'notes', 'q/../kept.txt']),
        cli(['search', 'keep', '--from', '2026-12-02T00:00:00Z', '--to', '2026-12-01T00:00:00Z']),
        cli(['search', 'keep', '--at', '2026-12-01T00:00:00Z', '--all-versions']),
        cli(['search']),
      ]);
      const expected = [
        /^error: STRATA_BAD_REQUEST: stdin is a directory/,
        /^error: STRATA_INVALID_TIME: --effective-at "" is neither/,
        /^error: STRATA_INVALID_TIME: --at "" is neither/,
        /^error: STRATA_INVALID_TIME: --at "" is neither/,
        /^error: STRATA_INVALID_NAME: key must not have \. or \.\. segments/,
        /^error: STRATA_NOT_FOUND: /,
        /^error: STRATA_BAD_REQUEST: --from is after --to/,
        /^error: STRATA_BAD_REQUEST: --at picks the versions current then/,
        /^error: STRATA_BAD_QUERY: give a query, or --def/,
      ];
      for (const [index, result] of [fromDirectory, ...refused].entries()) {
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr).toMatch(expected[index] as RegExp);
      }
      expect(succeeded(await cli(['get', 'notes', 'kept.txt'])).stdout).toBe('keep me');
      const history = json<HistoryJson>(await cli(['history', 'notes', 'kept.txt', '--json']));
      expect(history.versions).toHaveLength(1);
    });

    it('rm deletes a key; get then fails with STRATA_NOT_FOUND', async () => {
      succeeded(await cli(['put', 'notes', 'gone.txt', '-'], 'bye'));
      const removed = json<{ version: string }>(await cli(['rm', 'notes', 'gone.txt', '--json']));
      expect(removed.version).toMatch(/\S+/);
      const [get, never] = await Promise.all([
        cli(['get', 'notes', 'gone.txt']),
        cli(['rm', 'notes', 'never-written.txt']),
      ]);
      expect(get).toMatchObject({
        code: 1,
        stdout: '',
        stderr: 'error: STRATA_NOT_FOUND: notes/gone.txt was deleted\n',
      });
      expect(never).toMatchObject({ code: 1, stdout: '' });
      expect(never.stderr).toMatch(/^error: STRATA_NOT_FOUND: /);
    });

    it('ls lists buckets and live keys, as text and JSON', async () => {
      const puts = await Promise.all(
        [
          ['a.txt', 'a'],
          ['b/c.txt', 'bc'],
          ['d.txt', 'd'],
        ].map(([key, body]) =>
          cli(['put', 'listing', key as string, '-', '--content-type', 'text/plain'], body),
        ),
      );
      for (const result of puts) succeeded(result);
      succeeded(await cli(['rm', 'listing', 'd.txt']));
      const [buckets, text, listed, prefixed, empty, noBucket] = await Promise.all([
        cli(['ls']),
        cli(['ls', 'listing']),
        cli(['ls', 'listing', '--json']),
        cli(['ls', 'listing', '--prefix', 'b/', '--json']),
        cli(['ls', 'listing', '--prefix', 'zzz']),
        cli(['ls', '--prefix', 'b/']),
      ]);
      // Nothing to list prints nothing; a key option without a bucket is refused.
      expect(succeeded(empty).stdout).toBe('');
      expect(noBucket).toMatchObject({ code: 1, stdout: '' });
      expect(noBucket.stderr).toMatch(
        /^error: STRATA_BAD_REQUEST: --prefix, --after and --at list the keys of a bucket/,
      );
      expect(succeeded(buckets).stdout.split('\n')).toContain('listing');
      const lines = succeeded(text).stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^\S+\s+1\s+a\.txt$/);
      expect(lines[1]).toMatch(/^\S+\s+2\s+b\/c\.txt$/);
      const keys = json<{ keys: Array<{ key: string; size: number; contentType: string }> }>(listed);
      expect(keys.keys).toMatchObject([
        { key: 'a.txt', size: 1, contentType: 'text/plain' },
        { key: 'b/c.txt', size: 2, contentType: 'text/plain' },
      ]);
      expect(json<{ keys: Array<{ key: string }> }>(prefixed).keys.map((k) => k.key)).toEqual(['b/c.txt']);
    });

    it('history lists every version newest first, as text and JSON', async () => {
      const v1 = succeeded(await cli(['put', 'notes', 'story.txt', '-'], 'v1')).stdout.trim();
      const v2 = succeeded(await cli(['put', 'notes', 'story.txt', '-'], 'v2')).stdout.trim();
      const v3 = succeeded(await cli(['rm', 'notes', 'story.txt'])).stdout.trim();
      const [text, asJson] = await Promise.all([
        cli(['history', 'notes', 'story.txt']),
        cli(['history', 'notes', 'story.txt', '--json']),
      ]);
      const lines = succeeded(text).stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(new RegExp(`delete\\s+${v3}$`));
      expect(lines[1]).toMatch(new RegExp(`put\\s+${v2}$`));
      expect(lines[2]).toMatch(new RegExp(`put\\s+${v1}$`));
      const history = json<HistoryJson>(asJson);
      expect(history.versions.map((v) => [v.kind, v.version])).toEqual([
        ['delete', v3],
        ['put', v2],
        ['put', v1],
      ]);
      const [never, neverJson] = await Promise.all([
        cli(['history', 'notes', 'never-written.txt']),
        cli(['history', 'notes', 'never-written.txt', '--json']),
      ]);
      expect(never).toMatchObject({
        code: 0,
        stdout: '',
        stderr: 'notes/never-written.txt has no versions: it was never written\n',
      });
      expect(json<HistoryJson>(neverJson).versions).toEqual([]);
    });

    it('token create, list and revoke; a revoked token is refused', async () => {
      const [reader, writer] = await Promise.all([
        cli(['token', 'create', '--role', 'read', '--name', 'ci-reader', '--json']),
        cli(['token', 'create', '--role', 'write', '--name', 'ci-writer']),
        cli(['put', 'notes', 'for-reader.txt', '-'], 'readable'),
      ]);
      const created = json<{ id: string; token: string; role: string; name: string }>(reader);
      expect(created).toMatchObject({ role: 'read', name: 'ci-reader' });
      expect(created.token).toMatch(tokenPattern);
      expect(succeeded(writer).stdout).toMatch(new RegExp(`^${tokenPattern.source}\\n$`));

      const [listText, listJson, readAllowed, writeForbidden] = await Promise.all([
        cli(['token', 'list']),
        cli(['token', 'list', '--json']),
        cli(['get', 'notes', 'for-reader.txt'], undefined, created.token),
        cli(['put', 'notes', 'by-reader.txt', '-'], 'no', created.token),
      ]);
      expect(succeeded(listText).stdout).toMatch(new RegExp(`^${created.id}\\s+read\\s+.*ci-reader$`, 'm'));
      expect(succeeded(listText).stdout).not.toContain(created.token);
      const listed = json<{ tokens: Array<Record<string, unknown>> }>(listJson);
      expect(listed.tokens).toContainEqual(
        expect.objectContaining({ id: created.id, role: 'read', name: 'ci-reader' }),
      );
      expect(JSON.stringify(listed)).not.toContain(created.token);

      expect(succeeded(readAllowed).stdout).toBe('readable');
      expect(writeForbidden.code).toBe(1);
      expect(writeForbidden.stderr).toMatch(/^error: STRATA_FORBIDDEN: /);

      expect(succeeded(await cli(['token', 'revoke', created.id])).stdout).toBe(`revoked ${created.id}\n`);
      const [listAfter, refused] = await Promise.all([
        cli(['token', 'list', '--json']),
        cli(['get', 'notes', 'for-reader.txt'], undefined, created.token),
      ]);
      const after = json<{ tokens: Array<{ id: string }> }>(listAfter);
      expect(after.tokens.map((t) => t.id)).not.toContain(created.id);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(/^error: STRATA_UNAUTHORIZED: /);
    });
  });

  // Last: it stops the node to work on its data directory offline.
  it('digest and reindex, on the running node and offline', async () => {
    succeeded(await cli(['put', 'notes', 'digested.txt', '-'], 'in the digest'));
    const [text, asJson, rebuiltText] = await Promise.all([
      cli(['digest']),
      cli(['digest', '--json']),
      cli(['reindex']),
    ]);
    const digest = succeeded(text).stdout.trim();
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(json<{ digest: string }>(asJson).digest).toBe(digest);
    expect(succeeded(rebuiltText).stdout).toMatch(/^digest before [0-9a-f]{64}\n.*\nunchanged\n$/m);
    // Offline commands refuse a data directory a node holds open.
    const [rebuiltJson, busy] = await Promise.all([
      cli(['reindex', '--json']),
      cli(['digest', '--data', dataDir]),
    ]);
    const rebuilt = json<{ before: string; after: string; commits: number; versions: number }>(rebuiltJson);
    expect(rebuilt).toMatchObject({ before: digest, after: digest });
    expect(rebuilt.commits).toBeGreaterThan(0);
    expect(rebuilt.versions).toBeGreaterThanOrEqual(rebuilt.commits);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^error: STRATA_UNAVAILABLE: .*in use by another process/);

    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(json<{ digest: string }>(await cli(['digest', '--data', dataDir, '--json'])).digest).toBe(digest);
    const offline = json<{ before: string; after: string; commits: number; versions: number }>(
      await cli(['reindex', '--data', dataDir, '--json']),
    );
    expect(offline).toEqual({
      before: digest,
      after: digest,
      commits: rebuilt.commits,
      versions: rebuilt.versions,
    });
    // A directory whose strata.db is no Strata database is refused and left as it was.
    const stray = temporaryDirectory();
    writeFileSync(join(stray, 'strata.db'), '');
    for (const command of ['digest', 'reindex']) {
      const refused = await cli([command, '--data', stray]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: STRATA_NOT_FOUND: .* holds no Strata database/);
    }
    expect(readdirSync(stray)).toEqual(['strata.db']);
    expect(statSync(join(stray, 'strata.db')).size).toBe(0);
  });
});
