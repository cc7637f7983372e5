import type { Command } from 'commander';
import { callJson, clientConfig } from '../client/api-client.js';
import { fail } from '../core/errors.js';
import { checkRange, checkTimeOptions, example, print } from './output.js';

interface Hit {
  bucket: string;
  key: string;
  version: string;
  txTime: string;
  snippet: string;
  truncated?: boolean;
  lines?: { added: string[]; removed: string[] };
}

export function addSearchCommands(program: Command): void {
  example(
    program
      .command('search [query]')
      .description('full-text search over every version: text, code identifiers, or diffs')
      .option('--kind <kind>', 'text, code or diff', 'text')
      .option('--def <identifier>', 'code: versions that define this identifier')
      .option('--ref <identifier>', 'code: versions that use this identifier')
      .option('--all-versions', 'search every version, not only the current ones')
      .option('--bucket <bucket>', 'only this bucket')
      .option('--prefix <prefix>', 'only keys starting with this')
      .option('--from <time>', 'written at or after this time')
      .option('--to <time>', 'written at or before this time')
      .option('--at <time>', 'what was current at this time')
      .option('--limit <n>', 'at most this many hits', '20')
      .option('--json', 'print JSON')
      .action(async (query: string | undefined, options) => {
        const times = checkTimeOptions(options, { at: '--at', from: '--from', to: '--to' });
        checkRange(times, 'from', 'to');
        if (query === undefined && !options.def && !options.ref)
          fail('STRATA_BAD_QUERY', 'give a query, or --def / --ref <identifier>');
        if (options.at !== undefined && options.allVersions)
          fail(
            'STRATA_BAD_REQUEST',
            '--at picks the versions current then: it does not go with --all-versions',
          );
        const result = await callJson<{ hits: Hit[]; cursor?: string }>(clientConfig(), '/v1/search', {
          query: {
            q: query,
            kind: options.def || options.ref ? 'code' : options.kind,
            def: options.def,
            ref: options.ref,
            versions: options.allVersions ? 'all' : undefined,
            bucket: options.bucket,
            prefix: options.prefix,
            from: options.from,
            to: options.to,
            at: options.at,
            limit: options.limit,
          },
        });
        print(result, options.json, () =>
          result.hits.length === 0
            ? 'no hits'
            : result.hits
                .map((hit) => {
                  const lines = hit.lines
                    ? [
                        ...hit.lines.removed.map((line) => `    - ${line}`),
                        ...hit.lines.added.map((line) => `    + ${line}`),
                      ]
                    : [`    ${hit.snippet.replace(/\s+/g, ' ').trim()}`];
                  return [
                    `${hit.txTime}  ${hit.bucket}/${hit.key}  ${hit.version}${hit.truncated ? '  (truncated: only its first 1 MiB is indexed)' : ''}`,
                    ...lines,
                  ].join('\n');
                })
                .join('\n'),
        );
      }),
    'strata search lighthouse --bucket docs\n  strata search --def renderScene --all-versions\n  strata search --kind diff \'"gl.enable(gl.BLEND)"\'',
  );

  example(
    program
      .command('recent')
      .description('the most recently changed keys')
      .option('--bucket <bucket>', 'only this bucket')
      .option('--since <time>', 'changed at or after this time')
      .option('--until <time>', 'changed at or before this time')
      .option('--limit <n>', 'at most this many keys', '20')
      .option('--json', 'print JSON')
      .action(async (options) => {
        checkRange(checkTimeOptions(options, { since: '--since', until: '--until' }), 'since', 'until');
        const result = await callJson<{
          changes: Array<{ bucket: string; key: string; kind: string; txTime: string }>;
        }>(clientConfig(), '/v1/recent', {
          query: { bucket: options.bucket, since: options.since, until: options.until, limit: options.limit },
        });
        print(result, options.json, () =>
          result.changes
            .map((change) => `${change.txTime}  ${change.kind.padEnd(7)} ${change.bucket}/${change.key}`)
            .join('\n'),
        );
      }),
    'strata recent --bucket objects --since 2026-11-17T00:00:00Z --until 2026-11-17T23:59:59Z',
  );
}
