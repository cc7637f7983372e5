import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { parseJsonBytes } from './raw-body.js';

describe('a JSON body with a member given twice', () => {
  it('is refused as a body, naming the member', () => {
    expect(strataErrorCode(() => parseJsonBytes(Buffer.from('{"role":"read","role":"admin"}')))).toBe(
      'STRATA_BAD_REQUEST',
    );
    expect(() => parseJsonBytes(Buffer.from('{"role":"read","role":"admin"}'))).toThrow('"role" twice');
  });
});
