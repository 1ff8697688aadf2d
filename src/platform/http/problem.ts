import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type DomainErrorKind, type FieldError } from '../../domain/errors.ts';
import { DuplicateEventIdError, WrongExpectedVersionError } from '../eventstore/types.ts';
import { RateLimitedError } from './rate-limit.ts';

/** An RFC 9457 problem document; `code` is stable and `errors` names each wrong field. */
export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: readonly FieldError[];
  currentVersion?: number;
};

const statusByKind: Record<DomainErrorKind, number> = { invalid: 400, not_found: 404, conflict: 409, rule: 422, unauthenticated: 401, forbidden: 403 };

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function problem(status: number, code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return {
    type: `/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: titles[status] ?? 'Error',
    status,
    detail,
    code,
    ...extra,
  };
}

/** Fastify's own errors, under codes of ours that will not change with Fastify. */
const codeByFastifyCode: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'EMPTY_BODY',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'NOT_MULTIPART',
  FST_FILES_LIMIT: 'TOO_MANY_FILES',
  FST_PARTS_LIMIT: 'TOO_MANY_PARTS',
  FST_ERR_BAD_URL: 'MALFORMED_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'PARAMETER_TOO_LONG',
};

/** Where Fastify's message repeats the request's path back, a message of ours instead. */
const detailByFastifyCode: Record<string, string> = {
  FST_ERR_BAD_URL: 'the path is not valid percent-encoded UTF-8',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is longer than 100 characters',
};

type AjvError = { instancePath: string; message?: string; params: Record<string, unknown> };

/** `/applicant/taxCode` → `applicant.taxCode`; a missing or unexpected property is named too. */
function fieldPath(error: AjvError, context: string | undefined): string {
  const segments = error.instancePath.split('/').filter(Boolean);
  const named = error.params.missingProperty ?? error.params.additionalProperty;
  if (typeof named === 'string') segments.push(named);
  if (segments.length === 0) return context ?? 'body';
  return context && context !== 'body' ? `${context}.${segments.join('.')}` : segments.join('.');
}

function validationMessage(error: AjvError): string {
  if (error.params.additionalProperty !== undefined) return 'is not a known field';
  if (error.params.missingProperty !== undefined) return 'is required';
  return error.message ?? 'is invalid';
}

export function toProblem(error: unknown): Problem {
  if (error instanceof DomainError) {
    return problem(statusByKind[error.kind], error.code, error.message, error.errors.length > 0 ? { errors: error.errors } : {});
  }
  if (error instanceof WrongExpectedVersionError) {
    return problem(409, 'VERSION_CONFLICT', `${error.streamId} is at version ${error.currentVersion}, not ${String(error.expected)}`, {
      currentVersion: error.currentVersion,
    });
  }
  if (error instanceof DuplicateEventIdError) return problem(409, error.code, error.message);
  if (error instanceof RateLimitedError) return problem(429, error.code, error.message);
  const fastifyError = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (Array.isArray(fastifyError.validation)) {
    const errors = fastifyError.validation.map((e) => ({ path: fieldPath(e, fastifyError.validationContext), message: validationMessage(e) }));
    // One error per field: a union, for one, fails once per branch.
    const unique = [...new Map(errors.reverse().map((e) => [e.path, e])).values()].reverse();
    return problem(400, 'INVALID_INPUT', unique.map((e) => `${e.path} ${e.message}`).join('; '), { errors: unique });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return problem(status, codeByFastifyCode[fastifyError.code] ?? 'BAD_REQUEST', detailByFastifyCode[fastifyError.code] ?? fastifyError.message);
  }
  return problem(500, 'INTERNAL', 'the request could not be completed; it has been logged');
}

/** A refusal is about this request only, and may name what it carried: no cache keeps it, on public routes too. */
function sendBody(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.status(body.status).type('application/problem+json').header('cache-control', 'no-store').send(body);
}

export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const body = toProblem(error);
  if (error instanceof RateLimitedError) reply.header('retry-after', error.retryAfterSeconds);
  if (body.status >= 500) request.log.error({ err: error, correlationId: request.id }, 'request failed');
  return sendBody(reply, body);
}

export function notFoundProblem(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendBody(reply, problem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
}
