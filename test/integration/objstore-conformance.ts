/**
 * The object-store conformance table: named cases, each given a store and a fresh key prefix
 * (ending in '/'), so one suite runs against every backend (memory, local, Swift, S3). A case
 * touches only keys under its prefix and leaves its objects behind; the runner cleans up.
 *
 * Cases assert only what DESIGN.md section 2 and src/objstore/types.ts promise, nothing a
 * particular backend happens to do (e.g. a page may be shorter than `limit`, `next` may be set on
 * a final full page).
 */
import assert from 'node:assert/strict';
import { Random, StoreError } from '../../src/util/index.ts';
import { listAll, type ObjectStore } from '../../src/objstore/types.ts';

export interface ConformanceCase {
  name: string;
  run(store: ObjectStore, prefix: string): Promise<void>;
}

/** Byte comparison that stays fast on 20 MiB and says where two arrays first differ. */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  if (Buffer.compare(actual, expected) === 0) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  assert.fail(`${what}: lengths ${actual.length} vs ${expected.length}, first difference at byte ${i}`);
}

export async function assertStoreError(p: Promise<unknown>, kind: StoreError['kind']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError(${kind}), got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    return true;
  });
}

/** Byte order of the UTF-8 encodings: the order every backend must list in. */
export function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function keysUnder(store: ObjectStore, prefix: string, pageSize = 1000): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listAll(store, prefix, pageSize)) keys.push(o.key);
  return keys;
}

/** Run `fn` over items with at most `width` in flight (remote stores are slow one by one). */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

const MiB = 1024 * 1024;

export const conformanceCases: ConformanceCase[] = [
  {
    name: 'put then get returns the same bytes; buffers are not shared with the caller',
    async run(store, prefix) {
      const key = `${prefix}obj`;
      const data = new Random(1).bytes(4096);
      const expected = data.slice();
      const info = await store.put(key, data);
      assert.equal(info.key, key);
      assert.equal(info.size, 4096);
      data.fill(0); // the caller reuses its buffer: the stored object must not change
      const got = await store.get(key);
      assertBytes(got, expected);
      got.fill(0); // nor may mutating what get returned
      assertBytes(await store.get(key), expected, 'second get');
    },
  },
  {
    name: 'a plain put over an existing key replaces it whole (idempotent retry)',
    async run(store, prefix) {
      const key = `${prefix}obj`;
      await store.put(key, new Random(2).bytes(1000));
      const second = new Random(3).bytes(300);
      await store.put(key, second);
      assertBytes(await store.get(key), second);
      assert.equal((await store.head(key))?.size, 300);
    },
  },
  {
    name: 'ranged get: inside, clipped at the end, starting at or past the end, zero length',
    async run(store, prefix) {
      const key = `${prefix}obj`;
      const data = new Random(4).bytes(1000);
      await store.put(key, data);
      assertBytes(await store.get(key, { offset: 10, length: 20 }), data.subarray(10, 30), 'inside');
      assertBytes(await store.get(key, { offset: 0, length: 1000 }), data, 'exact whole');
      assertBytes(await store.get(key, { offset: 990, length: 100 }), data.subarray(990), 'clipped');
      assertBytes(await store.get(key, { offset: 999, length: 1 }), data.subarray(999), 'last byte');
      assert.equal((await store.get(key, { offset: 1000, length: 10 })).length, 0, 'starting at the end');
      assert.equal((await store.get(key, { offset: 5000, length: 10 })).length, 0, 'starting past the end');
      assert.equal((await store.get(key, { offset: 5, length: 0 })).length, 0, 'zero length');
    },
  },
  {
    name: 'getv returns the same bytes as get, in pieces, for every range (and not_found for an absent key)',
    async run(store, prefix) {
      if (!store.getv) return; // optional: callers fall back to get
      const key = `${prefix}obj`;
      const data = new Random(41).bytes(3 * MiB + 123);
      await store.put(key, data);
      const whole = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);
      for (const [offset, length] of [[0, data.length], [10, 20], [MiB - 7, 2 * MiB + 11], [data.length - 100, 1000], [data.length, 10], [5, 0]] as const) {
        const parts = await store.getv(key, { offset, length });
        assertBytes(whole(parts), await store.get(key, { offset, length }), `getv ${offset}+${length}`);
        for (const p of parts) assert.ok(p.length > 0, 'no empty pieces');
      }
      assertBytes(whole(await store.getv(key)), data, 'whole object');
      await assertStoreError(store.getv(`${prefix}absent`, { offset: 0, length: 10 }), 'not_found');
    },
  },
  {
    name: 'head and get of a present and an absent key',
    async run(store, prefix) {
      const key = `${prefix}present`;
      await store.put(key, new Uint8Array([1, 2, 3]));
      const info = await store.head(key);
      assert.ok(info !== null);
      assert.equal(info.key, key);
      assert.equal(info.size, 3);
      assert.equal(await store.head(`${prefix}absent`), null);
      await assertStoreError(store.get(`${prefix}absent`), 'not_found');
      await assertStoreError(store.get(`${prefix}absent`, { offset: 0, length: 1 }), 'not_found');
      // A key that is a prefix of an existing key is still absent.
      assert.equal(await store.head(`${prefix}pres`), null);
    },
  },
  {
    name: 'delete removes the object and is idempotent',
    async run(store, prefix) {
      const key = `${prefix}obj`;
      const keep = `${prefix}objx`;
      await store.put(key, new Uint8Array([9]));
      await store.put(keep, new Uint8Array([8]));
      await store.delete(key);
      assert.equal(await store.head(key), null);
      await assertStoreError(store.get(key), 'not_found');
      await store.delete(key);
      await store.delete(`${prefix}never-existed`);
      assert.deepEqual(await keysUnder(store, prefix), [keep], 'delete touched only its key');
    },
  },
  {
    name: 'conditional create: the second create fails precondition_failed and the first bytes stay',
    async run(store, prefix) {
      const key = `${prefix}lease`;
      const first = new Random(5).bytes(100);
      if (!store.capabilities.conditionalCreate) {
        await assertStoreError(store.put(key, first, { ifNoneMatch: true }), 'unsupported');
        return;
      }
      await store.put(key, first, { ifNoneMatch: true });
      await assertStoreError(store.put(key, new Random(6).bytes(100), { ifNoneMatch: true }), 'precondition_failed');
      assertBytes(await store.get(key), first);
      // A streamed conditional create of the same key fails too, at open or at close.
      await assertStoreError(
        (async () => {
          const s = await store.putStream(key, { ifNoneMatch: true });
          await s.write(new Uint8Array(10));
          await s.close();
        })(),
        'precondition_failed',
      );
      assertBytes(await store.get(key), first, 'after a streamed attempt');
      // After a delete the key can be created again.
      await store.delete(key);
      await store.put(key, new Uint8Array([7]), { ifNoneMatch: true });
      assertBytes(await store.get(key), new Uint8Array([7]));
    },
  },
  {
    name: 'putStream: the object is visible only after close, whole',
    async run(store, prefix) {
      const key = `${prefix}seg`;
      const rnd = new Random(7);
      const parts = [rnd.bytes(1), rnd.bytes(65536), rnd.bytes(0), rnd.bytes(12345)];
      const expected = Buffer.concat(parts);
      const s = await store.putStream(key);
      const reused = new Uint8Array(70000);
      for (const part of parts) {
        reused.set(part);
        await s.write(reused.subarray(0, part.length));
        reused.fill(0xee); // the caller reuses its buffer once write resolves
        assert.equal(await store.head(key), null, 'invisible while open');
      }
      assert.deepEqual(await keysUnder(store, prefix), [], 'not listed while open');
      const info = await s.close();
      assert.equal(info.key, key);
      assert.equal(info.size, expected.length);
      assertBytes(await store.get(key), expected);
      assert.deepEqual(await keysUnder(store, prefix), [key]);
    },
  },
  {
    name: 'putStream: abort leaves nothing, and an earlier version stays',
    async run(store, prefix) {
      const key = `${prefix}seg`;
      const s = await store.putStream(key);
      await s.write(new Uint8Array(1000).fill(1));
      await s.abort();
      assert.equal(await store.head(key), null);
      assert.deepEqual(await keysUnder(store, prefix), []);

      const old = new Uint8Array([1, 2, 3]);
      await store.put(key, old);
      const t = await store.putStream(key);
      await t.write(new Uint8Array(50));
      await t.abort();
      assertBytes(await store.get(key), old, 'aborted overwrite');
      assert.deepEqual(await keysUnder(store, prefix), [key]);
    },
  },
  {
    name: 'list pages through 2,500 keys in order with limit and after',
    async run(store, prefix) {
      const keys = Array.from({ length: 2500 }, (_, i) => `${prefix}many/k${String(i).padStart(5, '0')}`);
      await inParallel(keys, 32, (k) => store.put(k, new Uint8Array([k.length & 0xff])));
      // Neighbours that sort right before and after the listed prefix must not leak into it.
      await store.put(`${prefix}many-`, new Uint8Array(1));
      await store.put(`${prefix}many0`, new Uint8Array(1));
      prefix = `${prefix}many/`;

      const seen: string[] = [];
      let after: string | undefined;
      for (let calls = 0; ; calls++) {
        assert.ok(calls < 5, 'paging did not terminate');
        const page = await store.list(prefix, after === undefined ? { limit: 1000 } : { after, limit: 1000 });
        assert.ok(page.objects.length <= 1000, `page of ${page.objects.length} exceeds limit`);
        for (const o of page.objects) {
          assert.equal(o.size, 1);
          seen.push(o.key);
        }
        if (page.next === undefined) break;
        assert.equal(page.next, page.objects[page.objects.length - 1]?.key, 'next is the last key of the page');
        after = page.next;
      }
      assert.deepEqual(seen, keys);
      assert.deepEqual(await keysUnder(store, prefix, 999), keys, 'listAll');

      const mid = await store.list(prefix, { after: keys[1234], limit: 10 });
      assert.deepEqual(mid.objects.map((o) => o.key), keys.slice(1235, 1245), 'after an existing key');
      const between = await store.list(prefix, { after: `${keys[1234]}x`, limit: 3 });
      assert.deepEqual(between.objects.map((o) => o.key), keys.slice(1235, 1238), 'after a non-key');
      const end = await store.list(prefix, { after: keys[2499] });
      assert.deepEqual(end.objects, [], 'after the last key');
      assert.equal(end.next, undefined);
    },
  },
  {
    name: 'list with prefixes that end mid-name',
    async run(store, p) {
      const keys = [
        'vol/lo',
        'vol/log/0001',
        'vol/log/0002',
        'vol/log/0010',
        'vol/log/0100',
        'vol/log/1000',
        'vol/log0',
        'vol/logx/a',
        'vol/d/ab-x',
        'vol/d/ab/c',
        'vol/d/ab/d/e',
        'vol/d/abc',
      ].map((k) => p + k);
      for (const k of keys) await store.put(k, new TextEncoder().encode(k));
      const under = async (q: string): Promise<string[]> => (await keysUnder(store, p + q)).map((k) => k.slice(p.length));
      assert.deepEqual(await under('vol/log/00'), ['vol/log/0001', 'vol/log/0002', 'vol/log/0010']);
      assert.deepEqual(await under('vol/log/0'), ['vol/log/0001', 'vol/log/0002', 'vol/log/0010', 'vol/log/0100']);
      assert.deepEqual(await under('vol/log/0001'), ['vol/log/0001'], 'prefix equal to a key');
      assert.deepEqual(await under('vol/log/00010'), []);
      assert.deepEqual(await under('vol/log'), [
        'vol/log/0001',
        'vol/log/0002',
        'vol/log/0010',
        'vol/log/0100',
        'vol/log/1000',
        'vol/log0',
        'vol/logx/a',
      ]);
      // '-' (0x2d) < '/' (0x2f) < 'c' (0x63): keys in and under a "directory" interleave by bytes.
      assert.deepEqual(await under('vol/d/ab'), ['vol/d/ab-x', 'vol/d/ab/c', 'vol/d/ab/d/e', 'vol/d/abc']);
      assert.deepEqual(await under('vol/l'), keys.filter((k) => k.startsWith(p + 'vol/l')).map((k) => k.slice(p.length)).sort(utf8Order));
      assert.deepEqual(await under('vol/nothing'), []);
      assert.deepEqual(await under('vol/log/00x'), []);
      // Paging inside a mid-name prefix.
      const page = await store.list(p + 'vol/log/00', { limit: 2 });
      assert.deepEqual(page.objects.map((o) => o.key), [p + 'vol/log/0001', p + 'vol/log/0002']);
      assert.ok(page.next !== undefined);
      const rest = await store.list(p + 'vol/log/00', { after: page.next, limit: 2 });
      assert.deepEqual(rest.objects.map((o) => o.key), [p + 'vol/log/0010']);
      // The whole table, listed from the case prefix, is in UTF-8 byte order.
      assert.deepEqual(await keysUnder(store, p), [...keys].sort(utf8Order));
    },
  },
  {
    name: 'keys with spaces, punctuation and unicode round-trip and list in UTF-8 byte order',
    async run(store, p) {
      const names = [
        'sp ace/two  spaces',
        'pct/a%20b+c&d=e',
        'q/what?x#frag',
        'uni/ü ñ é',
        'uni/日本語/ファイル',
        'uni/😀 grin',
        // U+FFEE sorts before U+1F600 in UTF-8 but after it in UTF-16 code units.
        'ord/\uffee',
        'ord/😀',
        'ord/z',
        'ord/\u00ff',
        'tab/a\tb',
        'back\\slash',
      ];
      for (const [i, n] of names.entries()) await store.put(p + n, new Uint8Array([i]));
      for (const [i, n] of names.entries()) {
        assertBytes(await store.get(p + n), new Uint8Array([i]), n);
        assert.equal((await store.head(p + n))?.key, p + n);
      }
      const listed = await keysUnder(store, p);
      assert.deepEqual(listed, names.map((n) => p + n).sort(utf8Order));
      assert.deepEqual(
        (await keysUnder(store, p + 'ord/')).map((k) => k.slice(p.length)),
        ['ord/z', 'ord/\u00ff', 'ord/\uffee', 'ord/😀'],
      );
      assert.deepEqual(await keysUnder(store, p + 'uni/日本'), [p + 'uni/日本語/ファイル']);
    },
  },
  {
    name: 'a 20 MiB object by put and by putStream',
    async run(store, prefix) {
      const data = new Random(8).bytes(20 * MiB);
      await store.put(`${prefix}big`, data);
      assert.equal((await store.head(`${prefix}big`))?.size, 20 * MiB);
      assertBytes(await store.get(`${prefix}big`), data, 'put');
      assertBytes(await store.get(`${prefix}big`, { offset: 20 * MiB - 100, length: 1000 }), data.subarray(20 * MiB - 100), 'tail');

      const s = await store.putStream(`${prefix}streamed`);
      for (let off = 0; off < data.length; off += MiB) await s.write(data.subarray(off, off + MiB));
      assert.equal((await s.close()).size, 20 * MiB);
      assertBytes(await store.get(`${prefix}streamed`), data, 'putStream');
      assertBytes(await store.get(`${prefix}streamed`, { offset: 7 * MiB + 3, length: MiB }), data.subarray(7 * MiB + 3, 8 * MiB + 3), 'middle');
    },
  },
  {
    name: 'a 0-byte object by put and by an empty putStream',
    async run(store, prefix) {
      await store.put(`${prefix}empty`, new Uint8Array(0));
      assert.equal((await store.head(`${prefix}empty`))?.size, 0);
      assert.equal((await store.get(`${prefix}empty`)).length, 0);
      assert.equal((await store.get(`${prefix}empty`, { offset: 0, length: 10 })).length, 0);
      const s = await store.putStream(`${prefix}empty-stream`);
      assert.equal((await s.close()).size, 0);
      assert.equal((await store.head(`${prefix}empty-stream`))?.size, 0);
      const listed = (await store.list(prefix)).objects;
      assert.deepEqual(listed.map((o) => [o.key, o.size]), [
        [`${prefix}empty`, 0],
        [`${prefix}empty-stream`, 0],
      ]);
    },
  },
];
