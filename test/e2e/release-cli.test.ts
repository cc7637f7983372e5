import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, cleanUpProcesses, runCli, temporaryDirectory } from '../support/process.js';
import {
  midpoint,
  type PublishSummary,
  type ReleaseInfo,
  type ReleaseServer,
  startReleaseServer,
} from '../support/release-server.js';

/**
 * The release commands of the CLI (DESIGN §3) against a real node: publish, releases, rollback,
 * open --at, diff, cancel, the git hook and `publish --git`, and their errors.
 */

const app = 'shop';
/** A git command in a fresh repository takes milliseconds; the post-commit hook runs a publish (~1 s). */
const gitTimeoutMs = 20_000;
const run = promisify(execFile);
/** CLI runs in flight at once in the error checks: each is a Node start-up on a 2-core machine. */
const cliConcurrency = 4;

let node: ReleaseServer;
let appDir: string;

function page(version: string): string {
  return `<!doctype html>\n<html>\n<head><title>shop</title></head>\n<body>\n<h1>shop ${version}</h1>\n<script src="app.js"></script>\n</body>\n</html>\n`;
}

function writeApp(dir: string, version: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.html'), page(version));
  writeFileSync(join(dir, 'app.js'), "console.log('shop');\n");
}

/** GET of an app URL: the body, and the release that served it. */
async function fetchApp(url: string): Promise<{ status: number; body: string; release: unknown }> {
  const response = await request(url);
  return {
    status: response.statusCode,
    body: await response.body.text(),
    release: response.headers['strata-release'],
  };
}

interface Failure extends CliResult {
  command: string;
}

/**
 * A command that must fail: exit 1, nothing on stdout, and a last line on stderr naming the code
 * (progress lines may come before it), without a stack trace.
 */
function expectFailure(result: Failure, code: string, message?: RegExp): void {
  const lastLine = result.stderr.trimEnd().split('\n').at(-1) ?? '';
  expect({ code: result.code, stdout: result.stdout, lastLine }, result.command).toEqual({
    code: 1,
    stdout: '',
    lastLine: expect.stringMatching(new RegExp(`^error: ${code}: `)),
  });
  expect(result.stderr, result.command).not.toMatch(/^\s+at /m);
  if (message) expect(lastLine, result.command).toMatch(message);
}

/** Runs a command expected to fail (its output is checked by `expectFailure`). */
async function failing(commandArguments: string[], options: { cwd?: string } = {}): Promise<Failure> {
  const result = await runCli(commandArguments, { env: node.env, ...options });
  return { ...result, command: `strata ${commandArguments.join(' ')}` };
}

/** `git` in a repository, with the node's URL and token in its environment (for the hook). */
async function git(repo: string, ...args: string[]): Promise<string> {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('STRATA_') && !name.startsWith('GIT_')) environment[name] = value;
  }
  const { stdout } = await run('git', ['-C', repo, ...args], {
    env: {
      ...environment,
      ...node.env,
      GIT_AUTHOR_NAME: 'Strata Test',
      GIT_AUTHOR_EMAIL: 'test@example.invalid',
      GIT_COMMITTER_NAME: 'Strata Test',
      GIT_COMMITTER_EMAIL: 'test@example.invalid',
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: repo,
    },
    timeout: gitTimeoutMs,
  });
  return stdout.trim();
}

async function changeCursor(): Promise<number> {
  let since = 0;
  for (;;) {
    const { changes, last } = await node.api<{ changes: unknown[]; last: number }>(
      `/v1/changes?since=${since}&limit=1000`,
    );
    if (changes.length < 1000) return last;
    since = last;
  }
}

describe('strata release commands', () => {
  // The steps build on each other: one timeline of one app, as a person would use it.
  let first: PublishSummary;
  let second: PublishSummary;
  let rolledBack: string;
  let timeline: ReleaseInfo[];

  beforeAll(async () => {
    node = await startReleaseServer();
    appDir = join(temporaryDirectory('strata-release-cli-'), 'shop');
  });

  afterAll(cleanUpProcesses);

  it('publishes a directory, lists the releases, and skips a publish that changes nothing', async () => {
    writeApp(appDir, 'v1');
    first = await node.publish(appDir, app, ['--message', 'first']);
    expect(first).toMatchObject({ app, files: 2, uploaded: 2, dryRun: false });
    writeApp(appDir, 'v2');
    second = await node.publish(appDir, app, ['--message', 'second']);
    // app.js did not change: it is routed to the version already stored.
    expect(second).toMatchObject({ files: 2, uploaded: 1, unchanged: 1 });
    expect(second.release).not.toBe(first.release);

    const again = await node.publish(appDir, app);
    expect(again).toMatchObject({ unchangedRelease: true, release: second.release, unchanged: 2 });

    const printed = JSON.parse((await node.cli(['releases', app, '--json'])).stdout) as {
      releases: ReleaseInfo[];
    };
    timeline = printed.releases;
    expect(timeline.map((release) => [release.release, release.state, release.message])).toEqual([
      [second.release, 'active', 'second'],
      [first.release, 'past', 'first'],
    ]);
    const text = (await node.cli(['releases', app])).stdout;
    expect(text).toMatch(new RegExp(`^active\\s.*${second.release}.*second`, 'm'));
    expect((await fetchApp(`${node.server.url}/apps/${app}/`)).body).toContain('shop v2');
  });

  it('rolls back to the previous release, effective now', async () => {
    const result = JSON.parse((await node.cli(['rollback', app, '--json'])).stdout) as {
      release: string;
      rolledBackTo: string;
    };
    expect(result.rolledBackTo).toBe(first.release);
    rolledBack = result.release;
    timeline = await node.releases(app);
    expect(timeline.map((release) => [release.release, release.state])).toEqual([
      [rolledBack, 'active'],
      [second.release, 'past'],
      [first.release, 'past'],
    ]);
    const served = await fetchApp(`${node.server.url}/apps/${app}/`);
    expect(served).toMatchObject({ status: 200, release: rolledBack });
    expect(served.body).toContain('shop v1');
  });

  it('open --at prints a URL that serves the release in effect then', async () => {
    const [rollback, secondInfo, firstInfo] = timeline as [ReleaseInfo, ReleaseInfo, ReleaseInfo];
    const cases = [
      {
        at: midpoint(firstInfo.effectiveAt, secondInfo.effectiveAt),
        release: first.release,
        text: 'shop v1',
      },
      {
        at: midpoint(secondInfo.effectiveAt, rollback.effectiveAt),
        release: second.release,
        text: 'shop v2',
      },
    ];
    for (const { at, release, text } of cases) {
      const url = (await node.cli(['open', app, '--at', at])).stdout.trim();
      expect(new URL(url).searchParams.get('at')).toBe(at);
      const served = await fetchApp(url);
      expect(served).toMatchObject({ status: 200, release });
      expect(served.body).toContain(text);
    }
    const now = (await node.cli(['open', app])).stdout.trim();
    expect(now).toBe(`${node.server.url}/apps/${app}/`);
    expect((await fetchApp(now)).body).toContain('shop v1');
  });

  it('diff shows the changed line of a text file', async () => {
    const text = (await node.cli(['diff', app, first.release as string, second.release as string])).stdout;
    expect(text).toMatch(/^changed {2}\/index\.html$/m);
    expect(text).toMatch(/^-<h1>shop v1<\/h1>$/m);
    expect(text).toMatch(/^\+<h1>shop v2<\/h1>$/m);
    expect(text).not.toContain('/app.js');
    const same = (await node.cli(['diff', app, first.release as string, rolledBack])).stdout;
    expect(same.trim()).toBe('no differences');
  });

  it('cancels a scheduled release, and refuses to cancel the active one', async () => {
    writeApp(appDir, 'v3');
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await node.publish(appDir, app, ['--effective-at', inAnHour, '--message', 'later']);
    expect(Date.parse(scheduled.effectiveAt as string)).toBe(Date.parse(inAnHour));
    expect((await node.releases(app)).find((r) => r.release === scheduled.release)?.state).toBe('scheduled');
    // Until it takes effect, the app still serves the active release.
    expect((await fetchApp(`${node.server.url}/apps/${app}/`)).release).toBe(rolledBack);

    const cancelled = await node.cli(['cancel', app, scheduled.release as string]);
    expect(cancelled.stdout.trim()).toBe(`cancelled ${scheduled.release}`);
    expect((await node.releases(app)).find((r) => r.release === scheduled.release)?.state).toBe('cancelled');
    // Time travel to after its effective time finds the active release, not the cancelled one.
    const later = new Date(Date.parse(inAnHour) + 60_000).toISOString();
    expect((await fetchApp(`${node.server.url}/apps/${app}/?at=${later}`)).release).toBe(rolledBack);

    expectFailure(await failing(['cancel', app, rolledBack]), 'STRATA_CONFLICT', /roll back instead/);
    expectFailure(await failing(['cancel', app, scheduled.release as string]), 'STRATA_CONFLICT');
  });

  it('publishes every commit through the git hook, and HEAD with publish --git', async () => {
    const repo = temporaryDirectory('strata-git-');
    await git(repo, 'init', '--quiet', '--initial-branch=main');
    writeFileSync(join(repo, 'index.html'), '<p>from git, first</p>\n');
    // Installed twice: the second replaces Strata's own hook without --force. A name that is no app
    // name never reaches the hook's shell script.
    for (const app of ['gitshop', 'gitshop']) {
      const installed = await node.cli(['hook', 'install', '--app', app], { cwd: repo });
      expect(installed.stdout).toContain(join('.git', 'hooks', 'post-commit'));
    }
    expectFailure(
      await failing(['hook', 'install', '--app', 'my app; rm -rf ~', '--force'], { cwd: repo }),
      'STRATA_INVALID_NAME',
    );
    expect(readFileSync(join(repo, '.git', 'hooks', 'post-commit'), 'utf8')).toContain("--app 'gitshop'");

    await git(repo, 'add', '.');
    await git(repo, 'commit', '--quiet', '-m', 'first commit');
    const firstCommit = await git(repo, 'rev-parse', 'HEAD');
    let releases = await node.releases('gitshop');
    expect(releases).toHaveLength(1);
    expect(releases[0]).toMatchObject({ state: 'active', message: `(git ${firstCommit}: first commit)` });

    // The hook publishes the committed tree, not the work tree.
    writeFileSync(join(repo, 'index.html'), '<p>from git, second</p>\n');
    writeFileSync(join(repo, 'draft.html'), '<p>not committed</p>\n');
    await git(repo, 'add', 'index.html');
    await git(repo, 'commit', '--quiet', '-m', 'second commit');
    const secondCommit = await git(repo, 'rev-parse', 'HEAD');
    releases = await node.releases('gitshop');
    expect(releases.map((release) => [release.state, release.message])).toEqual([
      ['active', `(git ${secondCommit}: second commit)`],
      ['past', `(git ${firstCommit}: first commit)`],
    ]);
    expect((await fetchApp(`${node.server.url}/apps/gitshop/`)).body).toContain('<p>from git, second</p>');
    expect((await fetchApp(`${node.server.url}/apps/gitshop/draft.html`)).status).toBe(404);

    // publish --git without a directory publishes the repository the command runs in.
    const summary = JSON.parse(
      (
        await node.cli(['publish', '--git', '--app', 'gitshop2', '--message', 'by hand', '--json'], {
          cwd: repo,
        })
      ).stdout,
    ) as PublishSummary;
    expect(summary.files).toBe(1);
    expect((await node.releases('gitshop2'))[0]?.message).toBe(
      `by hand (git ${secondCommit}: second commit)`,
    );

    // Unchanged HEAD: no new release.
    const again = JSON.parse(
      (await node.cli(['publish', '--git', '--app', 'gitshop', '--json'], { cwd: repo })).stdout,
    ) as PublishSummary;
    expect(again).toMatchObject({ unchangedRelease: true, release: releases[0]?.release });
    expect(await node.releases('gitshop')).toHaveLength(2);
  });

  it('writes nothing on --dry-run', async () => {
    writeApp(appDir, 'v4-dry');
    writeFileSync(join(appDir, 'extra.css'), 'body { color: red; }\n');
    const cursor = await changeCursor();
    const before = await node.releases(app);
    const summary = JSON.parse(
      (await node.cli(['publish', appDir, '--app', app, '--dry-run', '--json'])).stdout,
    ) as PublishSummary;
    expect(summary).toMatchObject({ dryRun: true, files: 3, uploaded: 2 });
    expect(summary.release).toBeUndefined();
    const fresh = JSON.parse(
      (await node.cli(['publish', appDir, '--app', 'never-published', '--dry-run', '--json'])).stdout,
    ) as PublishSummary;
    expect(fresh.dryRun).toBe(true);
    const text = (await node.cli(['publish', appDir, '--app', app, '--dry-run'])).stdout;
    expect(text).toMatch(
      /^dry run: 3 file\(s\): 2 to upload \(\d+ bytes\), 0 already stored, 1 unchanged\n {2}upload application\/extra\.css \(\d+ bytes\)\n {2}upload application\/index\.html \(\d+ bytes\)\n$/,
    );
    expect(await changeCursor()).toBe(cursor);
    expect(await node.releases(app)).toEqual(before);
    expectFailure(await failing(['releases', 'never-published']), 'STRATA_NOT_FOUND');
    const missing = await request(`${node.server.url}/v1/buckets/application/keys/extra.css`, {
      headers: { authorization: `Bearer ${node.env.STRATA_TOKEN}` },
    });
    await missing.body.dump();
    expect(missing.statusCode).toBe(404);
  });

  it('gives clear errors and exit 1 for an unknown app, a bad date and a rollback with nothing before', async () => {
    const single = join(temporaryDirectory('strata-single-'), 'single');
    writeApp(single, 'only');
    await node.publish(single, 'single');
    const expectations: Array<[string[], string, RegExp?]> = [
      [['releases', 'no-such-app'], 'STRATA_NOT_FOUND', /no-such-app/],
      [['rollback', 'no-such-app'], 'STRATA_NOT_FOUND', /no-such-app/],
      [['cancel', 'no-such-app', first.release as string], 'STRATA_NOT_FOUND', /no-such-app/],
      [['diff', 'no-such-app', first.release as string, second.release as string], 'STRATA_NOT_FOUND'],
      [
        ['publish', single, '--app', 'single', '--effective-at', 'next tuesday'],
        'STRATA_INVALID_TIME',
        /next tuesday/,
      ],
      [
        ['publish', single, '--app', 'single', '--effective-at', '2026-02-30T09:00:00Z'],
        'STRATA_INVALID_TIME',
      ],
      [['rollback', app, '--effective-at', 'soon'], 'STRATA_INVALID_TIME', /soon/],
      [['rollback', 'single'], 'STRATA_CONFLICT', /no release before/],
      [['publish', join(single, 'missing'), '--app', 'single'], 'STRATA_BAD_REQUEST', /does not exist/],
      [
        ['publish', join(single, 'index.html'), '--app', 'single'],
        'STRATA_BAD_REQUEST',
        /is not a directory/,
      ],
    ];
    // Each is a Node start-up: run them a few at a time on the two cores.
    for (let start = 0; start < expectations.length; start += cliConcurrency) {
      const batch = expectations.slice(start, start + cliConcurrency);
      const results = await Promise.all(batch.map(([commandArguments]) => failing(commandArguments)));
      batch.forEach(([, code, message], index) => {
        expectFailure(results[index] as Failure, code, message);
      });
    }
    // Outside a repository, or in one without a commit, publish --git says so in one line, without git's own.
    const noCommit = temporaryDirectory('strata-no-commit-');
    await git(noCommit, 'init', '-q');
    for (const cwd of [temporaryDirectory('strata-no-git-'), noCommit]) {
      const outside = await failing(['publish', '--git', '--app', 'single'], { cwd });
      expectFailure(outside, 'STRATA_BAD_REQUEST', /git repository/);
      expect(outside.stderr.trim().split('\n'), outside.stderr).toHaveLength(1);
    }
    // Nothing of the failed commands shows in the timelines.
    expect(await node.releases('single')).toHaveLength(1);
  });

  it('warns when a published release takes effect before the active one, so it is never served now', async () => {
    const site = join(temporaryDirectory('strata-retro-'), 'retro');
    writeApp(site, 'current');
    const current = await node.publish(site, 'retro');
    writeApp(site, 'retroactive');
    const retro = await node.publish(site, 'retro', ['--effective-at', '2001-01-01T00:00:00Z']);
    expect(retro.behind).toEqual({ release: current.release, effectiveAt: current.effectiveAt });
    writeApp(site, 'retroactive again');
    const text = await runCli(['publish', site, '--app', 'retro', '--effective-at', '2002-01-01T00:00:00Z'], {
      env: node.env,
    });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`warning: it takes effect before the active release ${current.release}`);
    const timeline = await node.releases('retro');
    expect(timeline.find((info) => info.state === 'active')?.release).toBe(current.release);
    // A release effective now is not behind anything.
    writeApp(site, 'newest');
    const newest = await node.publish(site, 'retro');
    expect(newest.behind).toBeUndefined();
    // A rollback effective before the active release is history too, and says so.
    const rollback = await runCli(
      ['rollback', 'retro', '--to', current.release as string, '--effective-at', '2003-01-01T00:00:00Z'],
      { env: node.env },
    );
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain('warning: it takes effect before the active release');
    expect((await node.releases('retro')).find((info) => info.state === 'active')?.release).toBe(
      newest.release,
    );
  });

  it('warns about an exclude rule that matched nothing, and keeps .env out without one', async () => {
    const site = join(temporaryDirectory('strata-exclude-'), 'excluding');
    writeApp(site, 'page');
    writeFileSync(join(site, '.env'), 'API_KEY=secret\n');
    writeFileSync(join(site, 'strata.publish.json'), '{"exclude": ["privte/"]}');
    const text = await runCli(['publish', site, '--app', 'excluding', '--dry-run'], { env: node.env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      'warning: exclude rule(s) of strata.publish.json matched nothing: "privte/"',
    );
    const summary = await node.publish(site, 'excluding');
    expect(summary.unmatchedExcludes).toEqual(['privte/']);
    const routes = await request(`${node.server.url}/apps/excluding/.env`);
    await routes.body.dump();
    expect(routes.statusCode).toBe(404);
  });

  it('open refuses a bad --at instead of printing a URL that cannot work', async () => {
    expectFailure(
      await failing(['open', app, '--at', 'next tuesday']),
      'STRATA_INVALID_TIME',
      /next tuesday/,
    );
  });

  it('open refuses an unknown app, or a time before its first release, instead of printing a URL that cannot work', async () => {
    expectFailure(await failing(['open', 'no-such-app']), 'STRATA_NOT_FOUND', /no-such-app/);
    expectFailure(
      await failing(['open', app, '--at', '2001-01-01T00:00:00Z']),
      'STRATA_NOT_FOUND',
      /had no release in effect at 2001-01-01T00:00:00Z; its first takes effect at /,
    );
  });

  it('writes no new release for unchanged files after another app published the same paths', async () => {
    const root = temporaryDirectory('strata-two-apps-');
    const left = join(root, 'left');
    const right = join(root, 'right');
    writeApp(left, 'left');
    writeApp(right, 'right');
    const published = await node.publish(left, 'left');
    // Every app has an index.html: the other app's publish writes the same key of bucket application.
    await node.publish(right, 'right');
    const again = await node.publish(left, 'left');
    expect(again).toMatchObject({ unchangedRelease: true, release: published.release });
    expect(await node.releases('left')).toHaveLength(1);
  });
});
