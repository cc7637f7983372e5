import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { repeatedMember } from './json-members.js';

describe('repeatedMember', () => {
  it('finds a name given twice in one object, at any depth, escaped or not', () => {
    expect(repeatedMember('{"ops":[],"ops":[1]}')).toBe('ops');
    expect(repeatedMember('{"a":{"b":1,"c":{"d":[{"e":1,"e":2}]}}}')).toBe('e');
    expect(repeatedMember('{"k\\u0065y":1,"key":2}')).toBe('key');
    expect(repeatedMember('{"a\\\\":1,"a\\\\":2}')).toBe('a\\');
    expect(repeatedMember('[{"a":1},{"a":2}]')).toBeUndefined();
    expect(repeatedMember('{"a":{"a":1},"b":"a"}')).toBeUndefined();
    expect(repeatedMember('{"a":"x\\",\\"a\\":","b":1}')).toBeUndefined();
    expect(repeatedMember('{}')).toBeUndefined();
  });

  it('finds nothing in any JSON that JSON.stringify writes (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(repeatedMember(JSON.stringify(value))).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('finds a name repeated anywhere in a generated object (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }),
        fc.jsonValue(),
        (object, extra) => {
          const [name] = Object.keys(object) as [string];
          const text = `{${JSON.stringify(name)}:${JSON.stringify(extra)},${JSON.stringify(object).slice(1)}`;
          expect(repeatedMember(text)).toBe(name);
        },
      ),
      { numRuns: 300 },
    );
  });
});
