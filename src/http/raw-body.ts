import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail, StrataError } from '../core/errors.js';
import { repeatedMember } from '../core/json-members.js';

/** In this plugin scope, bodies of any type reach handlers as unread streams (objects are streamed to disk). */
export function rawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
}

/** Reads a small JSON body inside a raw-body scope. */
export async function readJson(request: FastifyRequest, bytesMax: number): Promise<unknown> {
  const body = request.body as Readable | undefined;
  if (!body) fail('STRATA_BAD_REQUEST', 'a JSON body is required');
  if (!isJsonMediaType(request.headers['content-type'])) {
    body.resume();
    fail('STRATA_UNSUPPORTED_MEDIA_TYPE', 'this endpoint takes Content-Type: application/json');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > bytesMax) fail('STRATA_TOO_LARGE', `JSON body exceeds ${bytesMax} bytes`);
    chunks.push(chunk as Buffer);
  }
  return parseJsonBytes(Buffer.concat(chunks));
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
function isJsonMediaType(value: string | undefined): boolean {
  return value !== undefined && /^application\/json\s*(?:;|$)/i.test(value.trim());
}

/**
 * Every JSON body the API takes, parsed: it must be UTF-8 (a stray byte would otherwise become
 * U+FFFD and be stored), and a `__proto__` member is refused, as Fastify's own parser does.
 */
export function parseJsonBytes(bytes: Buffer): unknown {
  if (bytes.length === 0) fail('STRATA_BAD_REQUEST', 'the JSON body is empty');
  if (!isUtf8(bytes)) fail('STRATA_BAD_REQUEST', 'the JSON body is not valid UTF-8');
  const text = bytes.toString('utf8');
  // The reviver costs a second walk of the value, so it runs only when the text could name one.
  const reviver = /__proto__|\\u/.test(text) ? refuseProto : undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, reviver);
  } catch (error) {
    if (error instanceof StrataError) throw error;
    fail('STRATA_BAD_REQUEST', `malformed JSON body: ${(error as Error).message}`);
  }
  // JSON.parse keeps the last of two members of one name: the first would be dropped unseen.
  const repeated = repeatedMember(text);
  if (repeated !== undefined)
    fail(
      'STRATA_BAD_REQUEST',
      `the JSON body gives member ${JSON.stringify(repeated.slice(0, 80))} twice in one object: give it once`,
    );
  return value;
}

function refuseProto(key: string, value: unknown): unknown {
  if (key === '__proto__') fail('STRATA_BAD_REQUEST', 'a JSON body may not have a member named "__proto__"');
  return value;
}
