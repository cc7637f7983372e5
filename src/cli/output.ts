import type { Command } from 'commander';

/** Every command's --help ends with an example. */
export function example(command: Command, text: string): Command {
  return command.addHelpText('after', `\nExample:\n  ${text}`);
}

/** JSON with --json, otherwise the human form. */
export function print(value: unknown, json: boolean | undefined, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}
