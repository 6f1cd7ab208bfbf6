/**
 * SwiftStore through a fault-injecting HTTP proxy (test/support/faultproxy.ts) in front of a real
 * Swift: 503s, connections reset mid-request and before the answer, truncated and "consistently"
 * truncated responses, delays. Every put and get must still succeed with exact contents (the
 * store's retries), streamed puts that fail are re-put from the caller's buffer (the documented
 * pattern), and a truncated body is never returned as short data. SILT_SEED replays a run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertBytes, assertStoreError } from '../integration/objstore-conformance.ts';
import { SwiftStore } from '../../src/objstore/swift.ts';
import { listAll } from '../../src/objstore/types.ts';
import { Random, StoreError } from '../../src/util/index.ts';
import { FaultProxy } from '../support/faultproxy.ts';
import { ensureSwift, purgeInBackground, runPrefix, type LocalSwift } from '../support/swift.ts';

const CONTAINER = 'silt-e2e-faults';
const seed = process.env['SILT_SEED'] !== undefined ? Number(process.env['SILT_SEED']) : Math.floor(Math.random() * 2 ** 31);
const prefix = runPrefix('faults');
let local: LocalSwift;
const proxies: FaultProxy[] = [];
const stores: SwiftStore[] = [];

async function openVia(proxy: FaultProxy, extra: Partial<Parameters<typeof SwiftStore.open>[0]> = {}): Promise<SwiftStore> {
  const s = await SwiftStore.open({
    authUrl: `${proxy.endpoint}/auth/v1.0`,
    user: local.user,
    key: local.key,
    container: CONTAINER,
    retry: { attempts: 12, baseDelayMs: 5, maxDelayMs: 200 },
    timeouts: { connectMs: 2_000, headersMs: 10_000, bodyIdleMs: 5_000 },
    ...extra,
  });
  stores.push(s);
  return s;
}

before(async () => {
  console.log(`# objstore-faults seed ${seed} (replay: SILT_SEED=${seed})`);
  local = await ensureSwift();
});

after(async () => {
  for (const s of stores) await s.close();
  for (const p of proxies) await p.close();
  if (local !== undefined) purgeInBackground(local, [CONTAINER], prefix);
});

async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe(`SwiftStore through a faulty proxy (seed ${seed})`, () => {
  test('300 objects: puts, streamed puts and conditional creates all land, and read back exactly', async () => {
    const proxy = await FaultProxy.start({
      upstreamHost: local.host,
      upstreamPort: local.port,
      seed,
      // about 18% of requests get a fault
      rates: { error503: 0.04, resetRequest: 0.03, resetResponse: 0.03, truncate: 0.03, truncateConsistent: 0.02, delay: 0.03 },
    });
    proxies.push(proxy);
    const store = await openVia(proxy);
    const rnd = new Random(seed);
    const objects = Array.from({ length: 300 }, (_, i) => {
      const size = rnd.chance(0.1) ? 0 : rnd.chance(0.2) ? 300_000 + rnd.int(300_000) : rnd.int(20_000);
      const how = rnd.pick(['put', 'put', 'stream', 'stream', 'create'] as const);
      return { key: `${prefix}w/${String(i).padStart(4, '0')}`, data: rnd.bytes(size), how };
    });
    let streamRePuts = 0;
    await inParallel(objects, 8, async (o) => {
      if (o.how === 'put') {
        await store.put(o.key, o.data);
      } else if (o.how === 'create') {
        await store.put(o.key, o.data, { ifNoneMatch: true });
      } else {
        try {
          const w = await store.putStream(o.key);
          for (let off = 0; off < o.data.length; off += 64 * 1024) await w.write(o.data.subarray(off, off + 64 * 1024));
          await w.close();
        } catch (err) {
          // A consumed stream is not retried by the store: the caller re-puts from its buffer.
          assert.ok(err instanceof StoreError && err.retryable, `streamed put failed with a non-retryable error: ${String(err)}`);
          streamRePuts++;
          await store.put(o.key, o.data);
        }
      }
    });
    const r2 = new Random(seed ^ 0x5a5a);
    await inParallel(objects, 8, async (o) => {
      assertBytes(await store.get(o.key), o.data, o.key);
      const offset = r2.int(o.data.length + 1);
      const length = r2.int(70_000);
      assertBytes(await store.get(o.key, { offset, length }), o.data.subarray(offset, offset + length), `${o.key} ${offset}+${length}`);
      assert.equal((await store.head(o.key))?.size, o.data.length);
    });
    const listed: string[] = [];
    for await (const info of listAll(store, `${prefix}w/`, 100)) listed.push(info.key);
    assert.deepEqual(listed, objects.map((o) => o.key));
    // Creates that exist now must be refused, even through faults.
    for (const o of objects.filter((x) => x.how === 'create').slice(0, 10)) {
      await assertStoreError(store.put(o.key, new Uint8Array([1]), { ifNoneMatch: true }), 'precondition_failed');
    }
    console.log(`# faults injected: ${JSON.stringify(proxy.counts)}; store retries ${store.stats.retries}, auths ${store.stats.auths}, streamed puts re-put ${streamRePuts}`);
    assert.ok(proxy.totalFaults() >= 50, `only ${proxy.totalFaults()} faults injected`);
    assert.ok(store.stats.retries > 0);
  });

  test('a truncated GET body is an error, never short data', async () => {
    const proxy = await FaultProxy.start({
      upstreamHost: local.host,
      upstreamPort: local.port,
      seed: seed + 1,
      rates: { truncate: 1 },
      applies: (method, path) => method === 'GET' && path.includes('/trunc/'),
    });
    proxies.push(proxy);
    const store = await openVia(proxy, { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const data = new Random(seed).bytes(200_000);
    await store.put(`${prefix}trunc/a`, data);
    await assertStoreError(store.get(`${prefix}trunc/a`), 'unavailable');
    await assertStoreError(store.get(`${prefix}trunc/a`, { offset: 1000, length: 100_000 }), 'unavailable');
    assert.ok(proxy.counts.truncate >= 6, 'every try was truncated');

    // A middlebox that also rewrites Content-Length: the MD5 (whole object) and Content-Range
    // (ranges) checks catch it.
    proxy.rates = { truncateConsistent: 1 };
    await assertStoreError(store.get(`${prefix}trunc/a`), 'unavailable');
    await assertStoreError(store.get(`${prefix}trunc/a`, { offset: 1000, length: 100_000 }), 'unavailable');
    assert.ok(proxy.counts.truncateConsistent >= 6);

    // With half the responses cut, retries get the whole object.
    proxy.rates = { truncate: 0.25, truncateConsistent: 0.25 };
    const patient = await openVia(proxy, { retry: { attempts: 20, baseDelayMs: 1, maxDelayMs: 5 } });
    for (let i = 0; i < 10; i++) {
      assertBytes(await patient.get(`${prefix}trunc/a`), data);
      assertBytes(await patient.get(`${prefix}trunc/a`, { offset: 7, length: 150_000 }), data.subarray(7, 150_007));
    }
  });
});
