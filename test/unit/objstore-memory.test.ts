import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, compareKeys, listAll } from '../../src/objstore/index.ts';
import { StoreError } from '../../src/util/index.ts';
import { assertStoreError, utf8Order } from '../integration/objstore-conformance.ts';

test('stats count calls and bytes; keys() lists in order', async () => {
  const s = new MemoryStore();
  await s.put('b', new Uint8Array(10));
  await s.put('a', new Uint8Array(5));
  const stream = await s.putStream('c');
  await stream.write(new Uint8Array(7));
  await stream.close();
  await s.get('a', { offset: 1, length: 100 });
  await s.head('zz');
  await s.list('');
  await s.delete('b');
  await s.delete('missing');
  assert.deepEqual(s.stats, { puts: 3, gets: 1, heads: 1, deletes: 2, lists: 1, bytesPut: 22, bytesGot: 4 });
  assert.deepEqual(s.keys(), ['a', 'c']);
  s.resetStats();
  assert.equal(s.stats.puts, 0);
});

test('a failed conditional create is not counted as a put and changes nothing', async () => {
  const s = new MemoryStore();
  await s.put('k', new Uint8Array([1]));
  await assertStoreError(s.put('k', new Uint8Array([2]), { ifNoneMatch: true }), 'precondition_failed');
  assert.equal(s.stats.puts, 1);
  assert.deepEqual(await s.get('k'), new Uint8Array([1]));
});

test('a conditional stream loses to a create that lands while it is open', async () => {
  const s = new MemoryStore();
  const stream = await s.putStream('k', { ifNoneMatch: true });
  await stream.write(new Uint8Array([2]));
  await s.put('k', new Uint8Array([1]), { ifNoneMatch: true });
  await assertStoreError(stream.close(), 'precondition_failed');
  assert.deepEqual(await s.get('k'), new Uint8Array([1]));
});

test('snapshot and clone are independent copies', async () => {
  const s = new MemoryStore();
  await s.put('x', new Uint8Array([1, 2]));
  const snap = s.snapshot();
  const copy = s.clone();
  (snap.get('x') as Uint8Array)[0] = 99;
  await s.put('y', new Uint8Array([3]));
  await copy.delete('x');
  assert.deepEqual(await s.get('x'), new Uint8Array([1, 2]));
  assert.deepEqual(s.keys(), ['x', 'y']);
  assert.deepEqual([...snap.keys()], ['x']);
  assert.deepEqual(copy.keys(), []);
});

test('stream calls after close or abort are rejected', async () => {
  const s = new MemoryStore();
  const a = await s.putStream('a');
  await a.close();
  await assertStoreError(a.write(new Uint8Array(1)), 'bad_request');
  await assertStoreError(a.close(), 'bad_request');
  const b = await s.putStream('b');
  await b.abort();
  await assertStoreError(b.write(new Uint8Array(1)), 'bad_request');
  await assertStoreError(b.close(), 'bad_request');
  assert.deepEqual(s.keys(), ['a']);
});

test('bad keys, ranges and limits are bad_request', async () => {
  const s = new MemoryStore();
  await assertStoreError(s.put('', new Uint8Array(1)), 'bad_request');
  await assertStoreError(s.put('lone\ud800', new Uint8Array(1)), 'bad_request');
  await s.put('k', new Uint8Array(4));
  await assertStoreError(s.get('k', { offset: -1, length: 1 }), 'bad_request');
  await assertStoreError(s.get('k', { offset: 0, length: 1.5 }), 'bad_request');
  await assertStoreError(s.list('', { limit: 0 }), 'bad_request');
  await assert.rejects(s.get('nope'), (e: unknown) => e instanceof StoreError && e.kind === 'not_found' && !e.retryable);
});

test('compareKeys agrees with UTF-8 byte order on random strings', () => {
  const alphabet = ['a', 'z', '/', '-', '\u00ff', '\u0800', '\ud7ff', '\ue000', '\uffee', '\uffff', '😀', '𝄞', '\u{10ffff}'];
  let x = 12345;
  const rnd = (n: number): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
  for (let i = 0; i < 2000; i++) {
    const mk = (): string => Array.from({ length: rnd(4) }, () => alphabet[rnd(alphabet.length)]).join('');
    const a = mk();
    const b = mk();
    assert.equal(Math.sign(compareKeys(a, b)), Math.sign(utf8Order(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

test('listing pages by marker, including a marker below the prefix', async () => {
  const s = new MemoryStore();
  for (const k of ['a', 'p/1', 'p/2', 'p/3', 'q']) await s.put(k, new Uint8Array(0));
  assert.deepEqual((await s.list('p/', { after: 'a' })).objects.map((o) => o.key), ['p/1', 'p/2', 'p/3']);
  const first = await s.list('p/', { limit: 2 });
  assert.equal(first.next, 'p/2');
  const second = await s.list('p/', { after: first.next, limit: 2 });
  assert.deepEqual(second.objects.map((o) => o.key), ['p/3']);
  assert.equal(second.next, undefined, 'exact: nothing more under the prefix');
  const all: string[] = [];
  for await (const o of listAll(s, '', 1)) all.push(o.key);
  assert.deepEqual(all, ['a', 'p/1', 'p/2', 'p/3', 'q']);
});
