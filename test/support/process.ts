import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { waitFor } from './wait.js';

export { waitFor };

/**
 * Real `strata` processes for end-to-end tests (STYLE §11, §14): a server on a free port, waited
 * for by polling /health with a deadline, stopped gracefully or with SIGKILL, and one-shot CLI runs.
 * Every process and temporary directory made here is registered, so that `cleanUpProcesses()` in an
 * afterEach/afterAll hook leaves nothing behind, whether the test passed or not.
 */

export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
export const strataBin = join(repositoryRoot, 'bin', 'strata');

/** A node starts in well under a second; 15 s leaves room for a loaded 2-core CI machine. */
const startTimeoutMs = 15_000;
/** Between /health probes: short enough not to slow tests, long enough not to spin. */
const healthPollIntervalMs = 25;
/** One /health probe; a node that cannot answer in this time is not ready. */
const healthRequestTimeoutMs = 1_000;
/** SIGTERM to exit: closing the HTTP server and the database takes milliseconds. */
const stopTimeoutMs = 10_000;
/** A CLI command against a local node finishes in about a second (mostly Node start-up). */
const cliTimeoutMs = 20_000;
/** A free port can be taken by another process between probing and binding; retry a few times. */
const portAttemptsMax = 5;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const children = new Set<ChildProcess>();
const directories = new Set<string>();

/** Kills every process started here that still runs (SIGKILL) and removes the temporary directories. */
export async function cleanUpProcesses(): Promise<void> {
  await Promise.all([...children].map((child) => killAndWait(child)));
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories.clear();
}

/** A fresh temporary directory, removed by `cleanUpProcesses()`. */
export function temporaryDirectory(prefix = 'strata-e2e-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  directories.add(directory);
  return directory;
}

/** A port nothing listens on right now: bind port 0, read the port the kernel chose, release it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address for port 0');
  return address.port;
}

/** The environment of a child: this process's, without any STRATA_* setting leaking in. */
function childEnvironment(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('STRATA_') && value !== undefined) environment[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined) environment[name] = value;
  }
  return environment;
}

/** `promise`, or 'timeout' once `timeoutMs` passed first; the timer never outlives the race. */
async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** When each child has exited and its output pipes are drained ('close', not 'exit'). */
const closings = new Map<ChildProcess, Promise<ExitStatus>>();

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function closed(child: ChildProcess): Promise<ExitStatus> {
  return closings.get(child) ?? Promise.resolve({ code: child.exitCode, signal: child.signalCode });
}

async function killAndWait(child: ChildProcess): Promise<ExitStatus> {
  if (!hasExited(child)) child.kill('SIGKILL');
  return closed(child);
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  const closing = new Promise<ExitStatus>((resolve) => {
    const done = (status: ExitStatus) => {
      children.delete(child);
      closings.delete(child);
      resolve(status);
    };
    child.once('close', (code, signal) => done({ code, signal }));
    // A process that could not be spawned emits 'error' and never 'close'.
    child.once('error', () => {
      if (child.pid === undefined) done({ code: null, signal: null });
    });
  });
  closings.set(child, closing);
  return child;
}

export interface StrataServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** `kill -9`: no chance to flush, close or clean up. */
  kill9(): Promise<ExitStatus>;
  /** SIGTERM, then waits (bounded) for the process to close its database and exit. */
  stop(): Promise<ExitStatus>;
}

export interface ServerOptions {
  dataDir: string;
  /** Sets STRATA_ADMIN_TOKEN; without it the node reads or generates `<data>/admin-token`. */
  adminToken?: string;
  extraArguments?: string[];
  /** Log level of the node; `warn` keeps its stdout to the lines the CLI itself prints. */
  logLevel?: string;
  /** This port (a restart at the URL peers know), else a free one. */
  port?: number;
}

class PortTaken extends Error {}

/**
 * Starts `strata serve` on a free port (another one if that is taken before the node binds it) and
 * resolves once it says it listens and /health answers.
 */
export async function startServer(options: ServerOptions): Promise<StrataServer> {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const server = spawnServer(port, options);
    try {
      await waitUntilReady(server);
      return server;
    } catch (error) {
      await server.kill9();
      const retry = error instanceof PortTaken && attempt < portAttemptsMax && options.port === undefined;
      if (!retry) throw error;
    }
  }
}

function spawnServer(port: number, options: ServerOptions): StrataServer & { child: ChildProcess } {
  const child = track(
    spawn(
      strataBin,
      [
        'serve',
        '--data',
        options.dataDir,
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--log-level',
        options.logLevel ?? 'warn',
        ...(options.extraArguments ?? []),
      ],
      {
        cwd: options.dataDir,
        env: childEnvironment({ STRATA_ADMIN_TOKEN: options.adminToken }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  if (child.pid === undefined) throw new Error(`could not spawn ${strataBin}`);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const pid = child.pid;
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir: options.dataDir,
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    kill9: () => killAndWait(child),
    async stop() {
      if (!hasExited(child)) child.kill('SIGTERM');
      const status = await within(closed(child), stopTimeoutMs);
      if (status === 'timeout') {
        await killAndWait(child);
        throw new Error(`strata serve (pid ${pid}) did not exit within ${stopTimeoutMs} ms of SIGTERM`);
      }
      return status;
    },
  };
}

async function waitUntilReady(server: StrataServer & { child: ChildProcess }): Promise<void> {
  const deadline = performance.now() + startTimeoutMs;
  const describe = () => `stdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`;
  for (;;) {
    if (hasExited(server.child)) {
      await closed(server.child);
      if (/EADDRINUSE/.test(server.stderr())) throw new PortTaken(`port ${server.port} was taken`);
      throw new Error(
        `strata serve exited before it was ready (exit ${server.child.exitCode})\n${describe()}`,
      );
    }
    if (server.stdout().includes(`listening on ${server.url}`) && (await healthy(server.url))) return;
    if (performance.now() > deadline) {
      throw new Error(`strata serve was not ready within ${startTimeoutMs} ms\n${describe()}`);
    }
    await delay(healthPollIntervalMs);
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await request(`${url}/health`, {
      headersTimeout: healthRequestTimeoutMs,
      bodyTimeout: healthRequestTimeoutMs,
    });
    const body = (await response.body.json()) as { status?: string };
    return response.statusCode === 200 && body.status === 'ok';
  } catch {
    return false;
  }
}

/**
 * GETs `path` from a node with `headers` and parses its JSON; anything but 200 throws with the
 * body in view. `timeoutMs` bounds headers and body (undici's default, 300 s, when absent).
 */
export async function getJson<T>(
  server: StrataServer,
  path: string,
  headers: Record<string, string>,
  timeoutMs?: number,
): Promise<T> {
  const response = await request(`${server.url}${path}`, {
    headers,
    ...(timeoutMs !== undefined ? { headersTimeout: timeoutMs, bodyTimeout: timeoutMs } : {}),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`GET ${path}: HTTP ${response.statusCode} ${text}`);
  return JSON.parse(text) as T;
}

export interface CliResult extends ExitStatus {
  stdout: string;
  /** Stdout as bytes, for commands that print object bodies. */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface CliOptions {
  /** Added to a clean environment (no inherited STRATA_* variables). */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed; stdin is closed at once when absent. */
  input?: string | Buffer;
  /** A file descriptor to give the command as its stdin instead (a directory, say); `input` is then unused. */
  stdinFd?: number;
  /** Defaults to the system temporary directory, so that no ./.strata/admin-token is picked up. */
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `./bin/strata <arguments>` to completion, capturing its output; fails if it outlives the timeout. */
export async function runCli(commandArguments: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = track(
    spawn(strataBin, commandArguments, {
      cwd: options.cwd ?? tmpdir(),
      env: childEnvironment(options.env),
      stdio: [options.stdinFd ?? 'pipe', 'pipe', 'pipe'],
    }),
  );
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  // A command that exits before reading its stdin makes the write fail with EPIPE; that is its business.
  child.stdin?.on('error', () => {});
  child.stdin?.end(options.input);
  const timeoutMs = options.timeoutMs ?? cliTimeoutMs;
  const outcome = await within(closed(child), timeoutMs);
  const output = () => ({
    stdoutBytes: Buffer.concat(stdout),
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
  });
  if (outcome === 'timeout') {
    await killAndWait(child);
    const { stdout: out, stderr: err } = output();
    throw new Error(
      `strata ${commandArguments.join(' ')} did not finish within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`,
    );
  }
  return { ...outcome, ...output() };
}
