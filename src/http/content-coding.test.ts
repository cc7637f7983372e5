import { describe, expect, it } from 'vitest';
import { isCompressible, negotiateCoding } from './content-coding.js';

describe('negotiateCoding', () => {
  it.each([
    [undefined, undefined],
    ['', undefined],
    ['identity', undefined],
    ['gzip, deflate, br, zstd', 'br'],
    ['GZIP', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br;q=0, gzip;q=0.5', 'gzip'],
    ['br; q=0.000, gzip', 'gzip'],
    ['*', 'br'],
    ['*;q=0', undefined],
    ['*;q=0, gzip', 'gzip'],
    ['br;q=0, *', 'gzip'],
    ['gzip;q=nonsense', 'gzip'],
    ['gzip;q=0.0.1', 'gzip'],
    // `0.` is a qvalue of zero (RFC 9110 §12.4.2), not a malformed one.
    ['br;q=0.', undefined],
    ['gzip;q=0., br;q=0.', undefined],
    ['br;q=0., gzip;q=1.', 'gzip'],
    ['br;q=1.000', 'br'],
    ['br;q=1.5, gzip;q=0.9', 'br'],
    [['gzip', 'br'], 'br'],
  ] as const)('%j → %s', (header, expected) => {
    expect(negotiateCoding(header as string | string[] | undefined)).toBe(expected);
  });
});

describe('isCompressible', () => {
  it('takes text, scripts, JSON, XML, SVG and WebAssembly, and leaves media alone', () => {
    for (const type of [
      'text/html; charset=utf-8',
      'Text/CSS',
      'application/javascript',
      'application/manifest+json',
      'model/gltf+json',
      'image/svg+xml',
      'application/wasm',
    ]) {
      expect(isCompressible(type), type).toBe(true);
    }
    for (const type of [
      'image/png',
      'audio/ogg',
      'font/woff2',
      'application/octet-stream',
      'application/zip',
    ]) {
      expect(isCompressible(type), type).toBe(false);
    }
  });
});
