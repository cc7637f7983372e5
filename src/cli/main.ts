import { createReadStream, createWriteStream, existsSync, fstatSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { Command, InvalidArgumentError, Option } from 'commander';
import { adminTokenProblem } from '../auth/tokens.js';
import { ApiError, call, callJson, clientConfig, keyPath } from '../client/api-client.js';
import { defaultTiming } from '../cluster/protocol.js';
import { systemClock } from '../core/clock.js';
import { StrataError } from '../core/errors.js';
import { isVersionId } from '../core/ids.js';
import { defaultLimits, startNode } from '../node.js';
import { rankedMatchesMaxDefault, rankedMatchesMaxRange } from '../search/search-query.js';
import { Store } from '../store/store.js';
import { addClusterCommands } from './cluster-commands.js';
import { checkTimeOptions, example, print, shellQuoted } from './output.js';
import { addReleaseCommands } from './release-commands.js';
import { addSearchCommands } from './search-commands.js';
import { watchAndPublish } from './watch-publish.js';

const program = new Command();
program
  .name('strata')
  .description('Strata: a replicated, versioned store for web apps and their data.')
  .version('0.1.0')
  // Root options only before the command, so that `get --version <v>` is the command's own option.
  .enablePositionalOptions()
  .addHelpText(
    'after',
    `
Client commands talk to STRATA_URL (default http://127.0.0.1:7070) with STRATA_TOKEN
(default: the admin token in $STRATA_DATA/admin-token, STRATA_DATA being ./.strata unless set,
when it exists). serve takes its admin token from STRATA_ADMIN_TOKEN, or makes one.

Example:
  strata serve &
  echo hello | strata put notes greeting.txt - --content-type text/plain
  strata get notes greeting.txt`,
  );

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

/**
 * A node name goes to peers in a header of every link and in every member row: visible ASCII and
 * spaces, 1–128 characters, so that no peer refuses it (a name peers refuse would keep the node
 * from ever linking).
 */
function nodeName(value: string): string {
  if (!/^[\x20-\x7e]{1,128}$/.test(value) || value.trim() === '')
    throw new InvalidArgumentError(
      'expected 1–128 visible ASCII characters or spaces (it travels in a header)',
    );
  return value;
}

function tcpPort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('expected a TCP port from 0 to 65535');
  }
  return Number(value);
}

/** A file to upload: it must exist and be a regular file (a directory would fail mid-request). */
function inputFileSize(file: string): number {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(file);
  } catch (error) {
    throw new StrataError('STRATA_BAD_REQUEST', `cannot read ${file}: ${(error as Error).message}`);
  }
  if (!stats.isFile())
    throw new StrataError('STRATA_BAD_REQUEST', `${file} is not a file: put uploads one file`);
  return stats.size;
}

example(
  program
    .command('serve')
    .description('start a node: embedded SQLite in --data, HTTP API on --host:--port')
    .addOption(new Option('--data <dir>', 'data directory').env('STRATA_DATA').default('.strata'))
    .option('--port <port>', 'TCP port', tcpPort, 7070)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--max-object-bytes <n>',
      'largest object accepted (bytes)',
      integer,
      defaultLimits.objectBytesMax,
    )
    .addOption(
      new Option('--log-level <level>', 'how much the node logs')
        .choices(['fatal', 'error', 'warn', 'info', 'debug'])
        .default('info'),
    )
    .option('--default-app <name>', 'also serve this app at / (pinned URLs at /@<release>/…)')
    .option(
      '--publish <app=dir>',
      'publish DIR as APP once listening, and again whenever its files change (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option(
      '--join <url>',
      'join the cluster of the node at URL (repeatable; needs --cluster-key)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--advertise <url>', 'the URL peers reach this node at (default http://HOST:PORT)')
    .option(
      '--node-name <name>',
      'a readable name for this node in cluster status, 1–128 ASCII characters (default strata-<id>)',
      nodeName,
    )
    .option('--geo <lat,lon>', "this node's location, for the router (e.g. 48.85,2.35)")
    .option('--cluster-key <key>', 'shared secret that authenticates peers (or STRATA_CLUSTER_KEY)')
    .option('--max-clock-skew-ms <ms>', 'flag peers whose clock is off by more than this', integer, 500)
    .option('--overlay-degree <c>', 'keep at least this many peer links', integer, defaultTiming.degree)
    .option(
      '--search-ranked-max <n>',
      `a search ranks at most this many matches, the newest (${rankedMatchesMaxRange.min}–${rankedMatchesMaxRange.max}; more ranks common words over more history, more slowly)`,
      integer,
      rankedMatchesMaxDefault,
    )
    .action(
      async (options: {
        data: string;
        port: number;
        host: string;
        maxObjectBytes: number;
        logLevel: string;
        defaultApp?: string;
        publish: string[];
        join: string[];
        advertise?: string;
        nodeName?: string;
        geo?: string;
        clusterKey?: string;
        maxClockSkewMs: number;
        overlayDegree: number;
        searchRankedMax: number;
      }) => {
        const clusterKey = options.clusterKey ?? process.env.STRATA_CLUSTER_KEY;
        if (options.join.length > 0 && !clusterKey)
          throw new StrataError('STRATA_BAD_REQUEST', '--join needs --cluster-key (or STRATA_CLUSTER_KEY)');
        for (const url of [...options.join, ...(options.advertise ? [options.advertise] : [])]) {
          if (!/^https?:\/\/[^/\s]+\/?$/.test(url))
            throw new StrataError(
              'STRATA_BAD_REQUEST',
              `expected a node URL like http://host:7070, got ${url}`,
            );
        }
        if (options.overlayDegree < 1)
          throw new StrataError('STRATA_BAD_REQUEST', '--overlay-degree must be at least 1');
        const ranked = rankedMatchesMaxRange;
        if (options.searchRankedMax < ranked.min || options.searchRankedMax > ranked.max)
          throw new StrataError(
            'STRATA_BAD_REQUEST',
            `--search-ranked-max must be from ${ranked.min} to ${ranked.max}, got ${options.searchRankedMax}`,
          );
        const advertiseHost =
          options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
        const publishes = options.publish.map((value) => {
          const split = value.indexOf('=');
          if (split <= 0)
            throw new StrataError('STRATA_BAD_REQUEST', `--publish takes APP=DIR, got ${value}`);
          return { app: value.slice(0, split), dir: value.slice(split + 1) };
        });
        const adminToken = process.env.STRATA_ADMIN_TOKEN;
        const problem = adminToken === undefined ? undefined : adminTokenProblem(adminToken);
        if (problem) throw new StrataError('STRATA_BAD_REQUEST', `STRATA_ADMIN_TOKEN ${problem}`);
        const dataExisted = existsSync(options.data);
        const node = startNode({
          dataDir: options.data,
          clock: systemClock,
          limits: { ...defaultLimits, objectBytesMax: options.maxObjectBytes },
          ...(adminToken !== undefined ? { adminToken } : {}),
          ...(options.defaultApp ? { defaultApp: options.defaultApp } : {}),
          logger: { level: options.logLevel },
          cluster: {
            ...(clusterKey ? { key: clusterKey } : {}),
            join: options.join.map((url) => url.replace(/\/+$/, '')),
            advertise: (options.advertise ?? `http://${advertiseHost}:${options.port}`).replace(/\/+$/, ''),
            ...(options.nodeName ? { name: options.nodeName } : {}),
            ...(options.geo ? { geo: parseGeo(options.geo) } : {}),
            timing: {
              maxClockSkewMs: options.maxClockSkewMs,
              degree: options.overlayDegree,
              linksMax: Math.max(8, options.overlayDegree * 2),
            },
          },
          onLeave: () => void stop(),
          searchRankedMatchesMax: options.searchRankedMax,
        });
        let address: string;
        try {
          address = await node.app.listen({ port: options.port, host: options.host });
        } catch (error) {
          // A start that cannot listen (the port is taken) leaves nothing behind: a token nobody
          // saw would otherwise never be shown, since the next start finds it and keeps it.
          await node.close();
          if (!dataExisted) rmSync(options.data, { recursive: true, force: true });
          else if (node.generatedAdminToken) rmSync(join(options.data, 'admin-token'), { force: true });
          throw error;
        }
        process.stdout.write(
          `Strata node ${node.store.nodeId} listening on ${address} (data: ${options.data})\n`,
        );
        if (options.defaultApp) process.stdout.write(`App ${options.defaultApp}: ${address}/\n`);
        const port = (node.app.server.address() as AddressInfo).port;
        const self = { url: `http://127.0.0.1:${port}`, token: node.adminToken };
        const stopWatching = publishes.map(({ app, dir }) => watchAndPublish(self, app, dir, node.app.log));
        if (node.generatedAdminToken) {
          process.stdout.write(
            `Admin token (shown once; saved in ${options.data}/admin-token, mode 0600):\n  ${node.generatedAdminToken}\n`,
          );
        }
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          for (const stopWatch of stopWatching) stopWatch();
          await node.close();
          process.exit(0);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      },
    ),
  `strata serve --data ./.strata --port 7070
  STRATA_CLUSTER_KEY=secret-of-16-chars strata serve --data ./b --port 7071 --join http://127.0.0.1:7070`,
);

function parseGeo(value: string): { lat: number; lon: number } {
  const match = /^(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$/.exec(value.trim());
  const lat = Number(match?.[1]);
  const lon = Number(match?.[2]);
  if (!match || Math.abs(lat) > 90 || Math.abs(lon) > 180)
    throw new StrataError(
      'STRATA_BAD_REQUEST',
      `--geo takes LAT,LON in degrees (e.g. 48.85,2.35), got ${value}`,
    );
  return { lat, lon };
}

/**
 * `--if-match` as an `If-Match` header. It takes the version id bare (as `put` and `history`
 * print it) or quoted (as the `ETag` header carries it); anything else is refused here, before a
 * request is made.
 */
function ifMatchHeader(value: string): string {
  return `"${versionOption(value, '--if-match')}"`;
}

/** A version given on the command line, bare or quoted as an ETag; anything else is refused unsent. */
function versionOption(value: string, option: string): string {
  const version = value.trim().replace(/^"(.*)"$/, '$1');
  if (!isVersionId(version))
    throw new StrataError(
      'STRATA_BAD_REQUEST',
      `${option} takes a version id as put and history print it (<64 hex digits>.<n>), got ${JSON.stringify(value)}`,
    );
  return version;
}

example(
  program
    .command('put <bucket> <key> [file]')
    .description('write an object from a file, or from stdin when file is - or absent')
    .option('--content-type <type>', 'stored Content-Type', 'application/octet-stream')
    .option('--if-match <version>', 'write only if this is the current version')
    .option('--if-none-match', 'write only if the key has no value')
    .option('--effective-at <time>', 'when the value takes effect (RFC 3339 or epoch ms)')
    .option('--json', 'print JSON')
    .action(async (bucket: string, key: string, file: string | undefined, options) => {
      checkTimeOptions(options, { effectiveAt: '--effective-at' });
      const headers: Record<string, string> = { 'content-type': options.contentType };
      if (options.ifMatch) headers['if-match'] = ifMatchHeader(options.ifMatch);
      if (options.ifNoneMatch) headers['if-none-match'] = '*';
      if (options.effectiveAt !== undefined) headers['strata-effective-at'] = options.effectiveAt;
      let body: NodeJS.ReadableStream;
      if (file && file !== '-') {
        headers['content-length'] = String(inputFileSize(file));
        body = createReadStream(file);
      } else {
        // A directory on stdin (`put b k < dir`) reads as nothing: it would store an empty value.
        if (fstatSync(0).isDirectory())
          throw new StrataError('STRATA_BAD_REQUEST', 'stdin is a directory: put uploads one file');
        body = process.stdin;
      }
      const result = await callJson<{ version: string; commit: string }>(
        clientConfig(),
        keyPath(bucket, key),
        {
          method: 'PUT',
          headers,
          body,
        },
      );
      print(result, options.json, () => result.version);
    }),
  'strata put site index.html ./index.html --content-type text/html',
);

example(
  program
    .command('get <bucket> <key>')
    .description('read the current value (or as it was / will be) to stdout or a file')
    .option('--at <time>', 'effective time to read at')
    .option('--as-of <time>', 'what was known at this transaction time')
    .option('--version <version>', 'that exact version')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (bucket: string, key: string, options) => {
      checkTimeOptions(options, { at: '--at', asOf: '--as-of' });
      const response = await call(clientConfig(), keyPath(bucket, key), {
        query: {
          at: options.at,
          asOf: options.asOf,
          version: options.version === undefined ? undefined : versionOption(options.version, '--version'),
        },
      });
      const conflicts = response.headers['strata-conflicts'];
      if (conflicts) process.stderr.write(`warning: conflicting versions: ${conflicts}\n`);
      await pipeline(response.body, options.output ? createWriteStream(options.output) : process.stdout);
    }),
  'strata get site index.html --at 2026-11-01T00:00:00Z',
);

example(
  program
    .command('rm <bucket> <key>')
    .description('delete a key (writes a tombstone; history keeps every version)')
    .option('--if-match <version>', 'delete only if this is the current version')
    .option('--json', 'print JSON')
    .action(async (bucket: string, key: string, options) => {
      const headers: Record<string, string> = {};
      if (options.ifMatch) headers['if-match'] = ifMatchHeader(options.ifMatch);
      const result = await callJson<{ version: string }>(clientConfig(), keyPath(bucket, key), {
        method: 'DELETE',
        headers,
      });
      print(result, options.json, () => result.version);
    }),
  'strata rm notes draft.txt',
);

example(
  program
    .command('ls [bucket]')
    .description('list buckets, or the live keys of a bucket')
    .option('--prefix <prefix>', 'only keys starting with this')
    .option('--after <key>', 'start after this key (paging)')
    .option('--limit <n>', 'at most this many keys', integer, 100)
    .option('--at <time>', 'list as of this effective time')
    .option('--json', 'print JSON')
    .action(async (bucket: string | undefined, options) => {
      checkTimeOptions(options, { at: '--at' });
      const config = clientConfig();
      if (
        !bucket &&
        (options.prefix !== undefined || options.after !== undefined || options.at !== undefined)
      )
        throw new StrataError(
          'STRATA_BAD_REQUEST',
          '--prefix, --after and --at list the keys of a bucket: name one',
        );
      if (!bucket) {
        const result = await callJson<{ buckets: Array<{ name: string; publicRead: boolean }> }>(
          config,
          '/v1/buckets',
        );
        print(result, options.json, () =>
          result.buckets.map((b) => b.name + (b.publicRead ? '  (public)' : '')).join('\n'),
        );
        return;
      }
      const result = await callJson<{
        keys: Array<{ key: string; size: number; txTime: string }>;
        next?: string;
      }>(config, `/v1/buckets/${encodeURIComponent(bucket)}/keys`, {
        query: { prefix: options.prefix, after: options.after, limit: options.limit, at: options.at },
      });
      print(result, options.json, () =>
        [
          ...result.keys.map((k) => `${k.txTime}  ${String(k.size).padStart(10)}  ${k.key}`),
          ...(result.next ? [`… more: --after ${shellQuoted(result.next)}`] : []),
        ].join('\n'),
      );
    }),
  'strata ls site --prefix images/',
);

example(
  program
    .command('history <bucket> <key>')
    .description('every version of a key, newest transaction first')
    .option('--json', 'print JSON')
    .action(async (bucket: string, key: string, options) => {
      const result = await callJson<{ versions: Array<Record<string, unknown>> }>(
        clientConfig(),
        `${keyPath(bucket, key)}/versions`,
      );
      if (!options.json && result.versions.length === 0) {
        process.stderr.write(`${bucket}/${key} has no versions: it was never written\n`);
        return;
      }
      print(result, options.json, () =>
        result.versions
          .map(
            (v) =>
              `${v.txTime}  effective ${v.effectiveAt}  ${String(v.kind).padEnd(7)} ${v.version}${v.retracted ? '  (retracted)' : ''}`,
          )
          .join('\n'),
      );
    }),
  'strata history site index.html',
);

const token = example(
  program.command('token').description('manage API tokens (admin)'),
  'strata token create --role read --name dashboard',
);
example(
  token
    .command('create')
    .description('create a token; it is printed once and stored only hashed')
    .addOption(
      new Option('--role <role>', 'what the token may do')
        .choices(['admin', 'write', 'read'])
        .makeOptionMandatory(),
    )
    .requiredOption('--name <name>', 'a label, e.g. the app or person using it')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const result = await callJson<{ id: string; token: string }>(clientConfig(), '/v1/tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: options.role, name: options.name }),
      });
      print(result, options.json, () => result.token);
    }),
  'strata token create --role write --name ci',
);
example(
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const result = await callJson<{
        tokens: Array<{ id: string; role: string; name: string; createdAt: string }>;
      }>(clientConfig(), '/v1/tokens');
      print(result, options.json, () =>
        result.tokens.map((t) => `${t.id}  ${t.role.padEnd(5)}  ${t.createdAt}  ${t.name}`).join('\n'),
      );
    }),
  'strata token list',
);
example(
  token
    .command('revoke <id>')
    .description('revoke a token by id')
    .action(async (id: string) => {
      await callJson(clientConfig(), `/v1/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
      process.stdout.write(`revoked ${id}\n`);
    }),
  'strata token revoke 0123456789abcdef',
);

/** Opens a data directory directly, for offline maintenance; fails if a node is running on it. */
function openOffline(dataDir: string): Store {
  const file = join(dataDir, 'strata.db');
  if (!existsSync(file) || !holdsLog(file)) {
    throw new StrataError('STRATA_NOT_FOUND', `${dataDir} holds no Strata database (strata.db)`);
  }
  return new Store({ dataDir, clock: systemClock });
}

/** Whether a file is a Strata database: asked read-only, so that a stray file is left as it was. */
function holdsLog(file: string): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    return (
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'commits'").get() !== undefined
    );
  } catch {
    return false;
  } finally {
    db?.close();
  }
}

example(
  program
    .command('reindex')
    .description('rebuild every derived table from the log; prints the digest before and after')
    .option('--data <dir>', 'work on this data directory directly (the node must be stopped)')
    .option('--json', 'print JSON')
    .action(async (options) => {
      let result: { before: string; after: string; commits: number; versions: number };
      if (options.data) {
        const store = openOffline(options.data);
        const before = store.digest();
        const counts = await store.reindex();
        result = { ...counts, before, after: store.digest() };
        await store.close();
      } else {
        result = await callJson(clientConfig(), '/v1/admin/reindex', { method: 'POST' });
      }
      print(result, options.json, () =>
        [
          `rebuilt ${result.versions} versions from ${result.commits} commits`,
          `digest before ${result.before}`,
          `digest after  ${result.after}`,
          result.before === result.after
            ? 'unchanged'
            : 'CHANGED: the derived state had drifted from the log',
        ].join('\n'),
      );
    }),
  'strata reindex            # on the running node\n  strata reindex --data .strata   # offline',
);

example(
  program
    .command('digest')
    .description('print the digest of the derived state (equal digests = equal state)')
    .option('--data <dir>', 'read this data directory directly (the node must be stopped)')
    .option('--json', 'print JSON')
    .action(async (options) => {
      let result: { digest: string };
      if (options.data) {
        const store = openOffline(options.data);
        result = { digest: store.digest() };
        await store.close();
      } else {
        result = await callJson(clientConfig(), '/v1/admin/digest');
      }
      print(result, options.json, () => result.digest);
    }),
  'strata digest',
);

addReleaseCommands(program);
addSearchCommands(program);
addClusterCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  const code = (error as { code?: unknown }).code;
  if (error instanceof ApiError || error instanceof StrataError) {
    process.stderr.write(`error: ${error.code}: ${error.message}\n`);
  } else if (typeof code === 'string') {
    // A system error (a file that cannot be written, a port in use): its code says it all.
    const message = (error as Error).message.replace(`${code}: `, '');
    const hint = code === 'EADDRINUSE' ? ' (another process holds it: stop that one or pick --port)' : '';
    process.stderr.write(`error: ${code}: ${message}${hint}\n`);
  } else {
    // Anything else is a bug: the stack is what a report needs.
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
  }
  process.exit(1);
});
