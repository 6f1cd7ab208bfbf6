import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { FaultyStore, MemoryStore } from '../../src/objstore/index.ts';
import { Failpoints, Random } from '../../src/util/index.ts';

const volumeOptions = { segmentBytesMax: 256 * 1024, headEveryCommits: 2 };

async function fileBytes(store: MemoryStore, path: string): Promise<Buffer> {
  const fs = await openFileSystem({ store, flushIntervalMs: 0 });
  try {
    const a = await fs.lookupPath(root, path);
    return Buffer.from(await fs.read(root, a.ino, 0, a.size));
  } finally {
    await fs.close();
  }
}

test('gc deletes overwritten and deleted data, keeps everything live, and fsck stays clean', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions, inode: { largeRunBytes: 64 * 1024 } });
  const keep = Buffer.alloc(600 * 1024, 7);
  const k = await fs.create(root, 1, 'keep', 0o644);
  await fs.write(root, k.ino, 0, keep);
  await fs.sync();
  // A big file written, then overwritten twice and finally deleted: its old segments die.
  const g = await fs.create(root, 1, 'garbage', 0o644);
  for (let round = 0; round < 3; round++) {
    await fs.write(root, g.ino, 0, Buffer.alloc(900 * 1024, round));
    await fs.sync();
  }
  await fs.unlink(root, 1, 'garbage');
  for (let i = 0; i < 10; i++) {
    const s = await fs.create(root, 1, `small${i}`, 0o644);
    await fs.write(root, s.ino, 0, Buffer.from(`small file ${i}`));
    await fs.sync();
  }
  await fs.close();

  const before = await checkVolume(store, 'default');
  assert.ok(before.clean, JSON.stringify(before.problems));
  const fs2 = await openFileSystem({ store, flushIntervalMs: 0 });
  const dry = await collectGarbage(fs2.volume, { dryRun: true });
  assert.ok(dry.candidates > 0, 'a dry run finds the dead segments');
  assert.equal(dry.deleted, 0);
  const keysBefore = store.keys().length;
  assert.equal(store.keys().length, keysBefore, 'a dry run deletes nothing');
  const r = await collectGarbage(fs2.volume, {});
  await fs2.close();
  assert.equal(r.deleted, dry.candidates);
  assert.ok(r.bytesFreed >= 900 * 1024 * 2, `freed ${r.bytesFreed} bytes`);
  assert.ok(r.orphanDataSegments > 0, 'overwritten data segments are counted');
  assert.ok(store.keys().length < keysBefore);

  const after = await checkVolume(store, 'default');
  assert.ok(after.clean, JSON.stringify(after.problems));
  assert.deepEqual(await fileBytes(store, 'keep'), keep);
  assert.equal((await fileBytes(store, 'small9')).toString(), 'small file 9');
  // A second pass finds nothing more.
  const fs3 = await openFileSystem({ store, flushIntervalMs: 0 });
  const again = await collectGarbage(fs3.volume, {});
  await fs3.close();
  assert.equal(again.deleted, 0);
});

test('gc honours its grace period: the first pass only marks', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions });
  const g = await fs.create(root, 1, 'g', 0o644);
  for (let round = 0; round < 6; round++) {
    await fs.write(root, g.ino, 0, Buffer.alloc(64 * 1024, round));
    await fs.sync();
  }
  const first = await collectGarbage(fs.volume, { graceMs: 50 });
  assert.equal(first.deleted, 0);
  assert.ok(first.waiting > 0);
  await new Promise((r) => setTimeout(r, 60));
  const second = await collectGarbage(fs.volume, { graceMs: 50 });
  assert.equal(second.deleted, first.waiting);
  await fs.close();
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});

test('gc keeps the commits recovery may fall back to', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions });
  for (let i = 0; i < 12; i++) {
    const a = await fs.create(root, 1, `f${i}`, 0o644);
    await fs.write(root, a.ino, 0, Buffer.from(String(i)));
    await fs.sync();
  }
  await collectGarbage(fs.volume, { keepCommits: 4 });
  const last = fs.volume.lastCommit.seq;
  await fs.close();
  for (let seq = last - 3; seq <= last; seq++) {
    const key = `default/log/${seq.toString(16).padStart(16, '0')}`;
    assert.ok(store.keys().includes(key), `commit ${seq} is kept`);
  }
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});

test('orphan sweep: a data segment whose commit never landed and stray objects are deleted after the grace period and reported', async () => {
  const inner = new MemoryStore();
  {
    const fs = await openFileSystem({ store: inner, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions, inode: { largeRunBytes: 32 * 1024 } });
    const a = await fs.create(root, 1, 'a', 0o644);
    await fs.write(root, a.ino, 0, Buffer.from('kept'));
    await fs.close();
  }
  // A crash right after a data segment's PUT: the segment is in the store, no commit names it.
  const faulty = new FaultyStore(inner, { random: new Random(1) });
  const failpoints = new Failpoints();
  failpoints.onCrash = (name) => faulty.crashNow(name);
  const doomed = await openFileSystem({ store: faulty, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: { ...volumeOptions, failpoints }, inode: { largeRunBytes: 32 * 1024 } });
  failpoints.arm('after-data-put');
  const b = await doomed.create(root, 1, 'b', 0o644);
  await assert.rejects(async () => {
    for (let i = 0; i < 8; i++) await doomed.write(root, b.ino, i * 64 * 1024, Buffer.alloc(64 * 1024, 9));
    await doomed.sync();
  });
  assert.ok(faulty.crashed, 'the crash fired');
  const segsAfterCrash = inner.keys().filter((k) => k.startsWith('default/seg/'));
  assert.ok(segsAfterCrash.length > 0, 'the cut-off data segment is in the store');
  // Stray objects in the volume's segment namespaces (a tool's leftover copy).
  await inner.put('default/seg/0000000000000002.copy', Buffer.from('stray'));
  await inner.put('default/log/leftover', Buffer.from('stray'));

  const fs = await openFileSystem({ store: inner, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions });
  const c = await fs.create(root, 1, 'c', 0o644);
  await fs.write(root, c.ino, 0, Buffer.from('after'));
  await fs.sync(); // this commit's nonce mark passes the orphan: nothing in flight can name it now
  const first = await collectGarbage(fs.volume, { graceMs: 40 });
  assert.equal(first.deleted, 0, 'the first pass only marks');
  assert.equal(first.strayObjects, 2);
  assert.ok(first.orphanDataSegments >= segsAfterCrash.length, JSON.stringify(first));
  await new Promise((r) => setTimeout(r, 50));
  const second = await collectGarbage(fs.volume, { graceMs: 40 });
  assert.equal(second.strayObjects, 2);
  assert.ok(second.orphanDataSegments >= segsAfterCrash.length);
  assert.equal(second.deleted, first.waiting);
  await fs.close();
  for (const k of segsAfterCrash) assert.ok(!inner.keys().includes(k), `${k} swept`);
  assert.ok(!inner.keys().includes('default/seg/0000000000000002.copy'));
  assert.ok(!inner.keys().includes('default/log/leftover'));
  assert.equal((await fileBytes(inner, 'a')).toString(), 'kept');
  assert.equal((await fileBytes(inner, 'c')).toString(), 'after');
  const rep = await checkVolume(inner, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
  assert.equal(rep.stats.orphanSegments, 0);
});
