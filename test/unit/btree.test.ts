import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssertionError, ByteReader, ByteWriter, CorruptionError } from '../../src/util/index.ts';
import { BTree, bytesValue, decodeNode, u64Key, type KeyCodec, type ValueCodec } from '../../src/btree/index.ts';
import { MemNodeStore, locKey } from './btree-memstore.ts';

const val = (n: number, len = 8): Uint8Array => {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (n * 31 + i) & 0xff;
  if (len >= 4) new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
};

/** Directory-style key: (u64 name hash, name bytes). */
type DirKey = { hash: number; name: string };
const dirKey: KeyCodec<DirKey> = {
  compare: (a, b) => a.hash - b.hash || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  encode: (k, w) => void w.u64(k.hash).str(k.name),
  decode: (r) => ({ hash: r.u64(), name: r.str() }),
};
const dirVal: ValueCodec<{ ino: number; type: number }> = {
  encode: (v, w) => void w.u64(v.ino).u8(v.type),
  decode: (r) => ({ ino: r.u64(), type: r.u8() }),
};

async function collect<K, V>(t: BTree<K, V>, opts?: { from?: K; exclusive?: boolean }): Promise<Array<[K, V]>> {
  const out: Array<[K, V]> = [];
  for await (const e of t.entries(opts)) out.push(e);
  return out;
}

async function flushChecked<K, V>(t: BTree<K, V>, s: MemNodeStore, kc: KeyCodec<K>, vc: ValueCodec<V>) {
  const root = t.flush();
  assert.equal(t.dirty, false);
  await t.check();
  await s.assertLiveIsReachable(root, kc, vc);
  return root;
}

test('empty tree', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 7 });
  assert.equal(t.dirty, true);
  assert.equal(t.root, undefined);
  assert.equal(await t.isEmpty(), true);
  assert.equal(await t.get(1), undefined);
  assert.equal(await t.floor(1), undefined);
  assert.equal(await t.ceil(1), undefined);
  assert.deepEqual(await collect(t), []);
  assert.equal(await t.delete(1), false);
  const root = await flushChecked(t, s, u64Key, bytesValue);
  assert.equal(s.writes, 1);
  assert.equal(s.owners.get(locKey(root)), 7);
  assert.deepEqual(t.flush(), root, 'clean flush returns the same root');
  assert.equal(s.writes, 1, 'clean flush writes nothing');
});

test('sequential and reverse inserts split into a deep tree; lookups', async () => {
  for (const order of ['asc', 'desc', 'random'] as const) {
    const s = new MemNodeStore();
    const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
    const keys = Array.from({ length: 2000 }, (_, i) => i * 2);
    if (order === 'desc') keys.reverse();
    if (order === 'random') keys.sort(() => Math.random() - 0.5);
    for (const k of keys) await t.put(k, val(k));
    await t.check();
    const root = await flushChecked(t, s, u64Key, bytesValue);
    assert.ok(s.writes > 100, `deep tree expected (${s.writes} nodes)`);
    for (let k = -1; k < 4002; k += 7) {
      const got = await t.get(k);
      if (k >= 0 && k % 2 === 0 && k < 4000) assert.deepEqual(got, val(k));
      else assert.equal(got, undefined);
    }
    assert.deepEqual((await t.floor(7))?.[0], 6);
    assert.deepEqual((await t.floor(8))?.[0], 8);
    assert.equal(await t.floor(-0.5), undefined);
    assert.deepEqual((await t.floor(1e9))?.[0], 3998);
    assert.deepEqual((await t.ceil(7))?.[0], 8);
    assert.deepEqual((await t.ceil(8))?.[0], 8);
    assert.equal(await t.ceil(3999), undefined);
    assert.deepEqual((await t.ceil(-5))?.[0], 0);
    const all = await collect(t);
    assert.deepEqual(all.map(([k]) => k), Array.from({ length: 2000 }, (_, i) => i * 2));
    assert.deepEqual((await collect(t, { from: 3990 })).map(([k]) => k), [3990, 3992, 3994, 3996, 3998]);
    assert.deepEqual((await collect(t, { from: 3990, exclusive: true })).map(([k]) => k), [3992, 3994, 3996, 3998]);
    assert.deepEqual((await collect(t, { from: 3991 })).map(([k]) => k), [3992, 3994, 3996, 3998]);
    // Replace values.
    await t.put(100, val(1, 3));
    assert.deepEqual(await t.get(100), val(1, 3));
    await flushChecked(t, s, u64Key, bytesValue);
    assert.notDeepEqual(t.root, root);
  }
});

test('deletes merge nodes down to an empty root leaf; accounting stays exact', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 1500; k++) await t.put(k, val(k));
  await flushChecked(t, s, u64Key, bytesValue);
  const order = Array.from({ length: 1500 }, (_, i) => i).sort(() => Math.random() - 0.5);
  for (let i = 0; i < order.length; i++) {
    assert.equal(await t.delete(order[i]!), true);
    assert.equal(await t.delete(order[i]!), false);
    if (i % 97 === 0) {
      await t.check();
      await flushChecked(t, s, u64Key, bytesValue);
      const n = (await collect(t)).length;
      assert.equal(n, 1500 - i - 1);
    }
  }
  assert.equal(await t.isEmpty(), true);
  await flushChecked(t, s, u64Key, bytesValue);
  assert.equal(s.live.size, 1, 'only the empty root leaf is live');
  assert.equal(t.loadedNodes, 1);
});

test('merges keep nodes reasonably full', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 512 });
  for (let k = 0; k < 3000; k++) await t.put(k, val(k));
  // Delete 9 of every 10 keys: without merging, leaf count would stay the same.
  for (let k = 0; k < 3000; k++) if (k % 10 !== 0) await t.delete(k);
  const root = t.flush();
  await t.check();
  const reach = await s.reachable(root, u64Key, bytesValue);
  // 300 entries of 8+4+8 = 20 bytes = 6000 bytes: about 12-50 nodes of 512 bytes.
  assert.ok(reach.size < 60, `expected merged tree, got ${reach.size} nodes`);
});

test('oversized values (64 KiB) with the default node size', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 0 });
  const big = (k: number) => val(k, 64 * 1024);
  for (let k = 0; k < 40; k++) await t.put(k, k % 3 === 0 ? big(k) : val(k, 100));
  await t.check();
  const root = await flushChecked(t, s, u64Key, bytesValue);
  for (let k = 0; k < 40; k++) assert.deepEqual(await t.get(k), k % 3 === 0 ? big(k) : val(k, 100));
  const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 0 });
  for (let k = 0; k < 40; k++) assert.deepEqual(await t2.get(k), k % 3 === 0 ? big(k) : val(k, 100));
  // Shrink and grow values in place; delete the big ones.
  for (let k = 0; k < 40; k += 3) await t2.put(k, val(k, 10));
  for (let k = 1; k < 40; k += 3) await t2.put(k, big(k));
  await t2.check();
  for (let k = 1; k < 40; k += 3) await t2.delete(k);
  await t2.check();
  await flushChecked(t2, s, u64Key, bytesValue);
  assert.equal((await collect(t2)).length, 40 - 13);
  // A single entry far larger than nodeBytesMax in a small-node tree.
  const t3 = BTree.create(s, u64Key, bytesValue, { owner: 0, nodeBytesMax: 256 });
  for (let k = 0; k < 50; k++) await t3.put(k, val(k, k === 25 ? 5000 : 20));
  await t3.check();
  t3.flush();
  assert.deepEqual(await t3.get(25), val(25, 5000));
});

test('variable-length directory keys', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, dirKey, dirVal, { owner: 9, nodeBytesMax: 1024 });
  const names = Array.from({ length: 3000 }, (_, i) => `file-${i}-${'x'.repeat((i * 37) % 200)}`);
  for (let i = 0; i < names.length; i++) await t.put({ hash: (i * 2654435761) % 1000, name: names[i]! }, { ino: i, type: 1 });
  await t.check();
  await flushChecked(t, s, dirKey, dirVal);
  for (let i = 0; i < names.length; i += 2) assert.equal(await t.delete({ hash: (i * 2654435761) % 1000, name: names[i]! }), true);
  await t.check();
  await flushChecked(t, s, dirKey, dirVal);
  for (let i = 1; i < names.length; i += 2) {
    assert.deepEqual(await t.get({ hash: (i * 2654435761) % 1000, name: names[i]! }), { ino: i, type: 1 });
  }
  // All names with one hash, in name order.
  const h = (1 * 2654435761) % 1000;
  const run = [];
  for await (const [k] of t.entries({ from: { hash: h, name: '' } })) {
    if (k.hash !== h) break;
    run.push(k.name);
  }
  assert.deepEqual(run, [...run].sort());
  assert.ok(run.length >= 1);
});

test('evictClean bounds memory and nodes reload on demand', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 3000; k++) await t.put(k, val(k));
  const before = t.loadedNodes;
  assert.equal(t.evictClean(0), 0, 'dirty nodes are never evicted');
  assert.equal(t.loadedNodes, before);
  await flushChecked(t, s, u64Key, bytesValue);
  const evicted = t.evictClean(10);
  assert.ok(evicted > 0 && t.loadedNodes <= 10, `loaded ${t.loadedNodes}`);
  await t.check();
  assert.equal(t.evictClean(0) >= 0, true);
  assert.equal(t.loadedNodes, 0);
  const reads0 = s.reads;
  assert.deepEqual(await t.get(1234), val(1234));
  assert.ok(s.reads > reads0, 'get reloaded nodes');
  assert.ok(t.loadedNodes >= 2);
  // Dirty a leaf, then evict: the dirty path survives.
  await t.put(77, val(1));
  t.evictClean(0);
  assert.ok(t.loadedNodes >= 2);
  await t.check();
  assert.deepEqual(await t.get(77), val(1));
  await flushChecked(t, s, u64Key, bytesValue);
  // Evict in the middle of an iteration.
  let n = 0;
  let prev = -1;
  for await (const [k] of t.entries()) {
    assert.ok(k > prev);
    prev = k;
    if (n++ % 50 === 0) t.evictClean(3);
  }
  assert.equal(n, 3000);
});

test('old roots stay readable after new flushes (snapshots)', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 500; k++) await t.put(k, val(k));
  const r1 = t.flush();
  for (let k = 0; k < 500; k += 2) await t.delete(k);
  for (let k = 500; k < 800; k++) await t.put(k, val(k));
  const r2 = await flushChecked(t, s, u64Key, bytesValue);
  assert.notDeepEqual(r1, r2);
  const old = BTree.open(s, u64Key, bytesValue, r1, { owner: 1, nodeBytesMax: 256 });
  assert.equal(old.dirty, false);
  assert.deepEqual(old.root, r1);
  assert.deepEqual((await collect(old)).map(([k]) => k), Array.from({ length: 500 }, (_, i) => i));
  await old.check();
  const cur = BTree.open(s, u64Key, bytesValue, r2, { owner: 1, nodeBytesMax: 256 });
  assert.equal((await collect(cur)).length, 250 + 300);
  assert.deepEqual(cur.flush(), r2);
});

test('entries tolerates mutation between steps', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 1; k <= 1000; k++) await t.put(k * 10, val(k));
  const seen: number[] = [];
  for await (const [k] of t.entries()) {
    seen.push(k);
    // Delete the next few keys, insert behind and ahead, flush now and then.
    await t.delete(k + 10);
    await t.put(k - 5, val(0));
    if (k < 9000) await t.put(k + 15, val(0));
    if (seen.length % 17 === 0) t.flush();
  }
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, 'strictly ascending, no repeats');
  assert.ok(seen.includes(10));
  await t.check();
});

test('concurrent operations with slow reads, flush and evict interleaved', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 2000; k++) await t.put(k, val(k));
  const root = t.flush();
  s.readDelayTicks = 2;
  const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 1, nodeBytesMax: 256 });
  const oracle = new Map<number, number>();
  for (let k = 0; k < 2000; k++) oracle.set(k, k);
  const ops: Promise<unknown>[] = [];
  for (let i = 0; i < 600; i++) {
    const k = (i * 7919) % 2500;
    if (i % 3 === 0) {
      oracle.delete(k);
      ops.push(t2.delete(k));
    } else if (i % 3 === 1) {
      oracle.set(k, i);
      ops.push(t2.put(k, val(i)));
    } else {
      ops.push(t2.get(k));
    }
    if (i % 50 === 0) {
      ops.push(
        new Promise<void>((resolve) =>
          setImmediate(() => {
            t2.flush();
            t2.evictClean(5);
            resolve();
          }),
        ),
      );
    }
  }
  // Operations on distinct keys commute, but the same key may be hit twice; only check the final state
  // against the oracle for keys touched once.
  await Promise.all(ops);
  s.readDelayTicks = 0;
  await t2.check();
  const touched = new Map<number, number>();
  for (let i = 0; i < 600; i++) touched.set((i * 7919) % 2500, (touched.get((i * 7919) % 2500) ?? 0) + 1);
  for (const [k, n] of touched) {
    if (n !== 1) continue;
    const want = oracle.get(k);
    const got = await t2.get(k);
    if (want === undefined) assert.equal(got, undefined, `key ${k}`);
    else assert.deepEqual(got, val(want), `key ${k}`);
  }
  await flushChecked(t2, s, u64Key, bytesValue);
});

test('destroy releases every node, including superseded versions', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 1000; k++) await t.put(k, val(k));
  const root = t.flush();
  // A second tree on the same store stays live.
  const other = BTree.create(s, u64Key, bytesValue, { owner: 2 });
  await other.put(1, val(1));
  const otherRoot = other.flush();
  const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 1, nodeBytesMax: 256 });
  t2.evictClean(0);
  for (let k = 0; k < 100; k++) await t2.delete(k * 3);
  await t2.destroy();
  assert.deepEqual([...s.live], [locKey(otherRoot)]);
  await assert.rejects(t2.get(1), AssertionError);
});

test('check detects a broken invariant', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 1024 });
  for (let k = 0; k < 200; k++) await t.put(k, val(k));
  const root = t.flush();
  await t.check();
  // Opened with a smaller node size than it was written with: nodes are over the bound.
  const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 1, nodeBytesMax: 256 });
  await assert.rejects(t2.check(), AssertionError);
  // A leaf with descending keys does not decode.
  const w = new ByteWriter();
  w.u16(0x5442).u8(1).u8(0).u8(0).u8(0).u16(2);
  u64Key.encode(5, w);
  bytesValue.encode(val(5), w);
  u64Key.encode(3, w);
  bytesValue.encode(val(3), w);
  assert.throws(() => decodeNode(w.finish(), u64Key, bytesValue), CorruptionError);
});

test('corrupted node bytes -> CorruptionError', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 300; k++) await t.put(k, val(k));
  const root = t.flush();
  const rootBytes = s.blobs.get(locKey(root))!;
  // Each single-byte corruption of the root either decodes to something valid-looking or throws
  // CorruptionError when used; never anything else.
  for (let i = 0; i < rootBytes.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const saved = rootBytes[i]!;
      rootBytes[i] = saved ^ x;
      const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 1, nodeBytesMax: 256 });
      try {
        await t2.get(150);
        await t2.check();
      } catch (e) {
        assert.ok(e instanceof CorruptionError || e instanceof AssertionError, `byte ${i}: ${String(e)}`);
      }
      rootBytes[i] = saved;
    }
  }
  // Header corruption is always detected.
  rootBytes[0] = rootBytes[0]! ^ 0xff;
  const t3 = BTree.open(s, u64Key, bytesValue, root, { owner: 1 });
  await assert.rejects(t3.get(1), CorruptionError);
  rootBytes[0] = rootBytes[0]! ^ 0xff;
  // Truncation and trailing bytes.
  assert.throws(() => decodeNode(rootBytes.subarray(0, rootBytes.length - 1), u64Key, bytesValue), CorruptionError);
  const longer = new Uint8Array(rootBytes.length + 1);
  longer.set(rootBytes);
  assert.throws(() => decodeNode(longer, u64Key, bytesValue), CorruptionError);
  // Random garbage never escapes as anything but CorruptionError.
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let n = 0; n < 2000; n++) {
    const len = rnd() % 64;
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = rnd();
    if (len >= 4 && n % 2 === 0) {
      b[0] = 0x42;
      b[1] = 0x54;
      b[2] = 1;
      b[3] = n % 4 === 0 ? 0 : 1;
    }
    try {
      decodeNode(b, u64Key, bytesValue);
    } catch (e) {
      assert.ok(e instanceof CorruptionError, String(e));
    }
  }
  // A codec that throws something else on garbage is wrapped.
  const badCodec: KeyCodec<number> = { ...u64Key, decode: (r: ByteReader) => { r.u8(); throw new RangeError('boom'); } };
  assert.throws(() => decodeNode(rootBytes, badCodec, bytesValue), CorruptionError);
});

test('a child from the wrong place is rejected on load', async () => {
  const s = new MemNodeStore();
  const t = BTree.create(s, u64Key, bytesValue, { owner: 1, nodeBytesMax: 256 });
  for (let k = 0; k < 300; k++) await t.put(k, val(k));
  const root = t.flush();
  const rn = decodeNode(s.blobs.get(locKey(root))!, u64Key, bytesValue);
  assert.equal(rn.kind, 'internal');
  if (rn.kind !== 'internal') return;
  // Swap the bytes of the first two children of the root: right level, wrong key range.
  const a = locKey(rn.children[0] as { seg: number; off: number; len: number });
  const b = locKey(rn.children[1] as { seg: number; off: number; len: number });
  const ba = s.blobs.get(a)!;
  s.blobs.set(a, s.blobs.get(b)!);
  s.blobs.set(b, ba);
  const t2 = BTree.open(s, u64Key, bytesValue, root, { owner: 1, nodeBytesMax: 256 });
  await assert.rejects(t2.get(0), CorruptionError);
});
