/**
 * The extent-move primitive (Inodes.moveExtents) and SiltFileSystem.coalesce built on it: content
 * is joined without copying data (PUT bytes of the commit are metadata only), live-byte accounting
 * stays exact (fsck recounts it), the sources are freed, and every refusal leaves all unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/objstore/index.ts';
import { O_RDONLY, openFileSystem, rootIdentity as root, type Identity, type SiltFileSystem } from '../../src/fs/index.ts';
import { cleanSegments } from '../../src/inode/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { FsError } from '../../src/util/index.ts';
import { CountingStore } from '../../bench/counting-store.ts';

const ROOT_INO = 1;
const alice: Identity = { uid: 1000, gid: 1000, groups: [] };
const bob: Identity = { uid: 1001, gid: 1001, groups: [] };

async function newFs(store: CountingStore | MemoryStore = new MemoryStore()): Promise<SiltFileSystem> {
  return openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: { segmentBytesMax: 256 * 1024 } });
}

async function put(fs: SiltFileSystem, who: Identity, dir: number, name: string, data: Uint8Array, at = 0): Promise<number> {
  const a = await fs.create(who, dir, name, 0o644);
  if (data.length > 0) await fs.write(who, a.ino, at, data);
  return a.ino;
}

async function readAll(fs: SiltFileSystem, ino: number): Promise<Buffer> {
  const a = await fs.getattr(root, ino);
  return Buffer.from(await fs.read(root, ino, 0, a.size + 1));
}

async function fsckClean(store: CountingStore | MemoryStore): Promise<void> {
  const r = await checkVolume(store, 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(r.problems));
}

async function expectErrno(p: Promise<unknown>, errno: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof FsError && e.errno === errno, `expected ${errno}`);
}

async function liveBytes(fs: SiltFileSystem): Promise<number> {
  let n = 0;
  for await (const [, s] of fs.volume.segments()) n += s.liveBytes;
  return n;
}

test('coalesce joins files (holes, odd sizes, a non-empty target) and frees the sources; fsck clean, survives reopen', async () => {
  const store = new MemoryStore();
  const fs = await newFs(store);
  const head = randomBytes(1000);
  const a = randomBytes(200_001); // several data records, not a multiple of the record size
  const b = Buffer.concat([Buffer.alloc(70_000), randomBytes(5000)]); // a hole, then data
  const c = randomBytes(1);
  const dst = await put(fs, root, ROOT_INO, 'dst', head);
  const ia = await put(fs, root, ROOT_INO, 'a', a);
  const ib = await put(fs, root, ROOT_INO, 'b', b.subarray(70_000), 70_000);
  await put(fs, root, ROOT_INO, 'c', c);
  await fs.sync();
  const before = await liveBytes(fs);

  const attr = await fs.coalesce(root, dst, [
    { parent: ROOT_INO, name: 'a', ino: ia },
    { parent: ROOT_INO, name: 'b', ino: ib },
    { parent: ROOT_INO, name: 'c' },
  ]);
  const want = Buffer.concat([head, a, b, c]);
  assert.equal(attr.size, want.length);
  assert.ok((await readAll(fs, dst)).equals(want), 'content is the concatenation');
  const i = await fs.inodes.get(dst);
  assert.equal(i.allocated, head.length + a.length + 5000 + c.length, 'the hole stays a hole');
  assert.equal(attr.blocks, Math.ceil(i.allocated / 512));
  for (const n of ['a', 'b', 'c']) await expectErrno(fs.lookup(root, ROOT_INO, n), 'ENOENT');
  await expectErrno(fs.getattr(root, ia), 'ENOENT');
  await fs.sync();
  // The same records are referenced once each: live data bytes did not change (tree nodes may).
  const after = await liveBytes(fs);
  assert.ok(Math.abs(after - before) < 16 * 1024, `live bytes ${before} -> ${after}`);
  await fsckClean(store);
  await fs.close();

  const again = await openFileSystem({ store, flushIntervalMs: 0, gcIntervalMs: 0 });
  const d = await again.lookup(root, ROOT_INO, 'dst');
  assert.ok((await readAll(again, d.ino)).equals(want), 'content after reopen');
  await again.close();
});

test('coalesce of 8 MiB writes only metadata to the store', async () => {
  const store = new CountingStore(new MemoryStore());
  const fs = await newFs(store);
  const parts = [randomBytes(3 * 1024 * 1024), randomBytes(3 * 1024 * 1024), randomBytes(2 * 1024 * 1024)];
  const dst = await put(fs, root, ROOT_INO, 'obj', Buffer.alloc(0));
  const h = createHash('md5');
  for (const [n, p] of parts.entries()) {
    await put(fs, root, ROOT_INO, `part${n}`, p);
    h.update(p);
  }
  await fs.sync();
  const put0 = store.putBytes;
  await fs.coalesce(root, dst, parts.map((_, n) => ({ parent: ROOT_INO, name: `part${n}` })));
  await fs.sync();
  const written = store.putBytes - put0;
  assert.ok(written < 256 * 1024, `coalescing 8 MiB put ${written} bytes`);
  console.log(`coalesce of 8 MiB: ${written} bytes PUT`);
  assert.equal(createHash('md5').update(await readAll(fs, dst)).digest('hex'), h.digest('hex'));
  await fsckClean(store);
  await fs.close();
});

test('coalesce refuses what POSIX would not allow, changing nothing', async () => {
  const store = new MemoryStore();
  const fs = await newFs(store);
  const dst = await put(fs, root, ROOT_INO, 'dst', Buffer.from('x'));
  const src = await put(fs, root, ROOT_INO, 'src', Buffer.from('yy'));
  const linked = await put(fs, root, ROOT_INO, 'linked', Buffer.from('z'));
  await fs.link(root, linked, ROOT_INO, 'linked2');
  const dir = await fs.mkdir(root, ROOT_INO, 'dir', 0o755);
  const s = (name: string, ino?: number) => ({ parent: ROOT_INO, name, ...(ino === undefined ? {} : { ino }) });

  await expectErrno(fs.coalesce(root, dir.ino, [s('src')]), 'EISDIR');
  await expectErrno(fs.coalesce(root, dst, [s('dir')]), 'EISDIR');
  await expectErrno(fs.coalesce(root, dst, [s('nope')]), 'ENOENT');
  await expectErrno(fs.coalesce(root, dst, [s('src', dst)]), 'ESTALE');
  await expectErrno(fs.coalesce(root, dst, [s('dst')]), 'EINVAL');
  await expectErrno(fs.coalesce(root, dst, [s('src'), s('src')]), 'EINVAL');
  await expectErrno(fs.coalesce(root, dst, [s('linked')]), 'EMLINK');
  await expectErrno(fs.coalesce(root, dst, [s('..')]), 'EISDIR');
  await expectErrno(fs.coalesce(root, dst, [{ parent: dst, name: 'x' }]), 'ENOTDIR');
  // a good source before a bad one: nothing moves
  await expectErrno(fs.coalesce(root, dst, [s('src'), s('nope')]), 'ENOENT');

  // permissions: alice owns a directory with her files; bob may neither write her target nor unlink her source
  await fs.setattr(root, ROOT_INO, { mode: 0o1777 });
  const home = await fs.mkdir(alice, ROOT_INO, 'home', 0o755);
  const mine = await put(fs, alice, home.ino, 'mine', Buffer.from('m'));
  await put(fs, alice, home.ino, 'part', Buffer.from('p'));
  const bobs = await put(fs, bob, ROOT_INO, 'bobs', Buffer.from('b'));
  await put(fs, alice, ROOT_INO, 'alices', Buffer.from('a'));
  await expectErrno(fs.coalesce(bob, mine, [{ parent: ROOT_INO, name: 'bobs' }]), 'EACCES');
  await expectErrno(fs.coalesce(bob, bobs, [{ parent: home.ino, name: 'part' }]), 'EACCES');
  await expectErrno(fs.coalesce(bob, bobs, [{ parent: ROOT_INO, name: 'alices' }]), 'EPERM'); // sticky /

  assert.equal((await readAll(fs, dst)).toString(), 'x');
  assert.equal((await readAll(fs, src)).toString(), 'yy');
  assert.equal((await readAll(fs, mine)).toString(), 'm');
  assert.equal((await readAll(fs, bobs)).toString(), 'b');
  await fs.coalesce(alice, mine, [{ parent: home.ino, name: 'part' }]);
  assert.equal((await readAll(fs, mine)).toString(), 'mp');
  await fs.sync();
  await fsckClean(store);
  await fs.close();
});

test('a handle open on a source sees it empty; its release frees it; the cleaner and gc keep moved data', async () => {
  const store = new MemoryStore();
  const fs = await newFs(store);
  const a = randomBytes(300_000);
  const b = randomBytes(100_000);
  const dst = await put(fs, root, ROOT_INO, 'dst', Buffer.alloc(0));
  const ia = await put(fs, root, ROOT_INO, 'a', a);
  await put(fs, root, ROOT_INO, 'b', b);
  // churn: dead records beside the moved ones, so the cleaner has victims
  for (let k = 0; k < 20; k++) {
    const t = await put(fs, root, ROOT_INO, `tmp${k}`, randomBytes(20_000));
    await fs.sync();
    await fs.unlink(root, ROOT_INO, `tmp${k}`);
    void t;
  }
  await fs.open(root, ia, O_RDONLY);
  await fs.coalesce(root, dst, [
    { parent: ROOT_INO, name: 'a' },
    { parent: ROOT_INO, name: 'b' },
  ]);
  assert.equal((await fs.getattr(root, ia)).size, 0, 'the open source is empty');
  assert.equal((await fs.read(root, ia, 0, 10)).length, 0);
  await fs.release(ia, false);
  await expectErrno(fs.getattr(root, ia), 'ENOENT');
  await fs.sync();
  await fsckClean(store);
  // several cleaner + gc passes (gc's grace is one pass): the moved records stay readable
  for (let k = 0; k < 3; k++) {
    await cleanSegments(fs.inodes, { keepCommits: 0 });
    await fs.sync();
    await collectGarbage(fs.volume, { graceMs: 0 });
  }
  // overwrite part of the joined file: the moved extents are released like any others
  await fs.write(root, dst, 10, randomBytes(50_000));
  await fs.sync();
  await fsckClean(store);
  const got = await readAll(fs, dst);
  assert.equal(got.length, a.length + b.length);
  assert.ok(got.subarray(60_010).equals(Buffer.concat([a, b]).subarray(60_010)));
  await fs.unlink(root, ROOT_INO, 'dst');
  await fs.sync();
  await fsckClean(store);
  assert.ok((await liveBytes(fs)) < 64 * 1024, 'everything released after the unlink');
  await fs.close();
});
