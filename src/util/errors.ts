/**
 * Typed errors shared by every layer. Never throw bare strings.
 *
 * - FsError: a POSIX errno; what the fs layer and front ends speak.
 * - StoreError: an object-store failure, with whether a retry may help.
 * - CorruptionError: bytes read back from the store that fail a checksum or a format check.
 * Front ends translate these in exactly one place each (FUSE -errno, HTTP status, JSON-RPC error).
 */

/** Linux errno numbers (asm-generic). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  ENXIO: 6,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  ESTALE: 116,
  ECANCELED: 125,
} as const;

export type Errno = keyof typeof ERRNO;

export function errnoNumber(name: Errno): number {
  return ERRNO[name];
}

/** A POSIX error: what a file-system operation returns to its caller. */
export class FsError extends Error {
  override readonly name = 'FsError';
  readonly errno: Errno;
  constructor(errno: Errno, message?: string, options?: { cause?: unknown }) {
    super(message ? `${errno}: ${message}` : errno, options);
    this.errno = errno;
  }
  get errnoNumber(): number {
    return ERRNO[this.errno];
  }
}

export type StoreErrorKind =
  | 'not_found' // the object (or container) does not exist
  | 'precondition_failed' // conditional create found an existing object
  | 'unavailable' // 5xx, 408, 429, connection reset, timeout: retry may help
  | 'auth' // credentials refused
  | 'bad_request' // the store rejected the request as malformed
  | 'io' // anything else (local disk errors, unexpected responses)
  | 'unsupported'; // the store lacks the feature (e.g. conditional create on Swift's S3 layer)

/** An object-store failure. `retryable` says whether the same call may succeed later. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly kind: StoreErrorKind;
  readonly key: string | undefined;
  readonly status: number | undefined;
  constructor(
    kind: StoreErrorKind,
    message: string,
    options?: { key?: string; status?: number; cause?: unknown },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.kind = kind;
    this.key = options?.key;
    this.status = options?.status;
  }
  get retryable(): boolean {
    return this.kind === 'unavailable';
  }
}

/** Bytes from the store that fail a checksum, a magic number or a bounds check. */
export class CorruptionError extends Error {
  override readonly name = 'CorruptionError';
  readonly key: string | undefined;
  readonly offset: number | undefined;
  constructor(message: string, options?: { key?: string; offset?: number; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.key = options?.key;
    this.offset = options?.offset;
  }
}

/** A failpoint fired: the simulated process "crashed" here. Only tests arm failpoints. */
export class CrashError extends Error {
  override readonly name = 'CrashError';
  readonly failpoint: string;
  constructor(failpoint: string) {
    super(`simulated crash at failpoint ${failpoint}`);
    this.failpoint = failpoint;
  }
}

/** Translate any error into the errno a file-system caller should see. */
export function toErrno(err: unknown): Errno {
  if (err instanceof FsError) return err.errno;
  // Store failures, corruption and bugs all reach a file-system caller as EIO; the message and
  // cause (logged once by the fs layer) say which.
  return 'EIO';
}

/** Wrap anything thrown below the fs layer as an FsError (EIO unless it already has an errno). */
export function asFsError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new FsError(toErrno(err), msg, { cause: err });
}
