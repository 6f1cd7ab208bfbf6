import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { cleanSegments } from '../../src/inode/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { FsError } from '../../src/util/index.ts';

function storedBytes(store: MemoryStore): number {
  let n = 0;
  for (const [k, v] of store.snapshot()) if (k.includes('/log/') || k.includes('/seg/')) n += v.length;
  return n;
}

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

test('through /.snapshot, a snapshot stays byte-identical while the live tree is rewritten, deleted, cleaned and collected; deleting it returns the space', async () => {
  const store = new MemoryStore();
  const vo = { segmentBytesMax: 128 * 1024 };
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: vo, inode: { largeRunBytes: 32 * 1024 } });
  const original = new Map<string, Buffer>();
  const d = await fs.mkdir(root, 1, 'tree', 0o755);
  for (let i = 0; i < 12; i++) {
    const data = Buffer.alloc(20_000 + i * 15_000);
    for (let j = 0; j < data.length; j++) data[j] = (i * 7 + j * 13) & 0xff;
    const a = await fs.create(root, d.ino, `f${i}`, 0o644);
    await fs.write(root, a.ino, 0, data);
    original.set(`f${i}`, data);
  }
  await fs.volume.createSnapshot('frozen');
  const check = async (when: string): Promise<void> => {
    for (const [name, want] of original) {
      assert.deepEqual(await readAll(fs, `.snapshot/frozen/tree/${name}`), want, `${when}: ${name}`);
    }
  };
  await check('at once');
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 12; i++) {
      const name = `f${i}`;
      const cur = await fs.lookup(root, d.ino, name).catch(() => undefined);
      if (round % 2 === 1 && cur) {
        await fs.unlink(root, d.ino, name);
        continue;
      }
      const a = cur ?? (await fs.create(root, d.ino, name, 0o644));
      await fs.write(root, a.ino, 0, Buffer.alloc(40_000, round + 1));
    }
    await fs.sync();
    await cleanSegments(fs.inodes, { utilizationMax: 0.9, segmentsMax: 1000 });
    fs.volume.markChanged();
    await fs.sync();
    await collectGarbage(fs.volume, {});
    await check(`after round ${round}`);
  }
  await fs.rmdir(root, 1, 'tree').catch(async () => {
    for (const e of await fs.readdir(root, d.ino, 0n, 100)) if (e.name !== '.' && e.name !== '..') await fs.unlink(root, d.ino, e.name);
    await fs.rmdir(root, 1, 'tree');
  });
  await fs.sync();
  await collectGarbage(fs.volume, {});
  await check('after the live tree is gone');
  const held = storedBytes(store);
  await fs.volume.deleteSnapshot('frozen');
  for (let i = 0; i < 3; i++) {
    fs.volume.markChanged();
    await fs.sync();
  }
  const g = await collectGarbage(fs.volume, {});
  const after = storedBytes(store);
  let snapBytes = 0;
  for (const b of original.values()) snapBytes += b.length;
  assert.ok(held - after >= snapBytes, `deleting the snapshot returned ${held - after} bytes of its ${snapBytes}`);
  assert.ok(after <= 1.2 * g.liveBytes + 64 * 1024, `stored ${after} for ${g.liveBytes} live`);
  await assert.rejects(fs.lookupPath(root, '.snapshot/frozen'), (e: unknown) => e instanceof FsError && e.errno === 'ENOENT');
  await fs.close();
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});
