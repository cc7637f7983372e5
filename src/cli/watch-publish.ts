import { type FSWatcher, watch } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { ApiClient } from '../client/api-client.js';
import type { PublishReporter } from '../release/publish.js';
import { describeSummary } from './progress.js';
import { publishPath } from './release-commands.js';

/** Changes within this window are published together (an editor's save touches several files). */
const debounceMs = 300;

const quietReporter: PublishReporter = { start() {}, uploaded() {}, done() {} };

/**
 * `serve --publish APP=DIR`: publishes DIR as APP once the node listens, then again whenever a file
 * under DIR changes. Unchanged content is skipped, so an idle directory cuts no new releases.
 */
export function watchAndPublish(
  client: ApiClient,
  app: string,
  dir: string,
  log: FastifyBaseLogger,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = running.then(async () => {
      try {
        const summary = await publishPath(
          client,
          dir,
          { app, message: `published from ${dir}` },
          quietReporter,
        );
        log.info({ app, release: summary.release }, describeSummary(summary).replace(/\n/g, '; '));
      } catch (error) {
        log.error({ err: error, app, dir }, 'publishing failed; the previous release stays in effect');
      }
    });
  };
  run();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { recursive: true }, () => {
      clearTimeout(timer);
      timer = setTimeout(run, debounceMs);
    });
  } catch (error) {
    log.warn({ err: error, dir }, 'cannot watch the directory; it was published once');
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
