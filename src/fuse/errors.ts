/**
 * The one place where the FUSE front end turns a thrown value into the errno the kernel sees.
 * FsError -> its errno; Interrupted (a request the kernel interrupted) -> EINTR; anything else is a
 * bug or an unexpected failure below: EIO, and the caller logs it.
 */
import { FsError } from '../util/index.ts';

/** EINTR is not in util's ERRNO table (no fs operation returns it); only interrupts produce it. */
export const EINTR = 4;
export const ENOSYS = 38;
export const EIO = 5;
export const EINVAL = 22;

/** The reason an interrupted request's AbortSignal carries. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor() {
    super('interrupted by the kernel');
  }
}

/** A positive errno, and whether the failure was expected (an FsError or an interrupt). */
export function errnoFor(err: unknown): { errno: number; expected: boolean } {
  if (err instanceof FsError) return { errno: err.errnoNumber, expected: true };
  if (err instanceof Interrupted) return { errno: EINTR, expected: true };
  return { errno: EIO, expected: false };
}
