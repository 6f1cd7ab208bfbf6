/**
 * Invariant assertions. Cheap ones are always on: a broken invariant in a storage engine means the
 * process must stop before it writes something wrong. Expensive checks go through `verify`, which
 * runs only when SILT_VERIFY=1 (the test suites set it).
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export const verifyEnabled = process.env['SILT_VERIFY'] === '1';

/** Run an expensive invariant check only in verifying builds (tests). */
export function verify(check: () => void): void {
  if (verifyEnabled) check();
}

export function unreachable(x: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(x)}`);
}
