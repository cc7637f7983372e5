import { maxHeaderSize, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, StrataError } from '../core/errors.js';
import { isMediaType } from './params.js';

/** The one place where error codes become HTTP status codes (STYLE §7). */
export const statusOf: Record<ErrorCode, number> = {
  STRATA_BAD_REQUEST: 400,
  STRATA_INVALID_NAME: 400,
  STRATA_INVALID_TIME: 400,
  STRATA_BAD_QUERY: 400,
  STRATA_UNAUTHORIZED: 401,
  STRATA_FORBIDDEN: 403,
  STRATA_NOT_FOUND: 404,
  STRATA_REQUEST_TIMEOUT: 408,
  STRATA_CONFLICT: 409,
  STRATA_PRECONDITION_FAILED: 412,
  STRATA_TOO_LARGE: 413,
  STRATA_UNSUPPORTED_MEDIA_TYPE: 415,
  STRATA_RANGE_NOT_SATISFIABLE: 416,
  STRATA_HEADERS_TOO_LARGE: 431,
  STRATA_EXPECTATION_FAILED: 417,
  STRATA_UNKNOWN_BLOB: 422,
  STRATA_UNKNOWN_VERSION: 422,
  STRATA_DAMAGED: 503,
  STRATA_UNAVAILABLE: 503,
  STRATA_INTERNAL: 500,
};

/** Fastify's own errors for bad input, mapped onto the catalogue. */
function fromFastify(error: FastifyError, request: FastifyRequest): StrataError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new StrataError(
        'STRATA_TOO_LARGE',
        `the JSON body exceeds this endpoint's limit of ${request.routeOptions.bodyLimit} bytes`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      // Fastify answers 415 both to a header it cannot parse and to a type no parser takes.
      const given = request.headers['content-type'];
      if (given !== undefined && !isMediaType(given)) {
        return new StrataError(
          'STRATA_BAD_REQUEST',
          `Content-Type "${given.slice(0, 100)}" is not a valid media type (type/subtype; name=value)`,
        );
      }
      return new StrataError(
        'STRATA_UNSUPPORTED_MEDIA_TYPE',
        'this endpoint takes Content-Type: application/json',
      );
    }
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
 * After a 413, Node reads and discards what is left of the body, keeping the connection usable.
 * A client still sending when the answer has gone out is given `overflowLingerMs` to finish, or to
 * read the 413 and hang up; then the connection is cut. Cutting it at once would reset a client
 * that is still writing, which then loses the 413 it had not read yet (a CLI `put` of a 20 MB file
 * reported "cannot reach the node" in 5 of 12 runs). Never cutting it would leave a connection
 * whose body nobody reads open for ever (a chunked upload cut off at the limit), and with it the
 * node's shutdown.
 */
function closeAfterOverflow(request: FastifyRequest, reply: FastifyReply): void {
  // Taken now, from the reply: a request whose body stream was cut off (at the limit) no longer
  // names its socket, and once the answer is out the reply does not either.
  const socket = reply.raw.socket ?? request.raw.socket;
  reply.raw.once('finish', () => {
    if (!socket || socket.destroyed || request.raw.complete) return;
    answeredMidBody.add(socket);
    const timer = setTimeout(() => socket.destroy(), overflowLingerMs);
    timer.unref();
    request.raw.once('end', () => {
      // The body came in full: the connection serves the next request as any other.
      clearTimeout(timer);
      answeredMidBody.delete(socket);
    });
    socket.once('close', () => clearTimeout(timer));
  });
}

/** How long a client may go on sending a refused body before it is cut off. */
export const overflowLingerMs = 2_000;

/**
 * Connections whose request was answered (413) before its body was in: a body cut off after that
 * is no new fault to answer, only the end of the connection.
 */
const answeredMidBody = new WeakSet<Socket>();

function clientWentAway(error: Error & { code?: string }, request: FastifyRequest): boolean {
  return (
    request.raw.aborted ||
    error.code === 'ECONNRESET' ||
    error.code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    error.message === 'aborted'
  );
}

export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const known = error instanceof StrataError ? error : fromFastify(error as FastifyError, request);
  if (known) {
    if (known.code === 'STRATA_TOO_LARGE') closeAfterOverflow(request, reply);
    void reply.status(statusOf[known.code]).send(errorBody(known));
    return;
  }
  if (clientWentAway(error, request)) {
    // Not a fault of the node: the upload was discarded (no partial state, DESIGN §2).
    request.log.info({ err: error }, 'the client disconnected before its request was read');
    void reply
      .status(400)
      .send(errorBody(new StrataError('STRATA_BAD_REQUEST', 'the request body was cut off')));
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

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a malformed Content-Length, a bad
 * header character, headers over the limit): answered with a Strata error body, then closed, as
 * the rest of the connection cannot be trusted to be framed.
 */
/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused never reaches a route or a
 * hook, so `onRefused` is told its status (for the request counters).
 */
export function clientErrorHandlerCounting(onRefused: (status: number) => void) {
  return function handler(
    this: FastifyInstance,
    error: Error & { code?: string; reason?: string },
    socket: Socket,
  ): void {
    if (error.code !== 'ECONNRESET' && !socket.destroyed && !answeredMidBody.has(socket))
      onRefused(statusOfClientError(error));
    clientErrorHandler.call(this, error, socket);
  };
}

function statusOfClientError(error: Error & { code?: string }): number {
  return error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
}

export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string; reason?: string },
  socket: Socket,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (answeredMidBody.has(socket)) {
    socket.destroy();
    return;
  }
  const strataError =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new StrataError(
          'STRATA_HEADERS_TOO_LARGE',
          `the request line and headers exceed ${maxHeaderSize} bytes`,
        )
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new StrataError('STRATA_REQUEST_TIMEOUT', 'the request did not arrive in full in time')
        : new StrataError(
            'STRATA_BAD_REQUEST',
            `the request is not valid HTTP/1.1: ${(error.reason ?? error.code ?? error.message).slice(0, 200)}`,
          );
  this.log.debug({ err: error }, 'refused a request the HTTP parser could not read');
  const refuse = () => {
    if (socket.writable) socket.write(rawErrorResponse(strataError));
    socket.destroy();
  };
  // The garbage may follow a request on the same connection that is still being answered (a
  // write waiting for its fsync): its answer goes out first, or the client would never learn
  // that the write was acknowledged. A request whose body is still arriving is the one that
  // broke (a client that hung up mid-upload): its socket goes at once, so the upload is discarded.
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (answering && !answering.writableFinished && answering.req.complete) {
    answering.once('finish', refuse);
    answering.once('close', () => socket.destroy());
    return;
  }
  refuse();
}

/** A whole HTTP/1.1 error answer, for a socket no ServerResponse serves; it closes the connection. */
function rawErrorResponse(error: StrataError): string {
  const status = statusOf[error.code];
  const body = JSON.stringify(errorBody(error));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * The answers Node would otherwise give itself, in Strata's form: an `Expect` it does not know
 * (417 with no body), `Expect: 100-continue` for a body declared over every limit (a 100 Continue
 * first, inviting a body that will be thrown away), and `CONNECT` (no answer at each, the socket
 * just closed). `refused` counts each in the request metrics.
 */
export function answerWhatNodeWould(
  server: Server,
  bodyBytesMax: number,
  refused: (method: string, status: number) => void,
): void {
  const send = (response: ServerResponse, method: string, error: StrataError) => {
    const status = statusOf[error.code];
    const body = JSON.stringify(errorBody(error));
    refused(method, status);
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    response.end(body);
  };
  server.on('checkExpectation', (request, response) => {
    const expect = String(request.headers.expect ?? '').slice(0, 100);
    send(
      response,
      request.method ?? '(unparsed)',
      new StrataError(
        'STRATA_EXPECTATION_FAILED',
        `Expect: ${expect} is not understood: only 100-continue is`,
      ),
    );
  });
  server.on('checkContinue', (request, response) => {
    const declared = Number(request.headers['content-length']);
    if (declared > bodyBytesMax) {
      send(
        response,
        request.method ?? '(unparsed)',
        new StrataError('STRATA_TOO_LARGE', `a body of ${declared} bytes exceeds every limit of this node`),
      );
      return;
    }
    response.writeContinue();
    server.emit('request', request, response);
  });
  server.on('connect', (_request, socket: Socket) => {
    refused('CONNECT', 400);
    socket.end(
      rawErrorResponse(
        new StrataError('STRATA_BAD_REQUEST', 'CONNECT is not served: a Strata node is no proxy'),
      ),
    );
  });
}
