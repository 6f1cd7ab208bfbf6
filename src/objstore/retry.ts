import { Random, StoreError } from '../util/index.ts';

/**
 * Retry an idempotent store call with capped exponential backoff and full jitter (DESIGN.md
 * section 2). Only a StoreError whose `retryable` is true (kind 'unavailable') is retried; any
 * other error, including CrashError and a non-retryable StoreError, surfaces at once. After the
 * last attempt the last error surfaces unchanged.
 *
 * Full jitter (delay uniform in [0, min(maxDelayMs, baseDelayMs * 2^(retry-1))]) spreads clients
 * that failed together, so they do not come back together.
 *
 * Never wrap a call that consumes a stream (ChunkedPut): it cannot be replayed.
 */

export interface RetryOptions {
  /** Total tries, the first included (1 = no retry). */
  attempts: number;
  /** Upper bound of the first backoff. */
  baseDelayMs: number;
  /** Cap on any single backoff. */
  maxDelayMs: number;
  /** Jitter source; seeded in simulations. Default Math.random. */
  random?: Random;
  /** Default a real setTimeout; simulations pass their clock's sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Called before each backoff with the error, the attempt that failed (1-based) and the delay. */
  onRetry?: (err: StoreError, attempt: number, delayMs: number) => void;
}

/** Written out so callers see what they get: about 1.5 s of backoff in total at most. */
export const defaultRetryOptions: Readonly<Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>> = {
  attempts: 5,
  baseDelayMs: 50,
  maxDelayMs: 1_000,
};

/** The backoff before retry number `retry` (1-based) for a uniform draw `u` in [0, 1). */
export function backoffMs(retry: number, baseDelayMs: number, maxDelayMs: number, u: number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(retry - 1, 52));
  return Math.floor(u * (ceiling + 1));
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: Partial<RetryOptions> = {}): Promise<T> {
  const { attempts, baseDelayMs, maxDelayMs } = { ...defaultRetryOptions, ...stripUndefined(options) };
  if (!Number.isSafeInteger(attempts) || attempts < 1) throw new RangeError(`retry attempts ${attempts}`);
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= 0)) throw new RangeError(`retry delays ${baseDelayMs}/${maxDelayMs}`);
  const uniform = options.random !== undefined ? () => (options.random as Random).next() : Math.random;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof StoreError) || !err.retryable || attempt >= attempts) throw err;
      const delayMs = backoffMs(attempt, baseDelayMs, maxDelayMs, uniform());
      options.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs);
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
