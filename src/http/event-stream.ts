import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { StrataError } from '../core/errors.js';
import { errorBody } from './errors.js';
import type { Metrics } from './metrics.js';

/** A comment line every 15 s keeps proxies from closing an idle stream. */
const keepAliveMs = 15_000;

/**
 * Takes a reply over as a Server-Sent Events stream and sends the headers at once: a quiet stream
 * must not leave the client waiting for its first event. Sends a keep-alive comment every 15 s
 * until the stream closes.
 */
export function openEventStream(reply: FastifyReply, metrics: Metrics): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
  // A hijacked reply skips the onResponse hook: the stream is counted when it closes, with its length.
  const route = reply.request.routeOptions.url ?? 'unmatched';
  const opened = performance.now();
  raw.once('close', () => {
    metrics.requests.inc({ method: reply.request.method, route, status: '200' });
    metrics.requestSeconds.observe(
      { method: reply.request.method, route },
      (performance.now() - opened) / 1000,
    );
  });
  raw.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  raw.flushHeaders();
  const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), keepAliveMs);
  raw.on('close', () => clearInterval(keepAlive));
  return raw;
}

/**
 * A stream outlives the checks made when it opened: the token may be revoked, the bucket made
 * private. `recheck` runs them again before each write; when it throws, the stream sends the
 * refusal as an `error` event (the body a plain request would get) and ends. Returns whether the
 * stream may go on.
 */
export function stillAllowed(raw: ServerResponse, recheck: () => void): boolean {
  if (raw.writableEnded) return false;
  try {
    recheck();
    return true;
  } catch (error) {
    const refusal =
      error instanceof StrataError
        ? error
        : new StrataError('STRATA_UNAUTHORIZED', 'the stream is no longer allowed');
    raw.end(`event: error\ndata: ${JSON.stringify(errorBody(refusal))}\n\n`);
    return false;
  }
}
