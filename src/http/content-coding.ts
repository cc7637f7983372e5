import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { Lru } from '../core/lru.js';
import type { StoredBlob } from '../log/blob-store.js';
import { streamOf } from './send-blob.js';

export type Coding = 'br' | 'gzip';

/**
 * Below this a compressed answer saves less than its headers cost (nginx's `gzip_min_length`
 * reasoning; one TCP segment holds it either way).
 */
export const codedBytesMin = 512;
/**
 * Larger files are served as stored: compressing them would hold the whole file in memory, and a
 * file that big is almost always media that is compressed already.
 */
export const codedBytesMax = 8 * 1024 * 1024;
/** Encoded copies kept in memory. They are derived from immutable bytes, so a hit is always valid. */
const codedCacheBytesMax = 64 * 1024 * 1024;
/**
 * Brotli quality 5 compresses about 1 MB of JavaScript in 20 ms to within 15% of quality 11,
 * which takes a second; gzip level 6 is zlib's own default.
 */
const brotliQuality = 5;
const gzipLevel = 6;

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Text formats worth compressing; images, sound and fonts in woff/woff2 are compressed already. */
export function isCompressible(contentType: string): boolean {
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return (
    type.startsWith('text/') ||
    type.endsWith('+json') ||
    type.endsWith('+xml') ||
    [
      'application/javascript',
      'application/json',
      'application/xml',
      'application/wasm',
      'application/x-javascript',
      'image/svg+xml',
      'model/obj',
      'font/ttf',
      'font/otf',
    ].includes(type)
  );
}

/**
 * The coding to answer with, from `Accept-Encoding` (RFC 9110 §12.5.3): brotli, then gzip, each
 * when the client gives it (or `*`) a weight above zero; undefined for the bytes as stored.
 */
/**
 * The weight the `q=` among an Accept-style item's parameters (trimmed, lower case) gives, 1 without
 * one. RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), so `0.` is
 * zero; a weight that is not a qvalue is ignored, as if the client had sent none.
 */
export function weightOf(parameters: string[]): number {
  let weight = 1;
  for (const parameter of parameters) {
    const match = /^q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/.exec(parameter);
    if (match) weight = Number((match[1] as string).replace(/\.$/, ''));
  }
  return weight;
}

export function negotiateCoding(header: string | string[] | undefined): Coding | undefined {
  if (header === undefined) return undefined;
  const weights = new Map<string, number>();
  for (const item of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [name, ...parameters] = item.split(';').map((part) => part.trim().toLowerCase());
    if (!name) continue;
    weights.set(name === 'x-gzip' ? 'gzip' : name, weightOf(parameters));
  }
  const wildcard = weights.get('*');
  const accepted = (coding: Coding) => (weights.get(coding) ?? wildcard ?? 0) > 0;
  if (accepted('br')) return 'br';
  if (accepted('gzip')) return 'gzip';
  return undefined;
}

/**
 * Compressed copies of immutable bytes, keyed by what names those bytes (a version, or a release
 * and a version for a pinned page). Compression runs in libuv's thread pool, once per key even
 * when many requests ask at the same moment.
 */
export class CodedCopies {
  /** `null` records that the coded copy would not be smaller, so the bytes are served as stored. */
  private readonly copies = new Lru<string, Buffer | null>(
    codedCacheBytesMax,
    (copy) => 64 + (copy?.length ?? 0),
  );
  private readonly pending = new Map<string, Promise<Buffer | null>>();

  /** The length of a coded copy already made (the bytes' own when coding did not shrink them), if any. */
  lengthOf(name: string, coding: Coding, blob: StoredBlob): number | undefined {
    const cached = this.copies.get(`${coding}:${name}`);
    return cached === undefined ? undefined : (cached?.length ?? blob.size);
  }

  /** The coded bytes, or undefined when coding would not make them smaller. */
  async copyOf(name: string, coding: Coding, blob: StoredBlob): Promise<Buffer | undefined> {
    const key = `${coding}:${name}`;
    const cached = this.copies.get(key);
    if (cached !== undefined) return cached ?? undefined;
    let copy = this.pending.get(key);
    if (!copy) {
      copy = encode(coding, blob)
        .then((bytes) => {
          this.copies.set(key, bytes);
          return bytes;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, copy);
    }
    return (await copy) ?? undefined;
  }
}

async function encode(coding: Coding, blob: StoredBlob): Promise<Buffer | null> {
  const bytes = blob.data ?? (await buffer(streamOf(blob)));
  const coded =
    coding === 'br'
      ? await brotliAsync(bytes, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: brotliQuality,
            [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
          },
        })
      : await gzipAsync(bytes, { level: gzipLevel });
  return coded.length < bytes.length ? coded : null;
}
