import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, StrataError } from '../core/errors.js';
import { overflowBytesDrainMax } from '../log/blob-store.js';

/** The one place where error codes become HTTP status codes (STYLE §7). */
export const statusOf: Record<ErrorCode, number> = {
  STRATA_BAD_REQUEST: 400,
  STRATA_INVALID_NAME: 400,
  STRATA_INVALID_TIME: 400,
  STRATA_BAD_QUERY: 400,
  STRATA_UNAUTHORIZED: 401,
  STRATA_FORBIDDEN: 403,
  STRATA_NOT_FOUND: 404,
  STRATA_CONFLICT: 409,
  STRATA_PRECONDITION_FAILED: 412,
  STRATA_TOO_LARGE: 413,
  STRATA_UNSUPPORTED_MEDIA_TYPE: 415,
  STRATA_RANGE_NOT_SATISFIABLE: 416,
  STRATA_UNKNOWN_BLOB: 422,
  STRATA_UNKNOWN_VERSION: 422,
  STRATA_UNAVAILABLE: 503,
  STRATA_INTERNAL: 500,
};

/** Fastify's own errors for bad input, mapped onto the catalogue. */
function fromFastify(error: FastifyError): StrataError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new StrataError('STRATA_TOO_LARGE', 'request body exceeds the limit for this endpoint');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new StrataError(
        'STRATA_UNSUPPORTED_MEDIA_TYPE',
        'this endpoint takes Content-Type: application/json',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new StrataError('STRATA_BAD_REQUEST', 'the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new StrataError('STRATA_BAD_REQUEST', 'Content-Length does not match the body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new StrataError('STRATA_BAD_REQUEST', `malformed JSON body: ${error.message}`);
    default:
      break;
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return new StrataError('STRATA_BAD_REQUEST', `malformed request: ${error.message}`);
  }
  if (error.statusCode === 413) return new StrataError('STRATA_TOO_LARGE', error.message);
  if (error.statusCode === 415) return new StrataError('STRATA_UNSUPPORTED_MEDIA_TYPE', error.message);
  return undefined;
}

export function errorBody(error: StrataError): {
  error: { code: ErrorCode; message: string } & Record<string, unknown>;
} {
  return { error: { code: error.code, message: error.message, ...(error.details ?? {}) } };
}

/**
 * Node reads and discards an unread request body after the response (keeping the connection
 * usable), which is right for a body somewhat over the limit. A body declared far over it is not
 * worth reading: the connection is closed once the 413 is sent.
 */
function closeAfterHugeBody(request: FastifyRequest, reply: FastifyReply): void {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (request.raw.complete || !(declared > overflowBytesDrainMax)) return;
  void reply.header('Connection', 'close');
  reply.raw.once('finish', () => request.raw.socket?.destroy());
}

export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const known = error instanceof StrataError ? error : fromFastify(error as FastifyError);
  if (known) {
    if (known.code === 'STRATA_TOO_LARGE') closeAfterHugeBody(request, reply);
    void reply.status(statusOf[known.code]).send(errorBody(known));
    return;
  }
  request.log.error({ err: error }, 'internal error');
  void reply
    .status(500)
    .send(
      errorBody(
        new StrataError('STRATA_INTERNAL', 'internal error; the request had no effect, see the node log'),
      ),
    );
}
