import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultyStore, MemoryStore, listAll, type FaultEvent, type FaultRates } from '../../src/objstore/index.ts';
import { CrashError, Random, StoreError } from '../../src/util/index.ts';
import { assertStoreError } from '../integration/objstore-conformance.ts';

const instant = async (): Promise<void> => {};

/** A fixed workload; returns what a caller observed, call by call, plus the injected faults. */
async function workload(seed: number, faults: Partial<FaultRates>): Promise<{ outcomes: string[]; events: FaultEvent[] }> {
  const events: FaultEvent[] = [];
  const store = new FaultyStore(new MemoryStore(), { random: new Random(seed), faults, sleep: instant, onFault: (e) => events.push(e) });
  const outcomes: string[] = [];
  const record = async (what: string, p: Promise<unknown>): Promise<void> => {
    try {
      const v = await p;
      outcomes.push(`${what} ok ${v instanceof Uint8Array ? v.length : ''}`);
    } catch (e) {
      outcomes.push(`${what} ${e instanceof StoreError ? e.kind : String(e)}`);
    }
  };
  for (let i = 0; i < 60; i++) {
    await record(`put ${i}`, store.put(`k/${i % 7}`, new Uint8Array(100 + i)));
    await record(`get ${i}`, store.get(`k/${i % 7}`));
    await record(`list ${i}`, store.list('k/').then((p) => p.objects.length));
  }
  return { outcomes, events };
}

const noisy: Partial<FaultRates> = {
  putFailBefore: 0.1,
  putFailAfter: 0.1,
  getFail: 0.1,
  shortRead: 0.2,
  listFail: 0.05,
  listLag: 0.3,
  latency: 0.2,
};

test('the same seed replays the same faults; another seed does not', async () => {
  const a = await workload(42, noisy);
  const b = await workload(42, noisy);
  const c = await workload(43, noisy);
  assert.ok(a.events.length > 20, `expected many faults, got ${a.events.length}`);
  for (const kind of ['fail-before', 'lost-ack', 'fail', 'short-read', 'list-lag', 'latency']) {
    assert.ok(a.events.some((e) => e.fault === kind), `no ${kind} fault injected`);
  }
  assert.deepEqual(b.events, a.events);
  assert.deepEqual(b.outcomes, a.outcomes);
  assert.notDeepEqual(c.events, a.events);
});

test('a lost acknowledgement leaves the object written', async () => {
  const inner = new MemoryStore();
  const store = new FaultyStore(inner, { random: new Random(1), faults: { putFailAfter: 1 } });
  await assertStoreError(store.put('seg/1', new Uint8Array([1, 2, 3])), 'unavailable');
  assert.deepEqual(await inner.get('seg/1'), new Uint8Array([1, 2, 3]));
  // A retried conditional create now meets its own earlier write: the hazard retries must handle.
  await assertStoreError(store.put('lease', new Uint8Array([1]), { ifNoneMatch: true }), 'unavailable');
  store.setFaults({ putFailAfter: 0 });
  await assertStoreError(store.put('lease', new Uint8Array([1]), { ifNoneMatch: true }), 'precondition_failed');
  // Same for a stream's commit.
  store.setFaults({ putFailAfter: 1 });
  const s = await store.putStream('seg/2');
  await s.write(new Uint8Array([4]));
  await assertStoreError(s.close(), 'unavailable');
  assert.deepEqual(await inner.get('seg/2'), new Uint8Array([4]));
});

test('a failure before the write leaves nothing', async () => {
  const inner = new MemoryStore();
  const store = new FaultyStore(inner, { random: new Random(1), faults: { putFailBefore: 1 } });
  await assertStoreError(store.put('a', new Uint8Array([1])), 'unavailable');
  const s = await store.putStream('b');
  await s.write(new Uint8Array([1]));
  await assertStoreError(s.close(), 'unavailable');
  assert.deepEqual(inner.keys(), []);
  assert.equal(store.faultCounts['fail-before'], 2);
});

test('a short read returns a strict prefix of the requested range', async () => {
  const inner = new MemoryStore();
  const data = new Random(9).bytes(1000);
  await inner.put('x', data);
  const store = new FaultyStore(inner, { random: new Random(2), faults: { shortRead: 1 } });
  for (let i = 0; i < 20; i++) {
    const got = await store.get('x', { offset: 100, length: 500 });
    assert.ok(got.length < 500, `short read returned ${got.length}`);
    assert.deepEqual(got, data.slice(100, 100 + got.length));
  }
  // An empty object cannot be cut shorter; the read succeeds.
  await inner.put('empty', new Uint8Array(0));
  assert.equal((await store.get('empty')).length, 0);
});

test('lagging listings omit only recent puts, and listAll still terminates', async () => {
  const inner = new MemoryStore();
  for (let i = 0; i < 50; i++) await inner.put(`old/${i}`, new Uint8Array(1));
  const store = new FaultyStore(inner, { random: new Random(3), faults: { listLag: 1, listLagOps: 30 } });
  for (let i = 0; i < 5; i++) await store.put(`old/new${i}`, new Uint8Array(1));
  const listed: string[] = [];
  for await (const o of listAll(store, 'old/', 7)) listed.push(o.key);
  assert.equal(listed.length, 50, 'every old key listed, every recent key omitted');
  assert.ok(listed.every((k) => !k.startsWith('old/new')));
  // Only new keys on a page: the wrapper skips ahead rather than return an empty page with `next`.
  const page = await store.list('old/new', { limit: 2 });
  assert.deepEqual(page, { objects: [] });
  // Once the window has passed, they show up.
  for (let i = 0; i < 30; i++) await store.head('old/0');
  assert.equal((await store.list('old/new')).objects.length, 5);
});

test('latency goes through the injected sleep', async () => {
  const slept: number[] = [];
  const store = new FaultyStore(new MemoryStore(), {
    random: new Random(4),
    faults: { latency: 1, latencyMaxMs: 30 },
    sleep: async (ms) => void slept.push(ms),
  });
  for (let i = 0; i < 20; i++) await store.head('x');
  assert.ok(slept.length > 10 && slept.every((ms) => ms > 0 && ms <= 30), String(slept));
});

test('after a crash every call throws CrashError and nothing reaches the inner store', async () => {
  const inner = new MemoryStore();
  const store = new FaultyStore(inner, { random: new Random(5) });
  const open = await store.putStream('seg/open');
  await open.write(new Uint8Array([1]));
  store.crashAfterOps(3);
  await store.put('a', new Uint8Array([1]));
  await store.get('a');
  await store.head('a');
  await assert.rejects(store.list(''), CrashError);
  assert.ok(store.crashed);
  inner.resetStats();
  const calls: Array<() => Promise<unknown>> = [
    () => store.put('b', new Uint8Array(1)),
    () => store.get('a'),
    () => store.head('a'),
    () => store.delete('a'),
    () => store.list(''),
    () => store.putStream('c'),
    () => open.write(new Uint8Array(1)),
    () => open.close(),
    () => open.abort(),
  ];
  for (const call of calls) await assert.rejects(call(), CrashError);
  assert.deepEqual(inner.stats, { puts: 0, gets: 0, heads: 0, deletes: 0, lists: 0, bytesPut: 0, bytesGot: 0 });
  assert.deepEqual(inner.keys(), ['a'], 'the abandoned stream never appeared');
  await store.close(); // a no-op after a crash, not an error
});

test('a call in flight when the crash happens does not reach the inner store afterwards', async () => {
  const inner = new MemoryStore();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const store = new FaultyStore(inner, { random: new Random(6), faults: { latency: 1, latencyMaxMs: 10 }, sleep: () => gate });
  const inFlight = store.put('slow', new Uint8Array([1]));
  store.crashNow('test');
  release();
  await assert.rejects(inFlight, (e: unknown) => e instanceof CrashError && e.failpoint === 'test');
  assert.deepEqual(inner.keys(), []);
});

test('the crashing put happened whole or not at all, by a seeded coin', async () => {
  const outcome = async (seed: number): Promise<boolean> => {
    const inner = new MemoryStore();
    const store = new FaultyStore(inner, { random: new Random(seed) });
    store.arm('before-checkpoint-put', { op: 'put', keyPrefix: 'vol/checkpoint' });
    await store.put('vol/log/1', new Uint8Array(10));
    await assert.rejects(store.put('vol/checkpoint/1', new Uint8Array([7, 7])), (e: unknown) => e instanceof CrashError && e.failpoint === 'before-checkpoint-put');
    const got = await inner.head('vol/checkpoint/1');
    if (got !== null) assert.deepEqual(await inner.get('vol/checkpoint/1'), new Uint8Array([7, 7]));
    return got !== null;
  };
  const results: boolean[] = [];
  for (let seed = 0; seed < 16; seed++) results.push(await outcome(seed));
  assert.ok(results.includes(true) && results.includes(false), 'both outcomes occur across seeds');
  for (let seed = 0; seed < 16; seed++) assert.equal(await outcome(seed), results[seed], 'replay');
});

test('a crash at a stream commit applies the whole stream or none of it', async () => {
  const seen = new Set<string>();
  for (let seed = 0; seed < 16; seed++) {
    const inner = new MemoryStore();
    const store = new FaultyStore(inner, { random: new Random(seed) });
    store.arm('mid-segment-put', { op: 'commit' });
    const s = await store.putStream('seg');
    await s.write(new Uint8Array([1, 2]));
    await s.write(new Uint8Array([3]));
    await assert.rejects(s.close(), CrashError);
    const keys = inner.keys();
    if (keys.length > 0) assert.deepEqual(await inner.get('seg'), new Uint8Array([1, 2, 3]));
    seen.add(keys.join());
  }
  assert.deepEqual([...seen].sort(), ['', 'seg']);
});

test('arm with skip fires on the n+1-th matching call; setEnabled(false) stops injection', async () => {
  const inner = new MemoryStore();
  const store = new FaultyStore(inner, { random: new Random(7), faults: { getFail: 1 } });
  store.arm('third-write', { op: 'write', skip: 2 });
  store.setEnabled(false);
  await store.put('x', new Uint8Array(1));
  await store.get('x'); // getFail is 1 but injection is off
  const s = await store.putStream('s');
  for (let i = 0; i < 5; i++) await s.write(new Uint8Array(1)); // armed point does not fire while off
  store.setEnabled(true);
  await assertStoreError(store.get('x'), 'unavailable');
  await s.write(new Uint8Array(1));
  await s.write(new Uint8Array(1));
  await assert.rejects(s.write(new Uint8Array(1)), (e: unknown) => e instanceof CrashError && e.failpoint === 'third-write');
  store.setEnabled(false);
  await assert.rejects(store.head('x'), CrashError, 'a crash stays a crash');
});

test('fault rates are validated', () => {
  const store = new FaultyStore(new MemoryStore(), { random: new Random(1) });
  assert.throws(() => store.setFaults({ getFail: 1.5 }), RangeError);
  assert.throws(() => store.setFaults({ latencyMaxMs: -1 }), RangeError);
  assert.throws(() => store.crashAfterOps(-1), RangeError);
});
