import { spawn } from 'node:child_process';
import { Pool } from 'undici';
import { waitUntil } from './wait.mjs';

/** Output kept per child for error messages: enough for a stack trace, bounded for a chatty server. */
const outputBytesMax = 64 * 1024;
/** A clean shutdown (Strata closes its log, etcd its WAL) takes well under this. */
const stopTimeoutMs = 10_000;

/**
 * A server process whose stdout and stderr are drained (a full pipe would block it) into a
 * bounded tail, so a failure can show what the server said.
 */
export function startChild(command, args, options = {}) {
  const process_ = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk) => {
    tail = (tail + chunk.toString('utf8')).slice(-outputBytesMax);
  };
  process_.stdout.on('data', keep);
  process_.stderr.on('data', keep);
  const exited = new Promise((resolve) => {
    process_.once('exit', (code, signal) => resolve({ code, signal }));
    process_.once('error', (error) => {
      keep(`spawn error: ${error.message}\n`);
      resolve({ code: null, signal: null, error });
    });
  });
  let exitStatus;
  void exited.then((status) => {
    exitStatus = status;
  });

  return {
    pid: process_.pid,
    /** What the process has printed lately. */
    output: () => tail,
    /** Undefined while it runs. */
    exitStatus: () => exitStatus,
    /** SIGTERM, then SIGKILL if it has not exited within the bound. Safe to call twice. */
    async stop() {
      if (exitStatus) return exitStatus;
      process_.kill('SIGTERM');
      const timer = setTimeout(() => process_.kill('SIGKILL'), stopTimeoutMs);
      const status = await exited;
      clearTimeout(timer);
      return status;
    },
  };
}

/** Throws with the child's output if it has exited: used inside readiness probes to fail fast. */
export function assertRunning(child, name) {
  const status = child.exitStatus();
  if (status) {
    const error = new Error(
      `${name} exited early (code ${status.code}, signal ${status.signal}):\n${child.output()}`,
    );
    error.fatal = true;
    throw error;
  }
}

/**
 * Waits until `child` (named `name` in errors) answers GET /health on its own one-connection
 * `control` pool at `url` in a way `healthy(statusCode, text)` accepts, within `timeoutMs`.
 * Returns `{ control, stop }`: `stop` closes the pool and stops the child, and is safe to call
 * again (by the run's cleanup); on failure the child is stopped before the error is thrown.
 */
export async function untilHealthy({ child, name, url, healthy, timeoutMs }) {
  const control = new Pool(url, { connections: 1 });
  let stopping;
  const stop = () => {
    stopping ??= control.close().then(() => child.stop());
    return stopping;
  };
  try {
    await waitUntil(
      `${name} on ${url}/health`,
      async () => {
        assertRunning(child, name);
        const response = await control.request({ path: '/health', method: 'GET' });
        return healthy(response.statusCode, await response.body.text());
      },
      timeoutMs,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { control, stop };
}
