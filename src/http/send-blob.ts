import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../core/errors.js';
import type { StoredBlob } from '../log/blob-store.js';

/**
 * Sends a blob's bytes: `ETag` and `If-None-Match` (304), and single byte ranges (RFC 9110 §14)
 * so large media can be seeked. Multiple ranges are answered with the whole object, which the
 * RFC allows. Files are streamed, never read whole; a whole file is checked against its hash as
 * it goes (`StoredBlob.stream`), and a copy that fails the check cuts the response short.
 */
export function sendBlob(
  request: FastifyRequest,
  reply: FastifyReply,
  blob: StoredBlob,
  etag: string,
): FastifyReply {
  void reply.header('ETag', etag).header('Accept-Ranges', 'bytes');
  if (isNotModified(request, etag)) return sendNotModified(request, reply, blob.size);
  let start = 0;
  let end = blob.size - 1;
  let range: [number, number] | undefined;
  try {
    range = rangeOf(request, etag, blob.size);
  } catch (error) {
    void reply.header('Content-Range', `bytes */${blob.size}`);
    throw error;
  }
  if (range) {
    [start, end] = range;
    void reply.status(206).header('Content-Range', `bytes ${start}-${end}/${blob.size}`);
  }
  const length = blob.size === 0 ? 0 : end - start + 1;
  void reply.header('Content-Length', String(length));
  if (request.method === 'HEAD') {
    // Answer HEAD with the headers only; handing Fastify a stream would read the file for nothing.
    reply.hijack();
    reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
    reply.raw.end();
    return reply;
  }
  if (blob.data) return reply.send(range ? blob.data.subarray(start, end + 1) : blob.data);
  if (length === 0) return reply.send(Buffer.alloc(0));
  return reply.send(streamOf(blob, start, end));
}

/**
 * A 304. Fastify gives a HEAD without a payload `Content-Length: 0`, which a 304 must not say
 * (RFC 9110 §8.6): it says the length the 200 would have, or nothing when that is not known
 * (a compressed copy not made yet); an empty stream keeps Fastify from adding its own.
 */
export function sendNotModified(
  request: FastifyRequest,
  reply: FastifyReply,
  length: number | undefined,
): FastifyReply {
  void reply.status(304);
  if (request.method !== 'HEAD') return reply.send();
  if (length !== undefined) void reply.header('Content-Length', String(length));
  return reply.send(Readable.from([]));
}

/** Whether the client's `If-None-Match` already names `etag`, so a 304 answers it. */
export function isNotModified(request: FastifyRequest, etag: string): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  return (
    typeof ifNoneMatch === 'string' &&
    // Weak comparison (RFC 9110 §13.1.2): a cache may send back W/"…" for the same bytes.
    ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*')
  );
}

function rangeOf(request: FastifyRequest, etag: string, size: number): [number, number] | undefined {
  const header = request.headers.range;
  if (typeof header !== 'string') return undefined;
  const ifRange = request.headers['if-range'];
  if (typeof ifRange === 'string' && ifRange.trim() !== etag) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
    if (match[2] !== '' && Number(match[2]) < start) return undefined;
  }
  if (start >= size) unsatisfiable(size);
  return [start, end];
}

function unsatisfiable(size: number): never {
  fail('STRATA_RANGE_NOT_SATISFIABLE', `range is outside the object of ${size} bytes`, { size });
}

/** A file blob's bytes `start`..`end`, through the store's check (see `StoredBlob.stream`). */
export function streamOf(blob: StoredBlob, start = 0, end = blob.size - 1): Readable {
  if (!blob.stream) throw new Error(`blob ${blob.hash} has neither bytes in memory nor a file`);
  return blob.stream(start, end);
}
