/**
 * fsck finds each kind of damage deliberately injected into a copy of a volume (a LocalStore
 * directory copied with cp -a): a flipped byte in a data segment, a missing segment, a missing
 * segment only a snapshot references, a wrong link count, a dangling directory entry, a directory
 * cycle, a live-byte count that differs from the recount. Each is an
 * error naming the object or inode. Then `silt fsck` itself: exit 0 clean, 1 damaged (with a --json
 * report), 2 when it cannot run.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { checkVolume, type FsckReport } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { S_IFDIR, S_IFREG } from '../../src/fs/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { repoRoot, sh, tempDir, q } from '../support/mount.ts';

let base: string;
let work: string;
let bigIno = 0;
let smallIno = 0;
/** Data segment keys the live big file uses, and one only the snapshot still references. */
let liveSegs: string[] = [];
let snapOnlySeg = '';

const storeUrl = (dir: string): string => `file:${dir}`;

async function withFs<T>(dir: string, fn: (f: SiltFileSystem) => Promise<T>): Promise<T> {
  const store = await openStore(storeUrl(dir));
  const f = await openFileSystem({ store, flushIntervalMs: 0, gcIntervalMs: 0 });
  try {
    return await fn(f);
  } finally {
    await f.close();
    await store.close();
  }
}

async function fsck(dir: string): Promise<FsckReport> {
  const store = await openStore(storeUrl(dir));
  try {
    return await checkVolume(store, 'default');
  } finally {
    await store.close();
  }
}

function segKeys(dir: string): string[] {
  const d = path.join(dir, 'default/seg');
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d).map((n) => `default/seg/${n}`);
}

let copies = 0;
async function copy(): Promise<string> {
  const dst = path.join(work, `copy${copies++}`);
  const r = await sh(`cp -a ${q(base)} ${q(dst)}`);
  assert.equal(r.code, 0, r.stderr);
  return dst;
}

function errorsOf(rep: FsckReport): string[] {
  return rep.problems.filter((p) => p.severity === 'error').map((p) => `${p.where}: ${p.message}`);
}

before(async () => {
  work = tempDir('silt-fsck-damage-');
  base = path.join(work, 'base');
  const store = await openStore(storeUrl(base), { create: true });
  const f = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: { segmentBytesMax: 256 * 1024 }, inode: { largeRunBytes: 32 * 1024 } });
  const d = await f.mkdir(root, 1, 'd', 0o755);
  const s = await f.create(root, d.ino, 'small', 0o644);
  smallIno = s.ino;
  await f.write(root, s.ino, 0, Buffer.from('small file'));
  const b = await f.create(root, 1, 'big', 0o644);
  bigIno = b.ino;
  const old = Buffer.alloc(600 * 1024, 3);
  for (let off = 0; off < old.length; off += 64 * 1024) await f.write(root, b.ino, off, old.subarray(off, off + 64 * 1024));
  await f.sync();
  const before = new Set(segKeys(base));
  await f.volume.createSnapshot('snap');
  // Rewrite the big file: its old segments are now referenced by the snapshot alone.
  const fresh = Buffer.alloc(600 * 1024, 4);
  for (let off = 0; off < fresh.length; off += 64 * 1024) await f.write(root, b.ino, off, fresh.subarray(off, off + 64 * 1024));
  await f.sync();
  await f.close();
  await store.close();
  liveSegs = segKeys(base).filter((k) => !before.has(k));
  snapOnlySeg = [...before][0]!;
  assert.ok(liveSegs.length > 0 && snapOnlySeg, 'the big file is in data segments');
  const rep = await fsck(base);
  assert.deepEqual(errorsOf(rep), [], 'the original is clean');
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a flipped byte in a data segment: the file and segment are named', async () => {
  const dir = await copy();
  const key = liveSegs[0]!;
  const file = path.join(dir, key);
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 3)]! ^= 0x40;
  fs.writeFileSync(file, bytes);
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith(`inode ${bigIno}:`) && e.includes(key)), errs.join('\n'));
});

test('a missing segment: named as missing, and the file that lost data', async () => {
  const dir = await copy();
  const key = liveSegs[0]!;
  fs.rmSync(path.join(dir, key));
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith(`${key}:`) && e.includes('missing')), errs.join('\n'));
  assert.ok(errs.some((e) => e.startsWith(`inode ${bigIno}:`)), errs.join('\n'));
});

test('a missing segment only a snapshot references: the snapshot is named', async () => {
  const dir = await copy();
  fs.rmSync(path.join(dir, snapOnlySeg));
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith('snapshot snap:') && e.includes(snapOnlySeg)), errs.join('\n'));
});

test('a wrong link count: the inode is named with both counts', async () => {
  const dir = await copy();
  await withFs(dir, async (f) => {
    await f.volume.lock.run(async () => {
      const i = await f.inodes.get(smallIno);
      i.nlink = 3;
      f.inodes.markDirty(i);
    });
    await f.sync();
  });
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.includes(`inode ${smallIno}: nlink 3 but 1 directory entries name it`), errs.join('\n'));
});

test('a dangling directory entry: the directory and the missing inode are named', async () => {
  const dir = await copy();
  await withFs(dir, async (f) => {
    await f.volume.lock.run(async () => {
      const r = await f.inodes.get(1);
      await f.inodes.dirSet(r, Buffer.from('ghost'), { ino: 987654321, type: S_IFREG });
    });
    await f.sync();
  });
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith('inode 1:') && e.includes('"ghost"') && e.includes('987654321')), errs.join('\n'));
});

test('a directory cycle (an entry naming the root): reported', async () => {
  const dir = await copy();
  await withFs(dir, async (f) => {
    const dIno = (await f.lookup(root, 1, 'd')).ino;
    await f.volume.lock.run(async () => {
      const d = await f.inodes.get(dIno);
      await f.inodes.dirSet(d, Buffer.from('loop'), { ino: 1, type: S_IFDIR });
    });
    await f.sync();
  });
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith('inode 1:') && e.includes('cycle')), errs.join('\n'));
});

test('a live-byte count off from the recount: the segment is named', async () => {
  const dir = await copy();
  const key = liveSegs[0]!;
  const seg = parseInt(key.slice('default/seg/'.length), 16) * 2 + 1;
  await withFs(dir, async (f) => {
    await f.volume.lock.run(async () => {
      f.volume.addLive(seg, 4096);
      f.volume.markChanged();
    });
    await f.sync();
  });
  const errs = errorsOf(await fsck(dir));
  assert.ok(errs.some((e) => e.startsWith(`segment ${key}:`) && e.includes('live-byte count')), errs.join('\n'));
});

test('silt fsck: exit 0 clean, 1 with problems (--json names them), 2 when it cannot run', async () => {
  const silt = `node --import tsx ${q(path.join(repoRoot, 'src/cli/main.ts'))}`;
  const clean = await sh(`${silt} fsck --store ${q(storeUrl(base))}`, { cwd: repoRoot });
  assert.equal(clean.code, 0, clean.stderr + clean.stdout);
  assert.match(clean.stdout, /clean/);
  const dir = await copy();
  fs.rmSync(path.join(dir, liveSegs[0]!));
  const bad = await sh(`${silt} fsck --json --store ${q(storeUrl(dir))}`, { cwd: repoRoot });
  assert.equal(bad.code, 1, bad.stderr);
  const report = JSON.parse(bad.stdout) as FsckReport;
  assert.equal(report.clean, false);
  assert.ok(report.problems.some((p) => p.severity === 'error' && p.where === liveSegs[0]), bad.stdout);
  const none = await sh(`${silt} fsck --store ${q(storeUrl(dir))} --volume nosuch`, { cwd: repoRoot });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /nosuch/);
});
