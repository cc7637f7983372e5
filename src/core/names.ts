import { fail } from './errors.js';

/** DESIGN §2: bucket (and app) names. Names starting with `_` are the system's own. */
const bucketPattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const systemBucketPattern = /^_[a-z0-9][a-z0-9._-]{0,61}$/;
/** Keys are 1–1024 bytes of UTF-8 without C0/C1 control characters (they end up in headers and logs). */
const keyBytesMax = 1024;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/;

export function isBucketName(name: string): boolean {
  return bucketPattern.test(name);
}

export function isSystemBucket(name: string): boolean {
  return systemBucketPattern.test(name);
}

export function checkBucketName(name: string, what = 'bucket'): string {
  if (!bucketPattern.test(name)) {
    fail(
      'STRATA_INVALID_NAME',
      `${what} name "${truncate(name)}" is invalid: use 1–63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

/**
 * A bucket named to filter a listing (feed, search, recent): a user bucket, or a system one
 * (`_events`, `_auth`…), whose visibility the route then decides.
 */
export function checkBucketFilter(name: string): string {
  return isSystemBucket(name) ? name : checkBucketName(name);
}

export function checkKey(key: string): string {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes === 0 || bytes > keyBytesMax) {
    fail('STRATA_INVALID_NAME', `key must be 1–${keyBytesMax} bytes of UTF-8, got ${bytes} bytes`);
  }
  if (controlCharacters.test(key)) fail('STRATA_INVALID_NAME', 'key must not contain control characters');
  if (key.isWellFormed && !key.isWellFormed()) fail('STRATA_INVALID_NAME', 'key is not well-formed Unicode');
  return key;
}

/**
 * A key a put may create: also free of `.` and `..` path segments, which every URL parser
 * (browsers, fetch, curl without --path-as-is) folds away, so that no client could read the key
 * back at its own URL. Keys written before this rule stay readable and deletable: reads and
 * deletes check `checkKey` only.
 */
export function checkNewKey(key: string): string {
  checkKey(key);
  if (key.split('/').some((segment) => segment === '.' || segment === '..'))
    fail(
      'STRATA_INVALID_NAME',
      'key must not have . or .. segments: URLs fold them away, so none could reach it',
    );
  return key;
}

function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 80)}…` : value;
}
