import { expect } from 'vitest';
import { StrataError } from '../../src/core/errors.js';

/** The code of the StrataError that `run` throws (failing on any other error), or undefined if it returns. */
export function strataErrorCode(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return (error as StrataError).code;
  }
}
