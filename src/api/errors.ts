// Where errors become HTTP responses, and the only place that does: every
// error is answered with the ARM envelope {"error":{code,message,target,details}}.
// Services' LabforgeErrors name their status; errors of the lower layers
// (image store, disk formats, compute, operations) carry only a code, and
// httpStatus() picks the status from the code, else from the error's class.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ComputeError } from '../compute/errors.js';
import { DISK_ERROR_CODES, DiskFormatError } from '../diskformat/errors.js';
import { LabforgeError } from '../errors.js';
import { ImageStoreError } from '../imagestore/errors.js';
import { DomainError } from '../lib/errors.js';
import { exhaustionMessage, exhaustionOf } from '../lib/exhaustion.js';
import { WorkerError } from '../operations/errors.js';

/** Statuses of lower-layer codes that are not their class's default. */
const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  // A request the caller can fix: a bad name, region, user name or disk image.
  InvalidParameter: 400,
  ...Object.fromEntries(DISK_ERROR_CODES.map((code) => [code, 400])),
  DiskSizeMismatch: 400,
  // A VM the host does not have.
  ResourceNotFound: 404,
  // A VM whose disk file is gone: reimage or delete it first.
  DiskMissing: 409,
  // labforge misused qemu-img itself.
  InternalError: 500,
  // The host ran out of something: a full disk is 507, the rest 503 (retry once it is fixed).
  InsufficientStorage: 507,
  TooManyOpenFiles: 503,
  OutOfMemory: 503,
};

/** The status of a lower-layer code not in STATUS_BY_CODE, per class: a refused disk is the uploader's to fix, anything else the server's. */
const STATUS_BY_CLASS: ReadonlyArray<readonly [new (...args: never[]) => DomainError, number]> = [
  [DiskFormatError, 400],
  [ImageStoreError, 500],
  [ComputeError, 500],
  [WorkerError, 500],
];

/** The HTTP status an error is answered with. */
export function httpStatus(err: DomainError): number {
  if (err instanceof LabforgeError) return err.status;
  return STATUS_BY_CODE[err.code] ?? STATUS_BY_CLASS.find(([cls]) => err instanceof cls)?.[1] ?? 500;
}

export function envelope(code: string, message: string, target?: string, details?: unknown[]) {
  return { error: { code, message, ...(target ? { target } : {}), ...(details?.length ? { details } : {}) } };
}

/** Fastify's error handler: every error, labforge's own and Fastify's, as an ARM error envelope. */
/** Fastify's error handler; `metadataPath` names where the metadata store lives (its SQLite file), said when it is full. */
export async function sendError(err: FastifyError | DomainError, req: FastifyRequest, reply: FastifyReply, metadataPath?: string) {
  if (err instanceof DomainError) return reply.status(httpStatus(err)).send({ error: err.toJSON() });
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = fe.validation.map((v) => {
      const path = `${v.instancePath || ''}`.replace(/^\//, '').replace(/\//g, '.');
      const missing = (v.params as { missingProperty?: string })?.missingProperty;
      const target = [fe.validationContext === 'body' ? '' : fe.validationContext, path, missing].filter(Boolean).join('.');
      return { code: 'InvalidParameter', target, message: `${target || 'request'} ${v.message}` };
    });
    return reply
      .status(400)
      .send(envelope('InvalidRequestContent', `The request content is not valid: ${details.map((d) => d.message).join('; ')}.`, details[0]?.target, details));
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.statusCode === 400 && err instanceof SyntaxError)) {
    return reply.status(400).send(envelope('InvalidRequestContent', `The request body is not valid JSON: ${fe.message}. Check quotes, commas and brackets.`));
  }
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return reply
      .status(400)
      .send(envelope('InvalidRequestContent', 'The request has a JSON content type but an empty body. Send a JSON object, or drop the Content-Type header.'));
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply
      .status(415)
      .send(envelope('UnsupportedMediaType', `The content type '${req.headers['content-type']}' is not supported. Send application/json.`));
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.status(413).send(envelope('RequestEntityTooLarge', 'The request body is larger than 4 MiB.'));
  }
  const exhausted = exhaustionOf(err);
  if (exhausted) {
    req.log.error(err);
    const message = await exhaustionMessage(exhausted, 'The metadata store could not save the change', metadataPath ?? 'the database');
    return reply.status(exhausted === 'InsufficientStorage' ? 507 : 503).send(envelope(exhausted, message));
  }
  const dbCode = String((err as { code?: unknown }).code ?? '');
  if (['23505', '23503', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_FOREIGNKEY'].includes(dbCode)) {
    return reply
      .status(409)
      .send(
        envelope(
          'Conflict',
          'Another request created, changed or deleted the same resource at the same moment, and this one lost the race. Read the resource again and retry.',
        ),
      );
  }
  if (fe.statusCode && fe.statusCode < 500) return reply.status(fe.statusCode).send(envelope('BadRequest', fe.message));
  req.log.error(err);
  return reply
    .status(500)
    .send(envelope('InternalServerError', `The server hit an unexpected error. Retry; if it persists, report request id ${req.id} from the server log.`));
}
