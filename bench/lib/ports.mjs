import { createServer } from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now: the kernel picks it, we release it, the server binds it.
 * Another process could take it in between; on a benchmark machine that race is not worth more code.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
