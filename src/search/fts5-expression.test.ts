import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { prepareExpression } from './fts5-expression.js';

describe('prepareExpression', () => {
  it.each([
    ['e-mail', '"e-mail"'],
    ['x-ray scan', '"x-ray" scan'],
    ['gl.enable(gl.BLEND)', '"gl.enable"("gl.BLEND")'],
    ["o'clock", `"o'clock"`],
    ['user@example.com', '"user@example.com"'],
    ['e-ma*', '"e-ma"*'],
    ['"already quoted" plain', '"already quoted" plain'],
    ['café', 'café'],
    ['a AND b OR NOT c', 'a AND b OR NOT c'],
  ])('makes %j a phrase where it joins words, and leaves the rest as typed', (q, expected) => {
    expect(prepareExpression(q)).toBe(expected);
  });

  it('puts every phrase the query does not filter by column under the scope', () => {
    expect(prepareExpression('lighthouse', 'body')).toBe('body : lighthouse');
    expect(prepareExpression('light* AND "the keeper" OR ^start', 'body')).toBe(
      'body : light* AND body : "the keeper" OR body : ^start',
    );
    expect(prepareExpression('a + b c', 'body')).toBe('body : a + b body : c');
    expect(prepareExpression('NEAR(a b, 3) c', 'body')).toBe('body : NEAR(a b, 3) body : c');
    expect(prepareExpression('(a OR (b c))', 'body')).toBe('(body : a OR (body : b body : c))');
  });

  it('leaves column filters and the groups under them as written', () => {
    expect(prepareExpression('fields:"title keeper" lighthouse', 'body')).toBe(
      'fields:"title keeper" body : lighthouse',
    );
    expect(prepareExpression('fields : (a OR b) c', 'body')).toBe('fields : (a OR b) body : c');
    expect(prepareExpression('{body fields}: a b', 'body')).toBe('{body fields}: a body : b');
    expect(prepareExpression('-{fields}: a', 'body')).toBe('-{fields}: a');
    expect(prepareExpression('-fields: a', 'body')).toBe('-fields: a');
  });

  it('refuses parentheses that do not pair, saying where, but not those inside a phrase', () => {
    expect(prepareExpression('"a (b" c', 'body')).toBe('body : "a (b" body : c');
    expect(() => prepareExpression('(a OR (b')).toThrow('2 ( are not closed');
    expect(() => prepareExpression('x-y ) z')).toThrow('the ) at character 5 closes no (');
  });

  it('refuses a filter with nothing after it, a lone *, and a -word meant as an exclusion', () => {
    for (const q of ['text:', 'text: AND b', 'a text:)', '*', '(*)', 'e -mail']) {
      expect(
        strataErrorCode(() => prepareExpression(q, 'body')),
        q,
      ).toBe('STRATA_BAD_QUERY');
    }
    expect(() => prepareExpression('text:')).toThrow('text: needs what to look for after the colon');
    expect(() => prepareExpression('e -mail')).toThrow('write NOT mail');
    expect(() => prepareExpression('a - b')).toThrow('a lone - is no operator here');
  });
});
