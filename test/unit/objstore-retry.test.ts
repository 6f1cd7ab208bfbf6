import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, withRetry } from '../../src/objstore/retry.ts';
import { CrashError, Random, StoreError } from '../../src/util/index.ts';

const unavailable = (): StoreError => new StoreError('unavailable', '503');

test('retries retryable errors until the call succeeds', async () => {
  const slept: number[] = [];
  const retries: number[] = [];
  let calls = 0;
  const got = await withRetry(
    async (attempt) => {
      calls++;
      assert.equal(attempt, calls);
      if (calls < 4) throw unavailable();
      return 'ok';
    },
    { attempts: 5, baseDelayMs: 10, maxDelayMs: 1000, random: new Random(1), sleep: async (ms) => void slept.push(ms), onRetry: (_e, n) => retries.push(n) },
  );
  assert.equal(got, 'ok');
  assert.equal(calls, 4);
  assert.deepEqual(retries, [1, 2, 3]);
  assert.equal(slept.length, 3);
  slept.forEach((ms, i) => assert.ok(ms >= 0 && ms <= 10 * 2 ** i, `delay ${i} = ${ms}`));
});

test('gives up after `attempts` tries and surfaces the last error', async () => {
  let calls = 0;
  const last = new StoreError('unavailable', 'last');
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw calls === 3 ? last : unavailable();
    }, { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} }),
    (e: unknown) => e === last,
  );
  assert.equal(calls, 3);
});

test('does not retry non-retryable StoreErrors, CrashError or other errors', async () => {
  for (const err of [new StoreError('not_found', 'x'), new StoreError('precondition_failed', 'x'), new CrashError('fp'), new TypeError('bug')]) {
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw err;
      }, { attempts: 5, sleep: async () => {} }),
      (e: unknown) => e === err,
    );
    assert.equal(calls, 1, `${err.name} was retried`);
  }
});

test('backoff is capped exponential with full jitter', () => {
  assert.equal(backoffMs(1, 50, 2000, 0), 0);
  assert.equal(backoffMs(1, 50, 2000, 0.999999), 50);
  assert.equal(backoffMs(3, 50, 2000, 0.999999), 200);
  assert.equal(backoffMs(10, 50, 2000, 0.999999), 2000, 'capped');
  assert.equal(backoffMs(2000, 50, 2000, 0.999999), 2000, 'no overflow');
  // Seeded jitter is replayable and actually spread.
  const draw = (seed: number): number[] => {
    const r = new Random(seed);
    return Array.from({ length: 50 }, () => backoffMs(8, 50, 2000, r.next()));
  };
  assert.deepEqual(draw(5), draw(5));
  assert.ok(new Set(draw(5)).size > 30);
});

test('rejects nonsense options', async () => {
  await assert.rejects(withRetry(async () => 1, { attempts: 0 }), RangeError);
});
