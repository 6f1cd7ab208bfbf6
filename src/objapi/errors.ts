/**
 * The one place where failures become HTTP statuses. Handlers throw FsError (from the fs layer) or
 * ApiError (a protocol-level refusal they decide themselves); `toApiError` turns anything into an
 * ApiError, and the dialects (Swift text, S3 XML) only render what it returns.
 */
import { FsError, StoreError, type Errno } from '../util/index.ts';

/** An HTTP-level failure: status, S3 error code and a message for people. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    /** S3 error code (the Swift dialect shows only the status and message). */
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** What an ENOENT means depends on what was being looked for. */
export type Subject = 'bucket' | 'object' | 'upload';

const NOT_FOUND: Record<Subject, string> = { bucket: 'NoSuchBucket', object: 'NoSuchKey', upload: 'NoSuchUpload' };

/** errno -> [status, S3 code]. Anything not listed is a 500. */
const ERRNO_STATUS: Partial<Record<Errno, readonly [number, string]>> = {
  ENOENT: [404, 'NoSuchKey'],
  ENODATA: [404, 'NoSuchKey'],
  EEXIST: [409, 'Conflict'],
  ENOTEMPTY: [409, 'Conflict'],
  ENOTDIR: [409, 'Conflict'],
  EISDIR: [409, 'Conflict'],
  EMLINK: [409, 'Conflict'],
  EACCES: [403, 'AccessDenied'],
  EPERM: [403, 'AccessDenied'],
  ENAMETOOLONG: [400, 'KeyTooLongError'],
  EINVAL: [400, 'InvalidArgument'],
  ELOOP: [400, 'InvalidArgument'],
  E2BIG: [400, 'MetadataTooLarge'],
  ERANGE: [400, 'MetadataTooLarge'],
  EFBIG: [413, 'EntityTooLarge'],
  ENOSPC: [507, 'InsufficientStorage'],
  EOPNOTSUPP: [501, 'NotImplemented'],
  ENOSYS: [501, 'NotImplemented'],
  // A halted volume (a store failure mid-update) refuses writes until it is reopened.
  EROFS: [503, 'ServiceUnavailable'],
  EBUSY: [503, 'SlowDown'],
  EAGAIN: [503, 'SlowDown'],
  ETIMEDOUT: [503, 'ServiceUnavailable'],
  ESTALE: [503, 'ServiceUnavailable'],
};

/** The store failure behind an error, if any (FsError EIO carries it as its cause). */
function storeCause(err: unknown): StoreError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof StoreError) return e;
  }
  return undefined;
}

/**
 * Map any failure to the ApiError a client sees. ENOENT 404, EEXIST/ENOTEMPTY 409, EACCES/EPERM
 * 403, ENAMETOOLONG/EINVAL 400, EIO 503 when the store said a retry may help, else 500.
 */
export function toApiError(err: unknown, subject: Subject = 'object'): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof FsError) {
    if (err.errno === 'ENOENT' || err.errno === 'ENODATA') return new ApiError(404, NOT_FOUND[subject], `not found (${err.message})`);
    if (err.errno === 'EIO') {
      const cause = storeCause(err);
      if (cause?.retryable) return new ApiError(503, 'ServiceUnavailable', 'the object store is unavailable; retry later', { 'retry-after': '1' });
      return new ApiError(500, 'InternalError', 'I/O error in the volume');
    }
    const m = ERRNO_STATUS[err.errno];
    if (m) return new ApiError(m[0], m[1], err.message);
    return new ApiError(500, 'InternalError', err.message);
  }
  const sc = storeCause(err);
  if (sc?.retryable) return new ApiError(503, 'ServiceUnavailable', 'the object store is unavailable; retry later', { 'retry-after': '1' });
  return new ApiError(500, 'InternalError', 'internal error');
}

/** Shorthands for the refusals handlers make themselves. */
export const badRequest = (message: string, code = 'InvalidArgument'): ApiError => new ApiError(400, code, message);
export const notFound = (subject: Subject, message: string): ApiError => new ApiError(404, NOT_FOUND[subject], message);
