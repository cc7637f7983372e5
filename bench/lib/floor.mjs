import { Pool } from 'undici';
import { assertRunning, startChild } from './child.mjs';
import { freePort } from './ports.mjs';
import { waitUntil } from './wait.mjs';

/**
 * The least any HTTP server in Node can do per durable write: a bare node:http server that
 * appends the body to a file and fdatasyncs it before answering 201. Strata's c=1 PUT compared
 * with this shows what Strata itself costs; compared with the raw fdatasync rate, what HTTP costs.
 */
const serverSource = `
const { createServer } = require('node:http');
const { openSync, writeSync, fdatasyncSync } = require('node:fs');
const fd = openSync(process.argv[2], 'a');
createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    writeSync(fd, Buffer.concat(chunks));
    fdatasyncSync(fd);
    response.writeHead(201, { 'content-length': '2' }).end('{}');
  });
}).listen(Number(process.argv[1]), '127.0.0.1');
`;

export async function startFloorServer(file) {
  const port = await freePort();
  const child = startChild(process.execPath, ['-e', serverSource, String(port), file]);
  const url = `http://127.0.0.1:${port}`;
  const control = new Pool(url, { connections: 1 });
  try {
    await waitUntil(
      'the fdatasync floor server',
      async () => {
        assertRunning(child, 'floor server');
        const response = await control.request({ path: '/', method: 'PUT', body: 'x' });
        await response.body.dump();
        return response.statusCode === 201;
      },
      10_000,
    );
  } catch (error) {
    await child.stop();
    throw error;
  } finally {
    await control.close();
  }
  return {
    pid: child.pid,
    stop: () => child.stop(),
    client(concurrency) {
      const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
      return {
        async put(_key, value) {
          const response = await pool.request({ path: '/', method: 'PUT', body: value });
          await response.body.dump();
          if (response.statusCode !== 201) throw new Error(`floor server answered ${response.statusCode}`);
        },
        close: () => pool.close(),
      };
    },
  };
}
