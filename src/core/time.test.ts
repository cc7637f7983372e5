import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { StrataError } from './errors.js';
import { formatTime, parseTime } from './time.js';

/** The code parseTime refuses `value` with, or undefined if it parses. */
function invalidTimeCode(value: string): string | undefined {
  return strataErrorCode(() => parseTime(value));
}

describe('parseTime', () => {
  it.each([
    ['2026-11-23T18:00:00Z', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23t18:00:00z', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23 18:00:00Z', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23T19:00:00+01:00', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23T12:30:00-05:30', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23T18:00:00+00:00', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23T18:00:00-00:00', Date.UTC(2026, 10, 23, 18, 0, 0)],
    ['2026-11-23T18:00:00.5Z', Date.UTC(2026, 10, 23, 18, 0, 0, 500)],
    ['2026-11-23T18:00:00.123Z', Date.UTC(2026, 10, 23, 18, 0, 0, 123)],
    ['2026-11-23T18:00:00.123456789Z', Date.UTC(2026, 10, 23, 18, 0, 0, 123)],
    ['2026-11-23T18:00:00.123456789012Z', Date.UTC(2026, 10, 23, 18, 0, 0, 123)],
    [`2026-11-23T18:00:00.${'9'.repeat(64)}Z`, Date.UTC(2026, 10, 23, 18, 0, 0, 999)],
    ['2026-11-23T19:00:00.250+01:00', Date.UTC(2026, 10, 23, 18, 0, 0, 250)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T23:59:59Z', Date.UTC(2000, 1, 29, 23, 59, 59)],
    ['1970-01-01T00:00:00Z', 0],
    ['9999-12-31T23:59:59.999Z', Date.UTC(9999, 11, 31, 23, 59, 59, 999)],
  ])('parses RFC 3339 %s', (value, expected) => {
    expect(parseTime(value)).toBe(expected);
  });

  it.each([
    ['0', 0],
    ['1767225600000', 1_767_225_600_000],
    [' 42 ', 42],
    ['253402300799999', Date.UTC(9999, 11, 31, 23, 59, 59, 999)],
  ])('parses epoch milliseconds %j', (value, expected) => {
    expect(parseTime(value)).toBe(expected);
  });

  it.each([
    '2026-02-30T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-32T00:00:00Z',
    '2026-01-00T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T25:00:00Z',
    '2026-01-01T12:60:00Z',
    '2026-01-01T12:00:60Z',
    '2026-01-01T12:00:00+24:00',
    '2026-01-01T12:00:00+01:60',
  ])('rejects the impossible date-time %s with STRATA_INVALID_TIME', (value) => {
    expect(invalidTimeCode(value)).toBe('STRATA_INVALID_TIME');
  });

  it.each([
    '',
    '   ',
    'now',
    'tomorrow',
    '2026-11-23',
    '2026-11-23T18:00Z',
    '2026-11-23T18:00:00',
    '2026-11-23T18:00:00+0100',
    '2026-11-23T18:00:00.Z',
    `2026-11-23T18:00:00.${'1'.repeat(65)}Z`,
    '26-11-23T18:00:00Z',
    '2026/11/23T18:00:00Z',
    '2026-11-23T18:00:00Z trailing',
    '1e12',
    '12.5',
    '0x10',
    '+1000',
    '1234567890123456',
  ])('rejects the garbage %j with STRATA_INVALID_TIME', (value) => {
    expect(invalidTimeCode(value)).toBe('STRATA_INVALID_TIME');
  });

  it.each(['-1', '-1000', '1969-12-31T23:59:59Z', '1970-01-01T00:30:00+01:00', '9999-12-31T23:59:59-01:00'])(
    'rejects %s as out of range',
    (value) => {
      expect(invalidTimeCode(value)).toBe('STRATA_INVALID_TIME');
    },
  );

  it('never throws anything but STRATA_INVALID_TIME on arbitrary strings (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        try {
          const ms = parseTime(value);
          expect(Number.isSafeInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
        } catch (error) {
          expect(error).toBeInstanceOf(StrataError);
          expect((error as StrataError).code).toBe('STRATA_INVALID_TIME');
        }
      }),
    );
  });

  it('round-trips formatTime output for every instant in range (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }), (ms) => {
        expect(parseTime(formatTime(ms))).toBe(ms);
        expect(parseTime(String(ms))).toBe(ms);
      }),
    );
  });

  it('says that epoch milliseconds past year 9999 are out of range, not that they are not a time', () => {
    expect(() => parseTime('1234567890123456', 'at')).toThrow(/at 1234567890123456 is out of range/);
  });

  it('refuses a leap second, saying what to send instead', () => {
    expect(invalidTimeCode('2016-12-31T23:59:60Z')).toBe('STRATA_INVALID_TIME');
    expect(() => parseTime('2016-12-31T23:59:60Z', 'at')).toThrow(/leap second.*:59\.999/);
    expect(parseTime('2016-12-31T23:59:59.999Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
  });

  it('names the thing being parsed in the message', () => {
    expect(() => parseTime('garbage', 'effectiveAt')).toThrow(/effectiveAt/);
  });
});
