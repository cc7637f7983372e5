import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { checkBucketName, checkKey, checkNewKey, isBucketName, isSystemBucket } from './names.js';

const firstChars = 'abcdefghijklmnopqrstuvwxyz0123456789';
const restChars = `${firstChars}._-`;

describe('bucket names', () => {
  it.each(['a', '0', 'photos', 'my-app', 'my_app', 'v1.2.3', 'a-', 'x'.repeat(63), '9lives'])(
    'accepts %j',
    (name) => {
      expect(isBucketName(name)).toBe(true);
      expect(checkBucketName(name)).toBe(name);
    },
  );

  it.each([
    '',
    'x'.repeat(64),
    'Photos',
    'photoS',
    '-app',
    '.app',
    '_app',
    'my app',
    'my/app',
    'app!',
    'été',
    'a\u0000',
    'app\n',
  ])('rejects %j with STRATA_INVALID_NAME', (name) => {
    expect(isBucketName(name)).toBe(false);
    expect(strataErrorCode(() => checkBucketName(name))).toBe('STRATA_INVALID_NAME');
  });

  it('matches [a-z0-9][a-z0-9._-]{0,62} exactly (property)', () => {
    const valid = fc
      .tuple(fc.constantFrom(...firstChars), fc.array(fc.constantFrom(...restChars), { maxLength: 62 }))
      .map(([first, rest]) => first + rest.join(''));
    fc.assert(
      fc.property(valid, (name) => {
        expect(isBucketName(name)).toBe(true);
        expect(isSystemBucket(name)).toBe(false);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (name) => {
        expect(isBucketName(name)).toBe(/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name));
      }),
    );
  });

  it('reserves names starting with _ for the system', () => {
    for (const name of ['_releases', '_auth', '_x', `_${'a'.repeat(62)}`]) {
      expect(isSystemBucket(name)).toBe(true);
      expect(isBucketName(name)).toBe(false);
      expect(strataErrorCode(() => checkBucketName(name))).toBe('STRATA_INVALID_NAME');
    }
  });

  it.each(['_', '__x', '_-x', `_${'a'.repeat(63)}`, '_Releases', 'releases'])(
    'does not treat %j as a system bucket',
    (name) => {
      expect(isSystemBucket(name)).toBe(false);
    },
  );

  it('says what was being named in the message', () => {
    expect(() => checkBucketName('Bad', 'app')).toThrow(/app name/);
  });
});

describe('keys', () => {
  it.each(['k', 'a/b/c.txt', 'with space', 'ünïcødé', '日本語', '😀', 'x'.repeat(1024)])(
    'accepts %j',
    (key) => {
      expect(checkKey(key)).toBe(key);
    },
  );

  it('rejects the empty key', () => {
    expect(strataErrorCode(() => checkKey(''))).toBe('STRATA_INVALID_NAME');
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    expect(strataErrorCode(() => checkKey('x'.repeat(1025)))).toBe('STRATA_INVALID_NAME');
    // é is 2 bytes, € is 3, 😀 is 4 (and 2 UTF-16 code units).
    expect(checkKey('é'.repeat(512))).toHaveLength(512);
    expect(strataErrorCode(() => checkKey('é'.repeat(513)))).toBe('STRATA_INVALID_NAME');
    expect(checkKey(`${'€'.repeat(341)}x`)).toBeDefined();
    expect(strataErrorCode(() => checkKey('€'.repeat(342)))).toBe('STRATA_INVALID_NAME');
    expect(checkKey('😀'.repeat(256))).toBeDefined();
    expect(strataErrorCode(() => checkKey('😀'.repeat(257)))).toBe('STRATA_INVALID_NAME');
    expect(strataErrorCode(() => checkKey(`${'x'.repeat(1023)}é`))).toBe('STRATA_INVALID_NAME');
  });

  it('accepts exactly the well-formed keys of 1–1024 UTF-8 bytes without control characters (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 600 }),
          fc.string({ unit: 'grapheme', maxLength: 300 }),
        ),
        (key) => {
          const bytes = Buffer.byteLength(key, 'utf8');
          // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule under test.
          const controls = /[\u0000-\u001f\u007f]/;
          const expected = bytes >= 1 && bytes <= 1024 && !controls.test(key) && key.isWellFormed();
          expect(strataErrorCode(() => checkKey(key)) === undefined).toBe(expected);
        },
      ),
    );
  });

  it.each(['\u0000', 'a\u0001b', 'line\nbreak', 'tab\there', 'cr\r', 'esc\u001b[0m', 'del\u007f'])(
    'rejects the control character in %j',
    (key) => {
      expect(strataErrorCode(() => checkKey(key))).toBe('STRATA_INVALID_NAME');
    },
  );

  it.each(['\ud800', 'a\udc00', 'x\ud83d', '\ude00\ud83d'])('rejects the lone surrogate in %j', (key) => {
    expect(strataErrorCode(() => checkKey(key))).toBe('STRATA_INVALID_NAME');
  });
});

describe('checkNewKey', () => {
  it.each(['a/../b', '..', '.', 'a/.', './a', 'x/y/..'])(
    'refuses %j: a URL would fold its dot segments',
    (key) => {
      expect(strataErrorCode(() => checkNewKey(key))).toBe('STRATA_INVALID_NAME');
      // Such a key written before stays addressable for reads and deletes.
      expect(checkKey(key)).toBe(key);
    },
  );

  it.each(['a..b', '.hidden', 'a/.well-known/b', '...', 'a/b.'])('accepts %j', (key) => {
    expect(checkNewKey(key)).toBe(key);
  });
});
