/**
 * objstore: the ObjectStore contract (DESIGN.md section 2) and its in-process backends.
 *
 * Invariants every backend keeps, and every layer above may rely on:
 * - An object appears whole or not at all: a reader never sees part of a put, and a ChunkedPut's
 *   object appears only when close() resolves (never after abort() or a failed close()).
 * - Conditional create (put with ifNoneMatch) is atomic where `capabilities.conditionalCreate` is
 *   true: of concurrent creates of one key exactly one wins. Where it is false the call throws
 *   StoreError 'unsupported'; it never silently overwrites.
 * - Listings are in ascending UTF-8 byte order of keys, paged by marker (`after`, `next`).
 * - Every failure is a StoreError whose `kind` says what happened and whose `retryable` says
 *   whether the same call may succeed later; CrashError comes only from FaultyStore in tests.
 * - Bytes are copied at the boundary: callers may reuse buffers they passed in or got back.
 */
export * from './types.ts';
export { MemoryStore, compareKeys, type MemoryStoreStats } from './memory.ts';
export {
  FaultyStore,
  type CrashMatch,
  type FaultEvent,
  type FaultKind,
  type FaultRates,
  type FaultyStoreOptions,
  type StoreOp,
} from './faulty.ts';
export { LocalStore } from './local.ts';
export { InstrumentedStore } from './instrumented.ts';
export { withRetry, backoffMs, defaultRetryOptions, type RetryOptions } from './retry.ts';
export { openStore, registerStoreScheme, dropMemoryStore, type OpenStoreOptions, type StoreOpener } from './url.ts';
// Remote backends register their URL schemes (swift+http:, s3+http:, ...) when imported.
import './remote.ts';
export { SwiftStore } from './swift.ts';
export { S3Store } from './s3.ts';
