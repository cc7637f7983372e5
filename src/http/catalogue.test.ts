import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, errorCatalogue } from '../core/errors.js';
import { statusOf } from './errors.js';

const codes = Object.keys(errorCatalogue) as ErrorCode[];
const apiDoc = fileURLToPath(new URL('../../docs/api.md', import.meta.url));

describe('the error catalogue (STYLE §7)', () => {
  it('has a stable STRATA_ code and a description for every error', () => {
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) {
      expect(code).toMatch(/^STRATA_[A-Z_]+$/);
      expect(errorCatalogue[code].length).toBeGreaterThan(10);
    }
  });

  it.each(codes)('%s maps to an HTTP error status', (code) => {
    const status = statusOf[code];
    expect(Number.isInteger(status)).toBe(true);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(600);
  });

  it('maps no code that is not in the catalogue', () => {
    expect(Object.keys(statusOf).sort()).toEqual([...codes].sort());
  });

  it('keeps 5xx for failures of the node, never for bad input', () => {
    const serverSide = codes.filter((code) => statusOf[code] >= 500).sort();
    expect(serverSide).toEqual(['STRATA_DAMAGED', 'STRATA_INTERNAL', 'STRATA_UNAVAILABLE']);
  });
});

describe('docs/api.md', () => {
  it('exists', () => {
    expect(existsSync(apiDoc), `${apiDoc} is missing`).toBe(true);
  });

  it.each(codes)('lists %s in the Errors table with its status', (code) => {
    const text = existsSync(apiDoc) ? readFileSync(apiDoc, 'utf8') : '';
    expect(text).toMatch(new RegExp(`^\\| \`${code}\` +\\| ${statusOf[code]} +\\|`, 'm'));
  });
});
