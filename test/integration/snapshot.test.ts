import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { FsError } from '../../src/util/index.ts';

async function readAll(fs: SiltFileSystem, path: string): Promise<Buffer> {
  const a = await fs.lookupPath(root, path);
  return Buffer.from(await fs.read(root, a.ino, 0, a.size));
}

test('a snapshot keeps the old state readable through overwrites, deletes and gc; it is read-only', async () => {
  const store = new MemoryStore();
  const vo = { segmentBytesMax: 128 * 1024 };
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions: vo, inode: { largeRunBytes: 32 * 1024 } });
  const old = Buffer.alloc(400 * 1024, 1);
  const a = await fs.create(root, 1, 'a', 0o644);
  await fs.write(root, a.ino, 0, old);
  await fs.mkdir(root, 1, 'd', 0o755);
  const snap = await fs.volume.createSnapshot('before');
  assert.equal(snap.name, 'before');
  await assert.rejects(fs.volume.createSnapshot('before'), (e: unknown) => e instanceof FsError && e.errno === 'EEXIST');
  // Change everything the snapshot saw.
  await fs.write(root, a.ino, 0, Buffer.alloc(400 * 1024, 2));
  await fs.rmdir(root, 1, 'd');
  await fs.sync();
  const gc1 = await collectGarbage(fs.volume, {});
  await fs.close();
  assert.ok((await checkVolume(store, 'default')).clean);

  const view = await openFileSystem({ store, snapshot: 'before', flushIntervalMs: 0 });
  assert.deepEqual(await readAll(view, 'a'), old, 'the snapshot still reads the old bytes after gc');
  assert.ok((await view.lookupPath(root, 'd')).ino > 0, 'the removed directory is in the snapshot');
  await assert.rejects(view.create(root, 1, 'x', 0o644), (e: unknown) => e instanceof FsError && e.errno === 'EROFS');
  await view.close();
  const live = await openFileSystem({ store, flushIntervalMs: 0 });
  assert.equal((await readAll(live, 'a'))[0], 2, 'the volume itself has the new bytes');

  // Deleting the snapshot lets gc reclaim what only it referenced.
  await live.volume.deleteSnapshot('before');
  // gc also keeps what the last four commits reference (recovery's fallback): move past them.
  for (let i = 0; i < 4; i++) {
    const f = await live.create(root, 1, `later${i}`, 0o644);
    await live.write(root, f.ino, 0, Buffer.from('x'));
    await live.sync();
  }
  const gc2 = await collectGarbage(live.volume, {});
  assert.ok(gc2.bytesFreed >= 400 * 1024, `freed ${gc2.bytesFreed} after deleting the snapshot (gc before: ${gc1.bytesFreed})`);
  await live.close();
  await assert.rejects(openFileSystem({ store, snapshot: 'before' }), (e: unknown) => e instanceof FsError && e.errno === 'ENOENT');
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});
