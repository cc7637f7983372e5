import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** A comment line every 15 s keeps proxies from closing an idle stream. */
const keepAliveMs = 15_000;

/**
 * Takes a reply over as a Server-Sent Events stream and sends the headers at once: a quiet stream
 * must not leave the client waiting for its first event. Sends a keep-alive comment every 15 s
 * until the stream closes.
 */
export function openEventStream(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
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
