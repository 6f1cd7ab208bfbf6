/**
 * SwiftStore against a real Swift all-in-one on loopback (scripts/swift-saio.sh, started by the
 * before hook; if Swift cannot start, the suite fails with the script's output).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { conformanceCases, assertBytes, assertStoreError } from '../integration/objstore-conformance.ts';
import { SwiftStore, parseSwiftUrl } from '../../src/objstore/swift.ts';
import { openStore } from '../../src/objstore/url.ts';
import '../../src/objstore/remote.ts';
import { Random, StoreError } from '../../src/util/index.ts';
import { ensureSwift, purgeInBackground, runPrefix, type LocalSwift } from '../support/swift.ts';

const CONTAINER = 'silt-e2e';

let local: LocalSwift;
let store: SwiftStore;
const prefix = runPrefix('swift');

before(async () => {
  local = await ensureSwift();
  store = await SwiftStore.open({ authUrl: `${local.endpoint}/auth/v1.0`, user: local.user, key: local.key, container: CONTAINER });
});

after(async () => {
  await store?.close();
  if (local !== undefined) purgeInBackground(local, [CONTAINER], prefix);
});

describe('conformance: SwiftStore', () => {
  for (const [i, c] of conformanceCases.entries()) {
    test(c.name, () => c.run(store, `${prefix}case${String(i).padStart(2, '0')}/`));
  }
});

describe('SwiftStore', () => {
  test('store URL: credentials from env or user info, container from the query, via openStore', async () => {
    const env = { SILT_SWIFT_USER: 'test:tester', SILT_SWIFT_KEY: 'testing' };
    const a = parseSwiftUrl(`swift+http://127.0.0.1:${local.port}/auth/v1.0`, env);
    assert.deepEqual([a.user, a.key, a.container, a.authUrl], ['test:tester', 'testing', 'silt', `http://127.0.0.1:${local.port}/auth/v1.0`]);
    const b = parseSwiftUrl('swift+https://u%3Av:k%40y@example.com/auth/v1.0?container=c2', {});
    assert.deepEqual([b.user, b.key, b.container, b.authUrl], ['u:v', 'k@y', 'c2', 'https://example.com/auth/v1.0']);
    assert.throws(() => parseSwiftUrl('swift+http://h:1/auth/v1.0', {}), (e: unknown) => e instanceof StoreError && e.kind === 'auth');

    const saved = { u: process.env['SILT_SWIFT_USER'], k: process.env['SILT_SWIFT_KEY'] };
    process.env['SILT_SWIFT_USER'] = local.user;
    process.env['SILT_SWIFT_KEY'] = local.key;
    try {
      const s = await openStore(`${local.storeUrl}?container=${CONTAINER}`);
      try {
        assert.equal(s.capabilities.conditionalCreate, true);
        await s.put(`${prefix}via-url`, new Uint8Array([1, 2]));
        assertBytes(await store.get(`${prefix}via-url`), new Uint8Array([1, 2]));
      } finally {
        await s.close();
      }
    } finally {
      for (const [k, v] of [['SILT_SWIFT_USER', saved.u], ['SILT_SWIFT_KEY', saved.k]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('a wrong key is an auth error naming the user', async () => {
    await assert.rejects(
      SwiftStore.open({ authUrl: `${local.endpoint}/auth/v1.0`, user: local.user, key: 'wrong', container: CONTAINER }),
      (e: unknown) => e instanceof StoreError && e.kind === 'auth' && /test:tester/.test(e.message) && !e.retryable,
    );
  });

  test('an expired or revoked token is refreshed once and the call goes through', async () => {
    const s = await SwiftStore.open({ authUrl: `${local.endpoint}/auth/v1.0`, user: local.user, key: local.key, container: CONTAINER });
    try {
      const auths = s.stats.auths;
      s.replaceTokenForTest('AUTH_tk00000000000000000000000000000000');
      await s.put(`${prefix}refresh/a`, new Uint8Array([1]));
      assert.equal(s.stats.auths, auths + 1, 'one re-auth');
      s.replaceTokenForTest('AUTH_tkbogus');
      assert.deepEqual(await s.get(`${prefix}refresh/a`), new Uint8Array([1]));
      s.replaceTokenForTest('AUTH_tkbogus');
      assert.equal((await s.list(`${prefix}refresh/`)).objects.length, 1);
      // A streamed put opened with a stale token fails with a retryable error and refreshes the
      // token, so the caller's re-put from its buffer succeeds.
      s.replaceTokenForTest('AUTH_tkbogus');
      const w = await s.putStream(`${prefix}refresh/b`);
      await w.write(new Uint8Array(10));
      await assertStoreError(w.close(), 'unavailable');
      await s.put(`${prefix}refresh/b`, new Uint8Array(10));
      assert.equal(s.stats.auths, auths + 4);
      // Concurrent calls with one stale token authenticate once.
      s.replaceTokenForTest('AUTH_tkbogus');
      await Promise.all(Array.from({ length: 8 }, () => s.head(`${prefix}refresh/a`)));
      assert.equal(s.stats.auths, auths + 5);
    } finally {
      await s.close();
    }
  });

  test('If-None-Match: exactly one of 8 concurrent conditional creates wins', async () => {
    const key = `${prefix}race/lease`;
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put(key, new Uint8Array([i]), { ifNoneMatch: true })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, `winners: ${won.join(',')}`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof StoreError && r.reason.kind === 'precondition_failed', String(r.reason));
    }
    assert.deepEqual(await store.get(key), new Uint8Array([won[0] as number]));
  });

  test('a streamed conditional create of an existing key fails even with a large body', async () => {
    const key = `${prefix}cond-stream`;
    await store.put(key, new Uint8Array([1]));
    const w = await store.putStream(key, { ifNoneMatch: true });
    const chunk = new Random(3).bytes(1 << 20);
    await assertStoreError(
      (async () => {
        for (let i = 0; i < 16; i++) await w.write(chunk);
        await w.close();
      })(),
      'precondition_failed',
    );
    assert.deepEqual(await store.get(key), new Uint8Array([1]));
  });

  test('ranged reads of a streamed object, and list paging with a small limit', async () => {
    const data = new Random(9).bytes(3 * 1024 * 1024 + 17);
    const w = await store.putStream(`${prefix}ranged`);
    for (let off = 0; off < data.length; off += 100_000) await w.write(data.subarray(off, off + 100_000));
    const info = await w.close();
    assert.equal(info.size, data.length);
    const rnd = new Random(10);
    for (let i = 0; i < 20; i++) {
      const offset = rnd.int(data.length + 10);
      const length = rnd.int(200_000);
      assertBytes(await store.get(`${prefix}ranged`, { offset, length }), data.subarray(offset, offset + length), `range ${offset}+${length}`);
    }
  });

  test('an unreachable host is an unavailable error naming host:port, after bounded retries', async () => {
    const t0 = Date.now();
    await assert.rejects(
      SwiftStore.open({ authUrl: 'http://127.0.0.1:9/auth/v1.0', user: 'u', key: 'k', retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } }),
      (e: unknown) => e instanceof StoreError && e.kind === 'unavailable' && e.message.includes('127.0.0.1:9') && /ECONNREFUSED/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5_000);
  });
});
