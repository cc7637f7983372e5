import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { StrataError } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import {
  checkRoutePath,
  decodeRouteTable,
  encodeRouteTable,
  type RouteTable,
  routedVersions,
} from './route-table.js';

const v = (digit: string, op = 0) => `${digit.repeat(64)}.${op}` as VersionId;

describe('checkRoutePath', () => {
  it.each([
    '/',
    '/index.html',
    '/js/main.js',
    '/docs/',
    '/a/b/c/d.txt',
    '/café.txt',
    '/a/@b',
    '/sub/_routes.json',
    '/.well-known/security.txt',
    '/file..name',
    '/logo big.png',
  ])('accepts %s and returns it', (path) => {
    expect(checkRoutePath(path)).toBe(path);
  });

  it.each([
    ['relative', 'index.html'],
    ['empty', ''],
    ['an empty segment', '//a'],
    ['an empty inner segment', '/a//b'],
    ['a dot segment', '/a/./b'],
    ['a trailing dot segment', '/a/.'],
    ['a dot-dot segment', '/a/../b'],
    ['a leading dot-dot', '/..'],
    ['a query', '/a?b=1'],
    ['a fragment', '/a#top'],
    ['a tab', '/a\tb'],
    ['a no-break space', '/a\u00a0b'],
    ['a line separator', '/a\u2028b'],
    ['a newline', '/a\nb'],
    ['a NUL', '/a\u0000b'],
    ['the pinned prefix', '/@x'],
    ['the pinned prefix alone', '/@'],
    ['the route table path', '/_routes.json'],
  ])('refuses %s (%j)', (_why, path) => {
    expect(strataErrorCode(() => checkRoutePath(path))).toBe('STRATA_BAD_REQUEST');
  });

  it('bounds the length in bytes, not characters', () => {
    expect(checkRoutePath(`/${'a'.repeat(1023)}`)).toHaveLength(1024);
    expect(strataErrorCode(() => checkRoutePath(`/${'a'.repeat(1024)}`))).toBe('STRATA_BAD_REQUEST');
    // 512 two-byte characters plus the slash: 1025 bytes.
    expect(strataErrorCode(() => checkRoutePath(`/${'é'.repeat(512)}`))).toBe('STRATA_BAD_REQUEST');
  });
});

describe('encodeRouteTable and decodeRouteTable', () => {
  it('round-trips a full table', () => {
    const table: RouteTable = {
      routes: { '/index.html': v('a'), '/main.js': v('b', 3) },
      entry: '/index.html',
      spa: true,
      message: 'v2',
    };
    expect(decodeRouteTable(encodeRouteTable(table))).toEqual(table);
  });

  it('is deterministic: routes sorted, fields in a fixed order, spa:false omitted', () => {
    const a = encodeRouteTable({
      message: 'm',
      spa: false,
      entry: '/b',
      routes: { '/b': v('b'), '/a': v('a') },
    } as RouteTable);
    const b = encodeRouteTable({ routes: { '/a': v('a'), '/b': v('b') }, entry: '/b', message: 'm' });
    expect(a.equals(b)).toBe(true);
    expect(JSON.parse(a.toString())).toEqual({
      routes: { '/a': v('a'), '/b': v('b') },
      entry: '/b',
      message: 'm',
    });
    expect(Object.keys(JSON.parse(a.toString()).routes)).toEqual(['/a', '/b']);
    expect(a.toString()).not.toContain('spa');
  });

  it('leaves optional fields out when absent', () => {
    const bytes = encodeRouteTable({ routes: { '/x': v('c') } });
    expect(JSON.parse(bytes.toString())).toEqual({ routes: { '/x': v('c') } });
  });

  it('treats a malformed stored table as corruption (a plain Error, not a user error)', () => {
    for (const bytes of ['null', '[]', '{"routes": 3}', '"text"', '{"routes": {"/a": "not-a-version"}}']) {
      let thrown: unknown;
      try {
        decodeRouteTable(Buffer.from(bytes));
      } catch (error) {
        thrown = error;
      }
      expect(thrown, bytes).toBeInstanceOf(Error);
      expect(thrown, bytes).not.toBeInstanceOf(StrataError);
    }
    expect(() => decodeRouteTable(Buffer.from('{'))).toThrow();
  });
});

describe('routedVersions', () => {
  it('lists each routed version once, sorted', () => {
    const table: RouteTable = {
      routes: { '/a': v('c'), '/b': v('a'), '/c': v('c'), '/d': v('b', 2) },
    };
    expect(routedVersions(table)).toEqual([v('a'), v('b', 2), v('c')]);
  });

  it('is empty for an empty table', () => {
    expect(routedVersions({ routes: {} })).toEqual([]);
  });
});
