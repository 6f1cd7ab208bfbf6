import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore, MemoryStore, listAll } from '../../src/objstore/index.ts';
import { Random, StoreError } from '../../src/util/index.ts';

const execFileAsync = promisify(execFile);
import { assertStoreError } from '../integration/objstore-conformance.ts';

let root = '';
let store: LocalStore;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'silt-local-'));
  store = new LocalStore(root);
});
after(() => rm(root, { recursive: true, force: true }));

/** Every file name under a directory, recursively, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

test('key a/b/c is the file ROOT/a/b/c, and another instance on the root sees it', async () => {
  await store.put('t1/a/b/c', new TextEncoder().encode('hello'));
  assert.equal(await readFile(join(root, 't1/a/b/c'), 'utf8'), 'hello');
  assert.deepEqual(await filesUnder(join(root, 't1')), ['a/b/c'], 'no temp file left behind');
  const again = new LocalStore(root);
  assert.deepEqual(await again.get('t1/a/b/c'), new TextEncoder().encode('hello'));
});

test('keys that could escape the root or collide with temp files are bad_request everywhere', async () => {
  // A name no one else uses beside the store's root, so the escape check below is about us alone.
  const x = `silt-escape-${process.pid}-${Date.now()}`;
  const bad = [`../${x}`, `a/../../${x}`, '..', '/etc/passwd', 'a//b', 'a/', '/', 'a/./b', '.', 'a\0b', 'x/.tmp-1234', '', 'a'.repeat(256)];
  for (const key of bad) {
    const calls = [
      () => store.put(key, new Uint8Array(1)),
      () => store.put(key, new Uint8Array(1), { ifNoneMatch: true }),
      () => store.putStream(key),
      () => store.get(key),
      () => store.head(key),
      () => store.delete(key),
    ];
    for (const call of calls) await assertStoreError(call(), 'bad_request');
  }
  for (const prefix of ['../', 'a/../../', '/abs/', 'a//b']) await assertStoreError(store.list(prefix), 'bad_request');
  assert.deepEqual(await readdir(join(root, '..')).then((names) => names.includes(x)), false, 'nothing written beside the root');
});

test('temp files are never listed, not even while a stream is open or after a crash', async () => {
  await store.put('t2/seg/1', new Uint8Array([1]));
  const open = await store.putStream('t2/seg/2');
  await open.write(new Uint8Array(100));
  // A temp file a crashed process left behind.
  await writeFile(join(root, 't2/seg/.tmp-deadbeef'), 'junk');
  await mkdir(join(root, 't2/.tmp-dir'), { recursive: true });
  await writeFile(join(root, 't2/.tmp-dir/x'), 'junk');
  const files = await filesUnder(join(root, 't2'));
  assert.ok(files.filter((f) => f.includes('.tmp-')).length >= 2, `temp files exist on disk: ${files}`);
  for (const prefix of ['t2/', 't2/seg/', 't2/seg/.', 't2/.tmp-', '']) {
    const keys: string[] = [];
    for await (const o of listAll(store, prefix)) keys.push(o.key);
    assert.ok(!keys.some((k) => k.includes('.tmp-')), `listing ${prefix} showed ${keys}`);
  }
  assert.deepEqual((await store.list('t2/')).objects.map((o) => o.key), ['t2/seg/1']);
  await open.close();
  assert.deepEqual((await store.list('t2/seg/')).objects.map((o) => o.key), ['t2/seg/1', 't2/seg/2']);
  assert.deepEqual(await filesUnder(join(root, 't2/seg')), ['.tmp-deadbeef', '1', '2'], 'close removed its temp file');
});

test('concurrent conditional creates of one key: exactly one wins, its bytes are stored', async () => {
  for (let round = 0; round < 5; round++) {
    const key = `t3/lease-${round}`;
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        i % 2 === 0
          ? store.put(key, new Uint8Array(1000).fill(i), { ifNoneMatch: true })
          : (async () => {
              const s = await store.putStream(key, { ifNoneMatch: true });
              await s.write(new Uint8Array(1000).fill(i));
              return s.close();
            })(),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof StoreError && r.reason.kind === 'precondition_failed', String(r.reason));
    }
    assert.deepEqual(await store.get(key), new Uint8Array(1000).fill(winners[0] as number));
  }
  assert.deepEqual((await filesUnder(join(root, 't3'))).filter((f) => f.includes('.tmp-')), [], 'losers cleaned up');
});

test('an object key and a "directory" of other keys cannot coexist: bad_request, nothing changed', async () => {
  await store.put('t4/a/b', new Uint8Array([1]));
  await assertStoreError(store.put('t4/a', new Uint8Array([2])), 'bad_request');
  await assertStoreError(store.put('t4/a', new Uint8Array([2]), { ifNoneMatch: true }), 'bad_request');
  await assertStoreError(store.put('t4/a/b/c', new Uint8Array([3])), 'bad_request');
  assert.equal(await store.head('t4/a'), null, 'a directory is not an object');
  await assertStoreError(store.get('t4/a'), 'not_found');
  await store.delete('t4/a'); // not an object: nothing to delete
  assert.equal(await store.head('t4/a/b/c'), null);
  assert.deepEqual(await store.get('t4/a/b'), new Uint8Array([1]));
  assert.deepEqual(await filesUnder(join(root, 't4')), ['a/b']);
});

test('an aborted stream rejects further calls and leaves no file', async () => {
  const s = await store.putStream('t5/seg');
  await s.write(new Uint8Array(10));
  await s.abort();
  await assertStoreError(s.write(new Uint8Array(1)), 'bad_request');
  await assertStoreError(s.close(), 'bad_request');
  assert.equal(await store.head('t5/seg'), null);
  assert.deepEqual(await filesUnder(join(root, 't5')), []);
});

test('writes issued without awaiting land in call order', async () => {
  const s = await store.putStream('t6/seg');
  const parts = Array.from({ length: 50 }, (_, i) => new Uint8Array(1 + i * 37).fill(i));
  await Promise.all(parts.map((p) => s.write(p)));
  await s.close();
  assert.deepEqual(await store.get('t6/seg'), new Uint8Array(Buffer.concat(parts)));
});

/**
 * Make a directory refuse new entries: chmod for ordinary users, `chattr +i` for root (which
 * ignores permissions). Returns an undo function, or null when neither works here.
 */
async function makeUnwritable(dir: string): Promise<(() => Promise<void>) | null> {
  if (process.getuid?.() !== 0) {
    await chmod(dir, 0o500);
    return () => chmod(dir, 0o700);
  }
  try {
    await execFileAsync('chattr', ['+i', dir]);
    return async () => void (await execFileAsync('chattr', ['-i', dir]));
  } catch {
    return null;
  }
}

test('filesystem errors map to io with the path and cause', async (t) => {
  const dir = join(root, 't7/ro');
  await mkdir(dir, { recursive: true });
  const undo = await makeUnwritable(dir);
  if (undo === null) return t.skip('cannot make a directory unwritable here');
  try {
    for (const call of [() => store.put('t7/ro/x', new Uint8Array(1)), () => store.putStream('t7/ro/y')]) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.kind === 'io', String(e));
        assert.match(e.message, /EACCES|EPERM/);
        assert.ok(e.message.includes(dir), e.message);
        assert.ok(e.cause instanceof Error);
        return true;
      });
    }
  } finally {
    await undo();
  }
});

test('listing agrees with MemoryStore for random nested keys, prefixes, markers and limits', async () => {
  const rnd = new Random(2024);
  const alphabet = ['a', 'b', '-', '0', 'é', '😀', '\uffee'];
  const segment = (): string => Array.from({ length: 1 + rnd.int(3) }, () => rnd.pick(alphabet)).join('');
  const keys = new Set<string>();
  while (keys.size < 300) {
    const key = Array.from({ length: 1 + rnd.int(3) }, segment).join('/');
    // Skip keys that would be both an object and a directory of another key (LocalStore refuses those).
    const clash = [...keys].some((k) => k.startsWith(`${key}/`) || key.startsWith(`${k}/`));
    if (!clash) keys.add(key);
  }
  const memory = new MemoryStore();
  // A root of its own: prefixes cut inside 't8' must not reach the other tests' keys.
  await mkdir(join(root, 'own-root'));
  const local = new LocalStore(join(root, 'own-root'));
  for (const k of keys) {
    await local.put(`t8/${k}`, new Uint8Array(k.length));
    await memory.put(`t8/${k}`, new Uint8Array(k.length));
  }
  const sorted = [...keys].map((k) => `t8/${k}`);
  let compared = 0;
  for (let i = 0; i < 300; i++) {
    const base = rnd.pick(sorted);
    const prefix = base.slice(0, rnd.int(base.length + 1));
    const marker = rnd.chance(0.5) ? rnd.pick(sorted).slice(0, 3 + rnd.int(8)) : undefined;
    const options = { limit: 1 + rnd.int(20), ...(marker !== undefined ? { after: marker } : {}) };
    let expected;
    try {
      expected = await memory.list(prefix, options);
    } catch {
      continue;
    }
    let got;
    try {
      got = await local.list(prefix, options);
    } catch (e) {
      // Prefixes the local layout cannot express (a '//' or a trailing '/.') are refused, never mis-listed.
      assert.ok(e instanceof StoreError && e.kind === 'bad_request', String(e));
      continue;
    }
    assert.deepEqual(got, { ...expected, objects: expected.objects.map(({ key, size }) => ({ key, size })) }, `list(${prefix}, ${JSON.stringify(options)})`);
    compared++;
  }
  assert.ok(compared > 250, `only ${compared} listings compared`);
});
