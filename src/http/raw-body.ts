import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail, StrataError } from '../core/errors.js';

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

/**
 * The first member name that an object of `text` (valid JSON) gives twice, if any. One pass:
 * strings are skipped with indexOf, so a large value costs little more than finding its end.
 */
export function repeatedMember(text: string): string | undefined {
  /** Per open object its names so far; undefined for an open array. */
  const open: Array<Set<string> | undefined> = [];
  let expectName = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      let end = index;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return undefined; // not valid JSON: JSON.parse has said so already
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes += 1;
        if (backslashes % 2 === 0) break;
      }
      if (expectName) {
        const raw = text.slice(index + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(index, end + 1)) as string) : raw;
        const names = open.at(-1) as Set<string>;
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
      index = end;
    } else if (code === 0x7b) {
      open.push(new Set());
      expectName = true;
    } else if (code === 0x5b) {
      open.push(undefined);
    } else if (code === 0x7d || code === 0x5d) {
      open.pop();
      expectName = false;
    } else if (code === 0x2c) {
      expectName = open.at(-1) !== undefined;
    }
  }
  return undefined;
}

function refuseProto(key: string, value: unknown): unknown {
  if (key === '__proto__') fail('STRATA_BAD_REQUEST', 'a JSON body may not have a member named "__proto__"');
  return value;
}
