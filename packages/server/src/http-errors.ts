/**
 * The one place FerryError codes map to HTTP statuses (STYLE.md "Errors", docs/protocol.md
 * section 1), and the handlers that make every failure, fastify's own included, answer
 * `{"error": {"code", "message"}}`.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import { FerryError, errorBody, toFerryError, type ErrorCode } from '@ferry/core';

/** HTTP status of each code that is not a 500. */
export const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  FERRY_ERR_USAGE: 400,
  FERRY_ERR_PROTOCOL_INVALID: 400,
  FERRY_ERR_DIGEST_INVALID: 400,
  FERRY_ERR_REF_INVALID: 400,
  FERRY_ERR_MSGPACK_INVALID: 400,
  FERRY_ERR_ZSTD_CORRUPT: 400,
  FERRY_ERR_SKELETON_INVALID: 400,
  FERRY_ERR_TAR_BAD_HEADER: 400,
  FERRY_ERR_TAR_TRUNCATED: 400,
  FERRY_ERR_IMAGE_BAD_JSON: 400,
  FERRY_ERR_IMAGE_MEDIA_TYPE: 400,
  FERRY_ERR_BUNDLE_INVALID: 400,
  FERRY_ERR_BUNDLE_VERSION: 400,
  FERRY_ERR_KEY_INVALID: 400,
  FERRY_ERR_AUTH_REQUIRED: 401,
  FERRY_ERR_AUTH_FORBIDDEN: 403,
  FERRY_ERR_SIGNATURE_INVALID: 403,
  FERRY_ERR_NOT_FOUND: 404,
  FERRY_ERR_REF_NOT_FOUND: 404,
  FERRY_ERR_TIMEOUT: 408,
  FERRY_ERR_PROTOCOL_REPLAY: 409,
  FERRY_ERR_BUNDLE_ROLLBACK: 409,
  FERRY_ERR_OBJECT_MISSING: 409,
  FERRY_ERR_ALREADY_EXISTS: 409,
  FERRY_ERR_LIMIT_EXCEEDED: 413,
  FERRY_ERR_RANGE_INVALID: 416,
  FERRY_ERR_DIGEST_MISMATCH: 422,
  FERRY_ERR_SIZE_MISMATCH: 422,
  FERRY_ERR_BUNDLE_EXPIRED: 422,
  FERRY_ERR_RATE_LIMITED: 429,
  FERRY_ERR_SERVER_BUSY: 503,
  FERRY_ERR_STORE_LOCKED: 503,
  FERRY_ERR_UPSTREAM_UNAVAILABLE: 503,
  // a relay refusing what its upstream served (the fetcher retries a 502)
  FERRY_ERR_CHUNK_INVALID: 502,
};

/** The HTTP status for a code (anything unlisted is a server-side failure: 500). */
export function httpStatus(code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** fastify's own error codes, as ferry codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'FERRY_ERR_LIMIT_EXCEEDED',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_VALIDATION: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_BAD_URL: 'FERRY_ERR_PROTOCOL_INVALID',
  FST_ERR_ASYNC_CONSTRAINT: 'FERRY_ERR_PROTOCOL_INVALID',
};

/** Any thrown value as a FerryError (fastify's errors included). */
export function asFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const fe = err as FastifyError;
  const mapped = typeof fe?.code === 'string' ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new FerryError(mapped, fe.message, { cause: err });
  // a JSON body that does not parse is a SyntaxError with statusCode 400
  if (err instanceof SyntaxError && (fe as { statusCode?: number }).statusCode === 400) return new FerryError('FERRY_ERR_PROTOCOL_INVALID', `malformed JSON body: ${err.message}`, { cause: err });
  if (fe?.statusCode === 429) return new FerryError('FERRY_ERR_RATE_LIMITED', fe.message, { cause: err });
  return toFerryError(err);
}

/** Seconds a client should wait before retrying a retryable failure. */
const RETRY_AFTER = 5;

/** Installs the error and not-found handlers and the raw client-error answer (timeouts). */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const fe = asFerryError(err);
    const status = httpStatus(fe.code);
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: fe.code, msg: fe.message }, 'request refused');
    if ((status === 429 || status === 503) && !reply.hasHeader('retry-after')) reply.header('retry-after', String(RETRY_AFTER));
    void reply.code(status).type('application/json').send(errorBody(fe));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(new FerryError('FERRY_ERR_NOT_FOUND', `no route ${request.method} ${request.url.slice(0, 200)}`)));
  });
}

/**
 * Answers a request the HTTP parser gave up on (node's request/headers timeout, a malformed
 * request line) with a ferry error body, then closes the socket.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const fe = timeout ? new FerryError('FERRY_ERR_TIMEOUT', 'the request did not arrive within the server timeout') : new FerryError('FERRY_ERR_PROTOCOL_INVALID', `malformed HTTP request (${err.code ?? 'parse error'})`);
  const body = JSON.stringify(errorBody(fe));
  const status = timeout ? '408 Request Timeout' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
