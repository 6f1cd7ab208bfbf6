/**
 * Live-byte accounting survives a store GET that fails while a commit folds the pending
 * live-byte deltas into the segment table (a lazily loaded table node cannot be read). The
 * failed sync reports EIO; the deltas must stay pending so the next commit carries them, and
 * fsck must find every segment's live bytes equal to what the trees reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type ObjectStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { FsError } from '../../src/util/index.ts';

const V = 'vol';

/** Passes everything through, except that GETs of commit segments fail while `failLogGets` is set. */
class FailLogGetStore implements ObjectStore {
  failLogGets = false;
  failedGets: string[] = [];
  constructor(readonly inner: MemoryStore) {}
  get capabilities() {
    return this.inner.capabilities;
  }
  get(key: string, r?: { offset: number; length: number }) {
    if (this.failLogGets && key.startsWith(`${V}/log/`)) {
      this.failedGets.push(key);
      return Promise.reject(new Error(`injected GET failure on ${key}`));
    }
    return this.inner.get(key, r);
  }
  put(...a: Parameters<ObjectStore['put']>) {
    return this.inner.put(...a);
  }
  putStream(...a: Parameters<ObjectStore['putStream']>) {
    return this.inner.putStream(...a);
  }
  head(...a: Parameters<ObjectStore['head']>) {
    return this.inner.head(...a);
  }
  delete(...a: Parameters<ObjectStore['delete']>) {
    return this.inner.delete(...a);
  }
  list(...a: Parameters<ObjectStore['list']>) {
    return this.inner.list(...a);
  }
  close() {
    return this.inner.close();
  }
}

async function open(store: ObjectStore): Promise<SiltFileSystem> {
  // No read-ahead and a tiny cache: every tree node comes from its own GET, when first needed.
  return openFileSystem({
    store,
    volume: V,
    create: true,
    flushIntervalMs: 0,
    volumeOptions: { headEveryCommits: 1000, readAheadBytes: 0, cacheBytesMax: 1 },
  });
}

async function liveByteErrors(store: ObjectStore): Promise<string[]> {
  const r = await checkVolume(store, V);
  return r.problems.filter((p) => p.severity === 'error').map((p) => JSON.stringify(p));
}

test('a GET failing while a commit applies live-byte deltas loses none of them', async () => {
  const mem = new MemoryStore();
  const store = new FailLogGetStore(mem);
  let fs = await open(store);
  const files = [];
  for (let i = 0; i < 4; i++) {
    const f = await fs.create(root, 1, `f${i}`, 0o644);
    await fs.write(root, f.ino, 0, Buffer.alloc(64 * 1024, i + 1));
    files.push(f);
  }
  await fs.sync();
  await fs.close();
  assert.deepEqual(await liveByteErrors(mem), []);

  // Reopen: the segment table's nodes are not loaded until the next commit needs them.
  fs = await open(store);
  for (const f of files) {
    // Overwrite and shrink: the old extents' bytes become unreferenced (negative deltas on the
    // old data segment), the new ones referenced, and tree nodes are replaced.
    await fs.write(root, f.ino, 0, Buffer.alloc(16 * 1024, 0xee));
    await fs.setattr(root, f.ino, { size: 20 * 1024 });
  }
  // A checkpoint folds the deltas into the segment table (a delta commit only journals them).
  store.failLogGets = true;
  await assert.rejects(fs.volume.checkpoint(), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  store.failLogGets = false;
  assert.ok(store.failedGets.length > 0, 'the commit read a table node from the store');

  // The store works again: the retried commit must carry every delta.
  await fs.volume.checkpoint();
  await fs.close();
  assert.deepEqual(await liveByteErrors(mem), []);
});

test('a GET failing while an unpinned, unlinked file is freed leaves no half-freed accounting', async () => {
  const mem = new MemoryStore();
  const store = new FailLogGetStore(mem);
  let fs = await open(store);
  const f = await fs.create(root, 1, 'doomed', 0o644);
  // Scattered writes: many extents, so the extent tree is read back node by node.
  for (let i = 0; i < 64; i++) await fs.write(root, f.ino, i * 8192, Buffer.alloc(1024, i));
  await fs.sync();
  await fs.close();
  assert.deepEqual(await liveByteErrors(mem), []);

  fs = await open(store);
  const a = await fs.lookup(root, 1, 'doomed');
  fs.pin(a.ino); // a front end (FUSE lookup count) holds the inode
  await fs.unlink(root, 1, 'doomed'); // unlinked, but not freed while pinned
  store.failLogGets = true;
  fs.unpin(a.ino); // frees it: reads the extent tree, which fails
  await fs.volume.lock.run(async () => {}); // the unpin has run
  store.failLogGets = false;
  assert.ok(store.failedGets.length > 0, 'freeing the file read its extent tree from the store');
  // The unlink's table delete is pending but the file's bytes were never released: that state
  // must not be committed.
  await assert.rejects(fs.sync(), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  await fs.close().catch(() => {});
  // Not even the warnings an unlinked-but-open file leaves: committed, the file's bytes would
  // stay counted live with nothing referencing them, for good.
  assert.deepEqual((await checkVolume(mem, V)).problems, []);
  fs = await open(store);
  assert.equal((await fs.lookup(root, 1, 'doomed')).ino, a.ino, 'the uncommitted unlink was rolled back');
  await fs.close();
});
