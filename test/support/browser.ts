import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Chromium for browser tests (STYLE §14: `test/browser/`). The tests drive Debian's Chromium with
 * playwright-core rather than a downloaded browser, so that they run offline.
 */

export const chromiumPath = '/usr/bin/chromium';

/**
 * No GPU, sandbox or background traffic: the tests run as root in a container, and any request the
 * browser makes on its own (updates, sync) would only add noise to the requests a page makes.
 */
const chromiumArguments = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Starting Chromium takes about a second; 20 s leaves room for a loaded 2-core machine. */
const launchTimeoutMs = 20_000;

export const chromiumAvailable = existsSync(chromiumPath);

/**
 * Whether browser tests must be skipped. On CI a missing browser is a broken machine, not a reason to
 * skip: the tests then run and fail in `launchChromium`. Elsewhere they are skipped with a warning,
 * so that the skip is visible in the output.
 */
export function skipWithoutChromium(what: string): boolean {
  if (chromiumAvailable) return false;
  if (process.env.CI === 'true') return false;
  console.warn(
    `SKIPPED ${what}: ${chromiumPath} does not exist (install Debian's chromium package; under CI=true this fails)`,
  );
  return true;
}

export async function launchChromium(): Promise<Browser> {
  if (!chromiumAvailable) {
    throw new Error(`${chromiumPath} does not exist: browser tests need Debian's chromium package`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: chromiumArguments,
    timeout: launchTimeoutMs,
  });
}
