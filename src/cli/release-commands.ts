import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { type ApiClient, callJson, clientConfig } from '../client/api-client.js';
import { fail } from '../core/errors.js';
import { checkBucketName } from '../core/names.js';
import { parseTime } from '../core/time.js';
import { directoryFiles, Exclusions, gitFiles, publish, readPublishConfig } from '../release/publish.js';
import { checkTimeOptions, example, print } from './output.js';
import { describeSummary, publishReporter } from './progress.js';

interface Release {
  release: string;
  effectiveAt: string;
  txTime: string;
  message?: string;
  author?: string;
  routes: number;
  state: string;
  conflicts: string[];
}

/** The line that marks a post-commit hook as the one `strata hook install` wrote (it may replace it). */
const hookMarker = '# Publishes every commit to Strata (installed by `strata hook install`).';

/** Publishes a directory or the git HEAD of the directory's repository. Shared by `publish` and `serve --publish`. */
export async function publishPath(
  client: ApiClient,
  root: string,
  options: { app: string; git?: boolean; effectiveAt?: string; message?: string; dryRun?: boolean },
  reporter = publishReporter(),
) {
  if (!existsSync(root)) fail('STRATA_BAD_REQUEST', `${root} does not exist`);
  if (!statSync(root).isDirectory())
    fail('STRATA_BAD_REQUEST', `${root} is not a directory: publish takes one`);
  const config = readPublishConfig(root);
  const exclusions = new Exclusions(config);
  let files: Awaited<ReturnType<typeof directoryFiles>>;
  let message = options.message;
  if (options.git) {
    const tree = gitFiles(root, config, exclusions);
    files = tree.files;
    message = `${message ? `${message} ` : ''}(git ${tree.commit}: ${tree.subject})`;
  } else {
    files = await directoryFiles(root, config, exclusions);
  }
  const unmatchedExcludes = exclusions.unmatched();
  const summary = await publish(
    client,
    files,
    {
      app: options.app,
      ...(options.effectiveAt !== undefined ? { effectiveAt: options.effectiveAt } : {}),
      ...(message !== undefined ? { message } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(config.entry !== undefined ? { entry: config.entry } : {}),
      ...(config.spa !== undefined ? { spa: config.spa } : {}),
    },
    reporter,
  );
  return {
    ...summary,
    ...(unmatchedExcludes.length > 0 ? { unmatchedExcludes } : {}),
    ...(exclusions.symlinks.length > 0 ? { skippedSymlinks: exclusions.symlinks } : {}),
  };
}

/** A repository directory name as an app name: lower case, other characters as '-'. */
function appNameOf(directory: string): string {
  const name = basename(directory)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  return checkBucketName(name || 'app', 'app');
}

function gitTopLevel(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--show-toplevel'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
      .toString()
      .trim();
  } catch {
    fail('STRATA_BAD_REQUEST', `${dir} is not inside a git repository`);
  }
}

export function addReleaseCommands(program: Command): void {
  example(
    program
      .command('publish [dir]')
      .description(
        'upload a directory (or the git HEAD) into buckets by file kind, and cut a release; a strata.publish.json in it sets buckets, exclude, dotfiles, entry, spa and keyPrefix',
      )
      .option('--app <name>', 'the app to release (with --git, default: the repository directory name)')
      .option(
        '--git',
        'publish the files tracked at HEAD of the repository (default dir: the repository root)',
      )
      .option('--effective-at <time>', 'when the release takes effect (default now)')
      .option('--message <text>', 'release message')
      .option('--dry-run', 'show what would be uploaded; write nothing')
      .option('--json', 'print JSON')
      .action(async (dir: string | undefined, options) => {
        const root = dir ?? (options.git ? gitTopLevel('.') : undefined);
        if (!root) fail('STRATA_BAD_REQUEST', 'give a directory to publish, or --git');
        const app = options.app ?? (options.git ? appNameOf(gitTopLevel(root)) : undefined);
        if (!app)
          fail('STRATA_BAD_REQUEST', 'give --app <name> (only --git can default it to the repository name)');
        const summary = await publishPath(clientConfig(), root, { ...options, app });
        print(summary, options.json, () => describeSummary(summary));
      }),
    'strata publish ./dist --app shop --effective-at 2026-12-01T09:00:00Z --message "winter sale"',
  );

  const hook = example(
    program.command('hook').description('git integration'),
    'strata hook install --app shop',
  );
  example(
    hook
      .command('install')
      .description('install a git post-commit hook that runs `strata publish --git` after every commit')
      .requiredOption('--app <name>', 'the app to release')
      .option('--force', 'replace an existing post-commit hook')
      .action((options: { app: string; force?: boolean }) => {
        // The name goes into a shell script: only an app name (a-z, 0-9, . _ -) gets there.
        const app = checkBucketName(options.app, 'app');
        let hooks: string;
        try {
          hooks = resolve(
            execFileSync('git', ['rev-parse', '--git-path', 'hooks'], { stdio: ['ignore', 'pipe', 'ignore'] })
              .toString()
              .trim(),
          );
        } catch {
          fail(
            'STRATA_BAD_REQUEST',
            `${process.cwd()} is not inside a git repository: run hook install in one`,
          );
        }
        const file = `${hooks}/post-commit`;
        if (existsSync(file) && !options.force && !readFileSync(file, 'utf8').includes(hookMarker)) {
          fail('STRATA_CONFLICT', `${file} exists and is not Strata's; use --force to replace it`);
        }
        const strata = resolve(new URL('../../bin/strata', import.meta.url).pathname);
        writeFileSync(
          file,
          `#!/bin/sh\n${hookMarker}\n` +
            `# Uses STRATA_URL and STRATA_TOKEN from the environment of \`git commit\`.\n` +
            `exec '${strata.replaceAll("'", "'\\''")}' publish --git --app '${app}'\n`,
        );
        chmodSync(file, 0o755);
        process.stdout.write(`installed ${file}\n`);
      }),
    'strata hook install --app shop',
  );

  example(
    program
      .command('releases <app>')
      .description("an app's timeline, newest effective first")
      .option('--json', 'print JSON')
      .action(async (app: string, options) => {
        const result = await callJson<{ releases: Release[] }>(
          clientConfig(),
          `/v1/apps/${encodeURIComponent(app)}/releases`,
        );
        print(result, options.json, () =>
          result.releases
            .map(
              (r) =>
                `${r.state.padEnd(9)} ${r.effectiveAt}  ${r.release}  ${r.routes} routes  ${r.message ?? ''}` +
                (r.conflicts.length > 0 ? `\n          conflicts: ${r.conflicts.join(', ')}` : ''),
            )
            .join('\n'),
        );
      }),
    'strata releases shop',
  );

  example(
    program
      .command('rollback <app>')
      .description('re-issue an older release, by default the one before the active release')
      .option('--to <release>', 'the release to go back to')
      .option('--effective-at <time>', 'when (default now)')
      .option('--json', 'print JSON')
      .action(async (app: string, options) => {
        checkTimeOptions(options, { effectiveAt: '--effective-at' });
        const result = await callJson<{
          release: string;
          rolledBackTo: string;
          effectiveAt: string;
          state: string;
        }>(clientConfig(), `/v1/apps/${encodeURIComponent(app)}/rollback`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            ...(options.to !== undefined ? { to: options.to } : {}),
            ...(options.effectiveAt !== undefined ? { effectiveAt: options.effectiveAt } : {}),
          }),
        });
        print(
          result,
          options.json,
          () =>
            `rolled back to ${result.rolledBackTo}: release ${result.release} effective ${result.effectiveAt}` +
            (result.state === 'past'
              ? '\nwarning: it takes effect before the active release, so it is history, not served now; roll back without --effective-at to serve it'
              : ''),
        );
      }),
    'strata rollback shop',
  );

  example(
    program
      .command('cancel <app> <release>')
      .description('cancel a scheduled release (refused once it has taken effect)')
      .action(async (app: string, release: string) => {
        await callJson(
          clientConfig(),
          `/v1/apps/${encodeURIComponent(app)}/releases/${encodeURIComponent(release)}`,
          {
            method: 'DELETE',
          },
        );
        process.stdout.write(`cancelled ${release}\n`);
      }),
    'strata cancel shop <release>',
  );

  example(
    program
      .command('diff <app> <from> <to>')
      .description('what changed between two releases, with unified diffs of text files')
      .option('--json', 'print JSON')
      .action(async (app: string, from: string, to: string, options) => {
        const result = await callJson<{
          added: string[];
          removed: string[];
          changed: Array<{ path: string; diff: string | null; notCompared?: string }>;
        }>(clientConfig(), `/v1/apps/${encodeURIComponent(app)}/diff`, { query: { from, to } });
        print(
          result,
          options.json,
          () =>
            [
              ...result.added.map((path) => `added    ${path}`),
              ...result.removed.map((path) => `removed  ${path}`),
              ...result.changed.map(
                (change) =>
                  `changed  ${change.path}${change.diff ? `\n${change.diff}` : ` (${change.notCompared ?? 'binary'}: not compared)`}`,
              ),
            ].join('\n') || 'no differences',
        );
      }),
    'strata diff shop <release-1> <release-2>',
  );

  example(
    program
      .command('open <app>')
      .description("print the app's URL (as it was at --at)")
      .option('--at <time>', 'time travel: the release in effect then')
      .action(async (app: string, options: { at?: string }) => {
        if (options.at !== undefined) parseTime(options.at, '--at');
        const client = clientConfig();
        // A URL that would only answer 404 is no help: check that the app exists, and had a
        // release in effect at --at.
        const { releases } = await callJson<{ releases: Array<{ effectiveAt: string; state: string }> }>(
          client,
          `/v1/apps/${encodeURIComponent(app)}/releases`,
        );
        const at = options.at === undefined ? Date.now() : parseTime(options.at, '--at');
        const inEffect = releases.some(
          (release) => release.state !== 'cancelled' && Date.parse(release.effectiveAt) <= at,
        );
        if (!inEffect) {
          const first = releases
            .filter((release) => release.state !== 'cancelled')
            .map((release) => release.effectiveAt)
            .sort()[0];
          fail(
            'STRATA_NOT_FOUND',
            `app ${app} had no release in effect ${options.at === undefined ? 'now' : `at ${options.at}`}` +
              (first ? `; its first takes effect at ${first}` : ''),
          );
        }
        const url = new URL(`/apps/${encodeURIComponent(app)}/`, `${client.url}/`);
        if (options.at) url.searchParams.set('at', options.at);
        process.stdout.write(`${url}\n`);
      }),
    'strata open shop --at 2026-11-01T12:00:00Z',
  );
}
