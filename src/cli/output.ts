import type { Command } from 'commander';
import { fail } from '../core/errors.js';
import { parseTime } from '../core/time.js';

/** Every command's --help ends with an example. */
export function example(command: Command, text: string): Command {
  return command.addHelpText('after', `\nExample:\n  ${text}`);
}

/** JSON with --json, otherwise the human form. */
export function print(value: unknown, json: boolean | undefined, text: () => string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  // Nothing to show prints nothing (an empty listing), not a blank line.
  const shown = text();
  if (shown !== '') process.stdout.write(`${shown}\n`);
}

/**
 * Refuses a malformed time option before anything is sent. The API reads an empty `at=` as none
 * (a blank form field); on the command line `--at ''` is a mistake, not "now".
 */
export function checkTimeOptions(
  options: Record<string, unknown>,
  flags: Record<string, string>,
): Record<string, number> {
  const times: Record<string, number> = {};
  for (const [name, flag] of Object.entries(flags)) {
    const value = options[name];
    if (typeof value === 'string') times[name] = parseTime(value, flag);
  }
  return times;
}

/** A range given backwards, refused in the terms of the command line. */
export function checkRange(times: Record<string, number>, first: string, last: string): void {
  const [from, to] = [times[first], times[last]];
  if (from !== undefined && to !== undefined && from > to)
    fail('STRATA_BAD_REQUEST', `--${first} is after --${last}`);
}

/** A word a POSIX shell reads back as exactly `value`: single-quoted, each ' written as '\''. */
export function shellQuoted(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
