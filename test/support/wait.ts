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

/** `waitFor`, with what was last seen added to the timeout error (`detail` is read only then). */
export async function waitWithDetail(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; what: string; intervalMs?: number },
  detail: () => string,
): Promise<void> {
  try {
    await waitFor(condition, options);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('timed out'))
      throw new Error(`${error.message}; last seen:\n${detail()}`);
    throw error;
  }
}
