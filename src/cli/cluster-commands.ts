import type { Command } from 'commander';
import { callJson, clientConfig } from '../client/api-client.js';
import type { MemberStatus } from '../cluster/replica.js';
import { example, print } from './output.js';

interface StatusAnswer {
  node: string;
  clustered: boolean;
  members: MemberStatus[];
  unreachable?: Array<{ url: string; reason: string; since: string }>;
  counters: Record<string, unknown>;
}

export function addClusterCommands(program: Command): void {
  const cluster = example(
    program.command('cluster').description('the cluster this node belongs to'),
    'strata cluster status',
  );
  example(
    cluster
      .command('status')
      .description('every member as this node sees it: health, revision, delays, location, clock offset')
      .option('--json', 'print JSON')
      .action(async (options) => {
        const answer = await callJson<StatusAnswer>(clientConfig(), '/v1/cluster/status');
        print(answer, options.json, () => statusTable(answer));
      }),
    'strata cluster status --json',
  );
  example(
    cluster
      .command('leave')
      .description('announce a graceful departure to the cluster, then stop the node (admin)')
      .action(async () => {
        const answer = await callJson<{ node: string }>(clientConfig(), '/v1/cluster/leave', {
          method: 'POST',
        });
        process.stdout.write(`node ${answer.node} left the cluster and is stopping\n`);
      }),
    'strata cluster leave    # the node at STRATA_URL leaves and stops',
  );
}

function statusTable(answer: StatusAnswer): string {
  if (!answer.clustered) return `node ${answer.node} runs alone (no cluster key)`;
  const header = [
    '',
    'name',
    'state',
    'heartbeat',
    'commits',
    'repl. delay',
    'response',
    'errors',
    'clock',
    'geo',
    'url',
  ];
  const rows = answer.members.map((member) => [
    member.self ? '*' : member.linked ? '~' : ' ',
    member.name,
    member.left ? 'left' : member.state,
    `${member.heartbeatAgeMs} ms`,
    String(Object.values(member.revision).reduce((sum, seq) => sum + seq, 0)),
    `${member.replicationDelayMs} ms`,
    `${member.meanResponseMs.toFixed(2)} ms`,
    `${(member.errorRate * 100).toFixed(1)}%`,
    member.clockOffsetMs === null
      ? '?'
      : `${member.clockOffsetMs > 0 ? '+' : ''}${member.clockOffsetMs} ms${
          (member.clockOffsetHops ?? 1) > 1 ? ` (${member.clockOffsetHops} hops)` : ''
        }${member.clockSkewed ? ' SKEWED' : ''}`,
    member.geo ? `${member.geo.lat},${member.geo.lon}` : '-',
    member.url,
  ]);
  const widths = header.map((_, column) =>
    Math.max(...[header, ...rows].map((row) => (row[column] ?? '').length)),
  );
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  const trouble = (answer.unreachable ?? []).map(
    (entry) => `cannot link to ${entry.url} since ${entry.since}: ${entry.reason}`,
  );
  return [
    line(header),
    ...rows.map(line),
    '',
    '* this node   ~ linked neighbour',
    ...(trouble.length > 0 ? ['', ...trouble] : []),
  ].join('\n');
}
