import { fail } from './errors.js';

/**
 * Accepts RFC 3339 date-times (`2026-11-23T18:00:00Z`, `…+01:00`, fractional seconds) and epoch
 * milliseconds. Dates that do not exist (February 30th, hour 25) are rejected instead of being
 * rolled over the way `Date.parse` would. Fractional seconds may have any number of digits (RFC 3339
 * `1*DIGIT`; up to 64 here), cut to the millisecond.
 */
const rfc3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,64})?([Zz]|[+-](\d{2}):(\d{2}))$/;
/** Digits alone are epoch milliseconds; more than 15 is out of range, and is said to be. */
const epochMs = /^-?\d{1,30}$/;

/** Accepted instants: the Unix epoch to the end of year 9999, the last year RFC 3339 can write. */
const minMs = 0;
const maxMs = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function parseTime(value: string, what = 'time'): number {
  const trimmed = value.trim();
  if (epochMs.test(trimmed)) {
    const ms = Number(trimmed);
    if (ms < minMs || ms > maxMs)
      fail('STRATA_INVALID_TIME', `${what} ${value} is out of range (0 to year 9999)`);
    return ms;
  }
  const match = rfc3339.exec(trimmed);
  if (!match) {
    fail(
      'STRATA_INVALID_TIME',
      `${what} "${value}" is neither RFC 3339 (2026-11-23T18:00:00Z) nor epoch milliseconds`,
    );
  }
  const [, year, month, day, hour, minute, second, , zone, zoneHour, zoneMinute] = match;
  const y = Number(year);
  const mo = Number(month);
  const d = Number(day);
  const h = Number(hour);
  const mi = Number(minute);
  const s = Number(second);
  if (s === 60) {
    fail(
      'STRATA_INVALID_TIME',
      `${what} "${value}" is a leap second, which Unix time (and so Strata) cannot hold: use :59.999`,
    );
  }
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 59) {
    fail('STRATA_INVALID_TIME', `${what} "${value}" names a date or time that does not exist`);
  }
  if (zone && zone.toUpperCase() !== 'Z' && (Number(zoneHour) > 23 || Number(zoneMinute) > 59)) {
    fail('STRATA_INVALID_TIME', `${what} "${value}" has an impossible UTC offset`);
  }
  const ms = Date.parse(trimmed.replace(' ', 'T'));
  if (Number.isNaN(ms) || ms < minMs || ms > maxMs) {
    fail('STRATA_INVALID_TIME', `${what} "${value}" is out of range`);
  }
  return ms;
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}
