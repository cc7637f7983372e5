import { setTimeout as sleep } from 'node:timers/promises';

/** Poll interval: short next to a server's start-up (hundreds of ms), long next to one probe. */
const pollIntervalMs = 50;

/**
 * Calls `probe` until it returns a truthy value or `timeoutMs` passes, then throws with `what`.
 * A probe that throws counts as "not yet" (a server that is not listening refuses connections),
 * unless the error is marked `fatal` (the server has exited: waiting longer cannot help).
 */
export async function waitUntil(what, probe, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  let lastError;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      if (error.fatal) throw error;
      lastError = error;
    }
    await sleep(pollIntervalMs);
  }
  const cause = lastError ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}
