import { spawn } from 'node:child_process';

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
