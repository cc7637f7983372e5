/**
 * Serving benchmark (part of `npm run bench`): a 1 KB and a 100 KB asset through an app URL of
 * Strata, side by side with nginx (Debian, 1 worker) serving the same bytes from disk, both driven
 * by wrk with keep-alive. Also times `strata publish` of 1,000 files, cold and unchanged.
 * Prints figures; asserts nothing.
 *
 * Env: BENCH_SECONDS (seconds per wrk run, default 5), BENCH_CONNECTIONS (default 32).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertRunning, startChild } from './lib/child.mjs';
import { cleanupStack } from './lib/cleanup.mjs';
import { freePort } from './lib/ports.mjs';
import { startStrata } from './lib/strata.mjs';
import { waitUntil } from './lib/wait.mjs';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** Files in the publish timing: the issue's figure. */
const publishFiles = 1000;
const log = (line) => process.stderr.write(`${line}\n`);

function which(binary, candidates) {
  return (
    candidates.find((path) => existsSync(path)) ??
    (spawnSync('which', [binary]).stdout?.toString().trim() || undefined)
  );
}

/** Runs wrk and reads requests/s and the p99 latency from its --latency report. */
function wrk(url) {
  const output = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], {
    encoding: 'utf8',
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1]);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(output);
  const p99Ms = p99 ? Number(p99[1]) * { us: 0.001, ms: 1, s: 1000 }[p99[2]] : Number.NaN;
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? '0';
  return { rps, p99Ms, errors: Number(errors) };
}

async function startNginx(root, workDir) {
  const port = await freePort();
  const config = join(workDir, 'nginx.conf');
  writeFileSync(
    config,
    `worker_processes 1;
daemon off;
pid ${workDir}/nginx.pid;
error_log ${workDir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${workDir}/body;
  proxy_temp_path ${workDir}/proxy;
  fastcgi_temp_path ${workDir}/fastcgi;
  uwsgi_temp_path ${workDir}/uwsgi;
  scgi_temp_path ${workDir}/scgi;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
  );
  const child = startChild(which('nginx', ['/usr/sbin/nginx']), ['-c', config, '-p', workDir]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      'nginx',
      async () => {
        assertRunning(child, 'nginx');
        const response = await fetch(`${url}/1k.bin`);
        await response.arrayBuffer();
        return response.ok;
      },
      10_000,
    );
  } catch (error) {
    // Not yet on the cleanup stack: stop it here, or it outlives the benchmark.
    await child.stop();
    throw error;
  }
  return { url, stop: () => child.stop() };
}

function strataCli(server, args) {
  const started = performance.now();
  execFileSync(process.execPath, [join(repoDir, 'bin', 'strata'), ...args], {
    env: { ...process.env, STRATA_URL: server.url, STRATA_TOKEN: server.token },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return performance.now() - started;
}

const cleanups = cleanupStack(log, 'stopping servers and removing temp files');
async function main() {
  const workDir = mkdtempSync(join(tmpdir(), 'strata-bench-serve-'));
  // nginx workers drop root privileges: they must be able to traverse into the (0700) temp dir.
  chmodSync(workDir, 0o755);
  cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
  const assets = join(workDir, 'assets');
  mkdirSync(assets);
  writeFileSync(join(assets, '1k.bin'), randomBytes(1024));
  writeFileSync(join(assets, '100k.bin'), randomBytes(100 * 1024));
  writeFileSync(join(assets, 'index.html'), '<!doctype html><html><head></head><body>bench</body></html>');

  const server = await startStrata({ repoDir, dataDir: join(workDir, 'strata') });
  cleanups.push(() => server.stop());
  strataCli(server, ['publish', assets, '--app', 'bench']);

  const missing = ['wrk', 'nginx'].filter(
    (binary) => !which(binary, [`/usr/bin/${binary}`, `/usr/sbin/${binary}`]),
  );
  if (missing.includes('wrk')) {
    log(`serving benchmark skipped: ${missing.join(', ')} not installed (apt-get install wrk nginx-light)`);
  } else {
    const nginx = missing.includes('nginx') ? undefined : await startNginx(assets, workDir);
    if (nginx) cleanups.push(() => nginx.stop());
    else log('nginx not installed (apt-get install nginx-light): Strata figures only');
    const rows = [];
    for (const asset of ['1k.bin', '100k.bin']) {
      log(`wrk: ${asset} (${seconds} s, ${connections} connections) …`);
      const strata = wrk(`${server.url}/apps/bench/${asset}`);
      const peer = nginx ? wrk(`${nginx.url}/${asset}`) : undefined;
      rows.push({ asset, strata, peer });
    }
    console.log(
      `\nServing through an app URL (/apps/bench/<asset>), wrk -t1 -c${connections} -d${seconds}s, keep-alive`,
    );
    console.log('asset      Strata req/s  p99 ms   nginx req/s  p99 ms   Strata/nginx');
    for (const { asset, strata, peer } of rows) {
      const ratio = peer ? (strata.rps / peer.rps).toFixed(2) : 'n/a';
      console.log(
        `${asset.padEnd(10)} ${strata.rps.toFixed(0).padStart(12)} ${strata.p99Ms.toFixed(2).padStart(7)}   ${
          peer ? peer.rps.toFixed(0).padStart(11) : 'n/a'.padStart(11)
        } ${peer ? peer.p99Ms.toFixed(2).padStart(7) : 'n/a'.padStart(7)}   ${ratio}${strata.errors ? `  (${strata.errors} errors)` : ''}`,
      );
    }
  }

  const many = join(workDir, 'many');
  for (let index = 0; index < publishFiles; index += 1) {
    const dir = join(many, `dir${index % 20}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${index}.txt`), `file ${index}\n${randomBytes(1500).toString('base64')}\n`);
  }
  const cold = strataCli(server, ['publish', many, '--app', 'many']);
  const unchanged = strataCli(server, ['publish', many, '--app', 'many']);
  console.log(
    `\nstrata publish of ${publishFiles} files (~2 KB each): cold ${cold.toFixed(0)} ms, unchanged ${unchanged.toFixed(0)} ms`,
  );
}

try {
  await main();
} finally {
  await cleanups.run();
}
