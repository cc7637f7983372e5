/**
 * The one catalogue of expected failures (STYLE §7). Each code is stable: clients match on it.
 * Only src/http/ maps codes to status codes; docs/api.md lists every code (a test keeps them in step).
 */
export const errorCatalogue = {
  STRATA_BAD_REQUEST:
    'The request is malformed: a body, header or parameter does not have the required form.',
  STRATA_INVALID_NAME: 'A bucket, app or key name breaks the naming rule.',
  STRATA_INVALID_TIME: 'A time is not RFC 3339 or epoch milliseconds, or names a date that does not exist.',
  STRATA_BAD_QUERY:
    'A search query is not valid FTS5 syntax (the message says where it broke), or names nothing to search.',
  STRATA_UNAUTHORIZED: 'No valid bearer token was presented.',
  STRATA_FORBIDDEN: 'The token is valid but its role does not allow this operation.',
  STRATA_NOT_FOUND: 'No such key, version, commit, blob, token or route.',
  STRATA_REQUEST_TIMEOUT: 'The request did not arrive in full in time; send it again.',
  STRATA_CONFLICT: 'The request contradicts the current state (for example, retracting a version twice).',
  STRATA_PRECONDITION_FAILED: 'An If-Match or If-None-Match condition does not hold; nothing was written.',
  STRATA_TOO_LARGE: 'The body exceeds the configured limit.',
  STRATA_UNSUPPORTED_MEDIA_TYPE: 'The endpoint takes JSON and the body is declared as something else.',
  STRATA_RANGE_NOT_SATISFIABLE: 'The Range header names bytes outside the object.',
  STRATA_HEADERS_TOO_LARGE: 'The request line and headers together exceed the limit (16 KiB).',
  STRATA_EXPECTATION_FAILED: 'An Expect header asks for something other than 100-continue.',
  STRATA_UNKNOWN_BLOB:
    'A put names a blob hash that the store does not hold; upload it first (PUT /v1/blobs/{hash}).',
  STRATA_UNKNOWN_VERSION: 'A version the request refers to does not exist.',
  STRATA_DAMAGED:
    "This node's copy of a blob is missing or does not hash to its id; it was set aside. Upload the bytes again, or a peer sends them.",
  STRATA_UNAVAILABLE: 'The node is shutting down or cannot take the request now; retry.',
  STRATA_INTERNAL: 'A bug: the node hit a state it should never reach. The request had no effect.',
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export class StrataError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'StrataError';
  }
}

export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new StrataError(code, message, details);
}

/**
 * Refuses a JSON object with a member outside `names` (STRATA_BAD_REQUEST): a misspelt field
 * (`"efectiveAt"`) would otherwise be dropped and the request done without it.
 */
export function onlyFields(value: object, names: readonly string[], where: string): void {
  for (const name of Object.keys(value)) {
    if (!names.includes(name)) {
      const known = names.map((known) => `"${known}"`).join(', ');
      fail('STRATA_BAD_REQUEST', `${where} has an unknown field "${name.slice(0, 80)}" (it takes ${known})`);
    }
  }
}

/** For cases the type system says cannot happen (STYLE §7: a bug crashes loudly). */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${message}`);
}
