import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuoted } from './output.js';

describe('shellQuoted', () => {
  it('gives a word the shell reads back as the value, quotes and all', () => {
    for (const value of ["it's a", "''", 'plain', 'a b\tc', '$HOME `x` "q" \\ ;|&', 'ünï/cödé']) {
      const read = execFileSync('bash', ['-c', `printf %s ${shellQuoted(value)}`]).toString('utf8');
      expect(read, value).toBe(value);
    }
  });
});
