import { setTimeout as delay } from 'node:timers/promises';

/** Polls `condition` until it holds; fails after `timeoutMs` instead of hanging (STYLE §14: no fixed sleeps). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${options.timeoutMs} ms: ${options.what}`);
    await delay(options.intervalMs ?? 25);
  }
}
