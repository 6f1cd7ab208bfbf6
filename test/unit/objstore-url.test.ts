import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalStore, MemoryStore, dropMemoryStore, openStore, registerStoreScheme, type ObjectStore } from '../../src/objstore/index.ts';
import { StoreError } from '../../src/util/index.ts';
import { assertStoreError } from '../integration/objstore-conformance.ts';

let base = '';
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'silt-url-'));
});
after(() => rm(base, { recursive: true, force: true }));

test('file: a missing directory is not_found with a hint, unless create is set', async () => {
  const dir = join(base, 'new store');
  await assert.rejects(openStore(`file:${dir}`), (e: unknown) => {
    assert.ok(e instanceof StoreError && e.kind === 'not_found');
    assert.equal(e.message, `no store at ${dir}: run silt mkfs`);
    return true;
  });
  await assert.rejects(stat(dir), { code: 'ENOENT' }, 'opening did not create it');
  const store = await openStore(`file:${dir}`, { create: true });
  assert.ok(store instanceof LocalStore);
  assert.equal(store.root, dir);
  assert.ok((await stat(dir)).isDirectory());
});

test('file: absolute, relative and file:/// forms reach the same directory', async () => {
  const dir = join(base, 'same dir');
  const first = await openStore(`file:${dir}`, { create: true });
  await first.put('k', new Uint8Array([42]));
  const forms = [
    `file:${dir}`,
    `file:${relative(process.cwd(), dir)}`,
    pathToFileURL(dir).href, // file:///.../same%20dir
    `file://localhost${pathToFileURL(dir).pathname}`,
  ];
  for (const url of forms) {
    const store = (await openStore(url)) as LocalStore;
    assert.equal(store.root, dir, url);
    assert.deepEqual(await store.get('k'), new Uint8Array([42]), url);
  }
});

test('file: a path that is a file, an empty path or a remote host is refused', async () => {
  const file = join(base, 'plain-file');
  await writeFile(file, 'x');
  await assertStoreError(openStore(`file:${file}`), 'bad_request');
  await assertStoreError(openStore('file:'), 'bad_request');
  await assertStoreError(openStore('file://otherhost/srv/silt'), 'bad_request');
});

test('memory:NAME is one store per name within the process', async () => {
  const a = await openStore('memory:url-test-a');
  await a.put('k', new Uint8Array([1]));
  const again = await openStore('memory:url-test-a');
  assert.equal(again, a);
  assert.ok(a instanceof MemoryStore);
  await a.close(); // closing does not lose the contents for the next opener
  assert.deepEqual(await (await openStore('memory:url-test-a')).get('k'), new Uint8Array([1]));
  const b = await openStore('memory:url-test-b');
  assert.notEqual(b, a);
  assert.equal(await b.head('k'), null);
  dropMemoryStore('url-test-a');
  assert.notEqual(await openStore('memory:url-test-a'), a);
});

test('an unknown scheme is bad_request listing the supported forms', async () => {
  for (const url of ['ftp://x/y', '/srv/silt', 'relative/path', '']) {
    await assert.rejects(openStore(url), (e: unknown) => {
      assert.ok(e instanceof StoreError && e.kind === 'bad_request', String(e));
      assert.match(e.message, /file:PATH/);
      assert.match(e.message, /memory:NAME/);
      return true;
    });
  }
});

test('registerStoreScheme adds a scheme other modules can open, case-insensitively', async () => {
  const seen: string[] = [];
  const opened = new MemoryStore('fake');
  const opener = async (url: string): Promise<ObjectStore> => {
    seen.push(url);
    return opened;
  };
  registerStoreScheme('fake+http', opener, 'fake+http://HOST/BUCKET');
  registerStoreScheme('fake+http:', opener); // same opener again: harmless
  assert.equal(await openStore('fake+http://h/b'), opened);
  assert.equal(await openStore('FAKE+HTTP://h/c'), opened);
  assert.deepEqual(seen, ['fake+http://h/b', 'FAKE+HTTP://h/c']);
  assert.throws(() => registerStoreScheme('fake+http:', async () => opened), RangeError, 'a different opener');
  assert.throws(() => registerStoreScheme('no spaces:', opener), RangeError);
  await assert.rejects(openStore('nope:x'), (e: unknown) => e instanceof StoreError && e.message.includes('fake+http://HOST/BUCKET'));
});
