import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Canonical, canonicalEncode } from './canonical.js';

/** Structurally equal values with members inserted in different orders. */
function shuffledKeys(value: Canonical, seed: number): Canonical {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => shuffledKeys(item, seed));
  const keys = Object.keys(value);
  const rotated =
    keys.length === 0 ? keys : [...keys.slice(seed % keys.length), ...keys.slice(0, seed % keys.length)];
  const out: { [key: string]: Canonical | undefined } = {};
  for (const key of rotated.reverse()) out[key] = shuffledKeys(value[key] as Canonical, seed + 1);
  return out;
}

const canonicalValue: fc.Arbitrary<Canonical> = fc.letrec<{ value: Canonical }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonicalEncode', () => {
  it('does not depend on the order in which object members were inserted', () => {
    expect(canonicalEncode({ b: 1, a: 2, c: { z: true, y: null } })).toBe(
      canonicalEncode({ c: { y: null, z: true }, a: 2, b: 1 }),
    );
    expect(canonicalEncode({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });

  it('encodes any reordering of a value to the same string (property)', () => {
    fc.assert(
      fc.property(canonicalValue, fc.nat(), (value, seed) => {
        expect(canonicalEncode(shuffledKeys(value, seed))).toBe(canonicalEncode(value));
      }),
    );
  });

  it('is valid JSON that parses back to an equal value (property)', () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const encoded = canonicalEncode(value);
        expect(canonicalEncode(JSON.parse(encoded) as Canonical)).toBe(encoded);
      }),
    );
  });

  it('sorts keys by UTF-16 code unit, not by locale', () => {
    expect(canonicalEncode({ b: 1, B: 2, a: 3, é: 4, _: 5 })).toBe('{"B":2,"_":5,"a":3,"b":1,"é":4}');
  });

  it('drops undefined members, so an absent and an undefined member encode the same', () => {
    expect(canonicalEncode({ a: 1, b: undefined })).toBe('{"a":1}');
    expect(canonicalEncode({ a: 1, b: undefined })).toBe(canonicalEncode({ a: 1 }));
    expect(canonicalEncode({ nested: { x: undefined } })).toBe('{"nested":{}}');
  });

  it('keeps null members (null is a value, undefined is absence)', () => {
    expect(canonicalEncode({ a: null })).toBe('{"a":null}');
  });

  it.each([1.5, -0.25, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 53)])(
    'rejects the number %s',
    (value) => {
      expect(() => canonicalEncode(value)).toThrow(TypeError);
      expect(() => canonicalEncode({ deep: [1, { n: value }] })).toThrow(TypeError);
    },
  );

  it('accepts the extreme safe integers', () => {
    expect(canonicalEncode([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0])).toBe(
      `[${Number.MAX_SAFE_INTEGER},${Number.MIN_SAFE_INTEGER},0]`,
    );
  });

  it('encodes nested arrays and objects without white space, keeping array order', () => {
    const value: Canonical = { list: [3, 1, [2, { y: 'x', x: 'y' }]], obj: { inner: [] }, empty: {} };
    expect(canonicalEncode(value)).toBe('{"empty":{},"list":[3,1,[2,{"x":"y","y":"x"}]],"obj":{"inner":[]}}');
  });

  it('escapes strings as JSON does', () => {
    expect(canonicalEncode('a"b\\c\n\u0001')).toBe(JSON.stringify('a"b\\c\n\u0001'));
    expect(canonicalEncode({ 'k"ey': 'v' })).toBe('{"k\\"ey":"v"}');
  });

  it('rejects values that are not JSON', () => {
    expect(() => canonicalEncode((() => 1) as unknown as Canonical)).toThrow(TypeError);
    expect(() => canonicalEncode(10n as unknown as Canonical)).toThrow(TypeError);
  });
});
