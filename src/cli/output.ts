import type { Command } from 'commander';

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
