/**
 * What a durable small file costs on the real Swift (the local all-in-one): with the owner lease
 * held (as `silt mount` and `silt serve` hold it), one request and under 8 KiB sent per fsync'd
 * 4 KiB file: a delta commit, created without a read-back. Without the lease, the conditional
 * create is read back (HEAD), as a writer that cannot rule out a racing one must.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { O_RDWR, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { VolumeLease } from '../../src/headhunter/index.ts';
import { SwiftStore, type ObjectStore, type PutOptions } from '../../src/objstore/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { ensureSwift, purgeInBackground, type LocalSwift } from '../support/swift.ts';

let swift: LocalSwift;
const containers: string[] = [];
const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

before(async () => {
  swift = await ensureSwift();
});
after(() => purgeInBackground(swift, containers, ''));

async function swiftStore(tag: string): Promise<SwiftStore> {
  const container = `commit-cost-${runId}-${tag}`;
  containers.push(container);
  return SwiftStore.open({ authUrl: `${swift.endpoint}/auth/v1.0`, user: swift.user, key: swift.key, container });
}

/** Counts the bytes of every put (requests are counted by SwiftStore itself). */
function countingPuts(inner: SwiftStore): { store: ObjectStore; bytes: () => number } {
  let bytes = 0;
  const store = Object.create(inner) as SwiftStore;
  store.put = (key: string, data: Uint8Array, options?: PutOptions) => {
    bytes += data.length;
    return inner.put(key, data, options);
  };
  return { store, bytes: () => bytes };
}

async function smallFiles(fs: SiltFileSystem, inner: SwiftStore, bytes: () => number, n: number, tag: string): Promise<{ requests: number; bytes: number }> {
  const data = Buffer.alloc(4096, 0x42);
  const r0 = inner.stats.requests;
  const b0 = bytes();
  for (let i = 0; i < n; i++) {
    const a = await fs.create(root, 1, `${tag}${i}`, 0o644);
    await fs.open(root, a.ino, O_RDWR);
    await fs.write(root, a.ino, 0, data);
    await fs.fsync(a.ino, false);
    await fs.release(a.ino, true);
  }
  return { requests: (inner.stats.requests - r0) / n, bytes: (bytes() - b0) / n };
}

test('Swift, holding the owner lease: one request and under 8 KiB per fsync\'d 4 KiB file; without it, a read-back more', async () => {
  const inner = await swiftStore('lease');
  const { store, bytes } = countingPuts(inner);
  const lease = await VolumeLease.acquire(store, 'default', { role: 'test' });
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions: { checkpointIntervalMs: 3_600_000 } });
  fs.volume.setOwnership(lease);
  const held = await smallFiles(fs, inner, bytes, 30, 'held');
  console.log(`# with the lease: ${held.requests} requests, ${held.bytes} bytes sent per fsync'd 4 KiB file`);
  assert.equal(held.requests, 1);
  assert.ok(held.bytes <= 8192, `${held.bytes} bytes per file`);

  fs.volume.setOwnership(null);
  const unguarded = await smallFiles(fs, inner, bytes, 10, 'plain');
  console.log(`# without it: ${unguarded.requests} requests per fsync'd file`);
  assert.equal(unguarded.requests, 2, 'PUT, then the HEAD that reads the conditional create back');
  await fs.close();
  await lease.release();
  const report = await checkVolume(store, 'default');
  assert.ok(report.clean, JSON.stringify(report.problems));
  await inner.close();
});
