/**
 * Recovery from damaged stores: what `open` falls back to, what reads return, and what fsck says.
 * - a corrupt or truncated newest commit: open falls back to the previous commit, fsck reports it;
 * - a corrupt, truncated or missing data segment: reads of the file fail with EIO (an FsError, not
 *   a crash), other files stay readable, fsck reports it;
 * - a garbage or stale `head` hint: open still finds the newest commit;
 * - a missing superblock: a clear ENOENT, and `create` does not mint a new volume over old commits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity as who, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { FsError } from '../../src/util/index.ts';
import { dataPool } from '../simulation/harness.ts';

const volumeOptions = { segmentBytesMax: 256 * 1024, headEveryCommits: 1 };
const inode = { largeRunBytes: 64 * 1024 };

function open(store: MemoryStore, create = false): Promise<SiltFileSystem> {
  return openFileSystem({ store, create, flushIntervalMs: 0, volumeOptions, inode });
}

async function writeFile(fs: SiltFileSystem, name: string, data: Uint8Array): Promise<number> {
  const a = await fs.create(who, 1, name, 0o644);
  for (let off = 0; off < data.length; off += 128 * 1024) {
    await fs.write(who, a.ino, off, data.subarray(off, Math.min(data.length, off + 128 * 1024)));
  }
  return a.ino;
}

async function readFile(fs: SiltFileSystem, name: string): Promise<Buffer> {
  const a = await fs.lookupPath(who, name);
  return Buffer.from(await fs.read(who, a.ino, 0, a.size));
}

async function names(fs: SiltFileSystem): Promise<string[]> {
  return (await fs.readdir(who, 1, 0n, 1000))
    .map((e) => e.name)
    .filter((n) => n !== '.' && n !== '..')
    .sort();
}

async function errors(store: MemoryStore): Promise<string[]> {
  const r = await checkVolume(store, 'default');
  return r.problems.filter((p) => p.severity === 'error').map((p) => `${p.where}: ${p.message}`);
}

async function mutate(store: MemoryStore, key: string, f: (b: Buffer) => Buffer): Promise<void> {
  const b = Buffer.from(await store.get(key));
  await store.put(key, f(b));
}

const A = dataPool().subarray(0, 50_000);
const B = dataPool().subarray(100_000, 100_500);

/**
 * Commit 2 holds file a, commit 3 adds file b (both deltas after the mkfs checkpoint). The volume
 * is left as a crash leaves it, without the checkpoint a close would add. Returns the store and
 * the key of commit 3.
 */
async function twoCommits(): Promise<{ store: MemoryStore; newest: string }> {
  const store = new MemoryStore();
  const fs = await open(store, true);
  await writeFile(fs, 'a', A);
  await fs.sync();
  await writeFile(fs, 'b', B);
  await fs.sync();
  const seq = fs.volume.lastCommit.seq;
  assert.equal(fs.volume.lastCommit.kind, 'delta');
  fs.inodes.stop();
  return { store, newest: `default/log/${seq.toString(16).padStart(16, '0')}` };
}

const commitDamage: Array<[string, (b: Buffer) => Buffer]> = [
  ['a flipped byte in the trailer', (b) => flip(b, b.length - 20)],
  ['a flipped byte in the commit record', (b) => flip(b, b.length - 64 - 30)],
  ['the object truncated', (b) => b.subarray(0, b.length - 100)],
  ['the object cut to a few bytes', (b) => b.subarray(0, 10)],
  ['the object emptied', () => Buffer.alloc(0)],
];

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x5a;
  return c;
}

for (const [what, damage] of commitDamage) {
  test(`newest commit with ${what}: open falls back to the previous commit; fsck reports it`, async () => {
    const { store, newest } = await twoCommits();
    await mutate(store, newest, damage);
    const fs = await open(store);
    assert.deepEqual(await names(fs), ['a'], 'the state of the previous commit');
    assert.deepEqual(await readFile(fs, 'a'), Buffer.from(A));
    assert.ok(fs.volume.openWarnings.some((w) => w.includes('unreadable')), fs.volume.openWarnings.join('; '));
    const errs = await errors(store);
    assert.ok(errs.some((e) => e.startsWith('commit') && e.includes('unreadable')), errs.join('; '));
    // The volume goes on from there: a new commit lands after the damaged one and is found.
    await writeFile(fs, 'c', B);
    await fs.sync();
    await fs.close();
    const again = await open(store);
    assert.deepEqual(await names(again), ['a', 'c']);
    await again.close();
    assert.deepEqual(await errors(store), []);
  });
}

/** A volume with one file in data segments and one small file in a commit segment. */
async function bulkVolume(): Promise<{ store: MemoryStore; big: Buffer; dataKeys: string[] }> {
  const store = new MemoryStore();
  const fs = await open(store, true);
  const big = Buffer.from(dataPool().subarray(0, 900_000));
  await writeFile(fs, 'big', big);
  await writeFile(fs, 'small', B);
  await fs.close();
  const dataKeys = store.keys().filter((k) => k.startsWith('default/seg/'));
  assert.ok(dataKeys.length >= 2, `expected data segments, have ${store.keys().join(', ')}`);
  return { store, big, dataKeys };
}

const segmentDamage: Array<[string, (store: MemoryStore, key: string) => Promise<void>]> = [
  ['a flipped byte', (s, k) => mutate(s, k, (b) => flip(b, b.length >> 1))],
  ['the object truncated', (s, k) => mutate(s, k, (b) => b.subarray(0, b.length >> 2))],
  ['the object deleted', (s, k) => s.delete(k)],
];

for (const [what, damage] of segmentDamage) {
  test(`data segment with ${what}: reading the file gives EIO, others still read; fsck reports it`, async () => {
    const { store, big, dataKeys } = await bulkVolume();
    await damage(store, dataKeys[0]!);
    const fs = await open(store);
    const a = await fs.lookupPath(who, 'big');
    await assert.rejects(fs.read(who, a.ino, 0, a.size), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
    // The damage is confined: the rest of the file's segments and other files read fine.
    const last = dataKeys.length > 1 ? big.length - 1000 : 0;
    if (last > 0) assert.deepEqual(Buffer.from(await fs.read(who, a.ino, last, 1000)), big.subarray(last));
    assert.deepEqual(await readFile(fs, 'small'), Buffer.from(B));
    await fs.close();
    const errs = await errors(store);
    assert.ok(errs.length > 0 && errs.some((e) => e.includes('unreadable') || e.includes('missing')), errs.join('; '));
  });
}

test('a flipped byte inside a commit segment (not its trailer): the commit opens, the damaged node reads as EIO, fsck reports it', async () => {
  const store = new MemoryStore();
  const fs = await open(store, true);
  for (let i = 0; i < 40; i++) await writeFile(fs, `f${i}`, B.subarray(0, 10 + i));
  await fs.close();
  const log = store.keys().filter((k) => k.includes('/log/'));
  // Damage the first record of the newest commit segment that carries files.
  await mutate(store, log[log.length - 1]!, (b) => flip(b, 40));
  const errs = await errors(store);
  assert.ok(errs.some((e) => e.includes('unreadable')), errs.join('; '));
  const again = await open(store);
  let eio = 0;
  for (let i = 0; i < 40; i++) {
    try {
      const got = await readFile(again, `f${i}`);
      assert.deepEqual(got, Buffer.from(B.subarray(0, 10 + i)));
    } catch (e) {
      assert.ok(e instanceof FsError && e.errno === 'EIO', String(e));
      eio++;
    }
  }
  await again.close().catch(() => {});
  assert.ok(eio > 0 || errs.length > 0);
});

const garbageHeads: Array<[string, Uint8Array | null]> = [
  ['not JSON', Buffer.from('garbage\x00\xff')],
  ['a sequence far past the end', Buffer.from('{"seq": 9999}\n')],
  ['a negative sequence', Buffer.from('{"seq": -4}\n')],
  ['a stale sequence', Buffer.from('{"seq": 1}\n')],
  ['missing', null],
];

for (const [what, head] of garbageHeads) {
  test(`head hint ${what}: open still finds the newest commit`, async () => {
    const { store, newest } = await twoCommits();
    if (head === null) await store.delete('default/head');
    else await store.put('default/head', head);
    const fs = await open(store);
    assert.deepEqual(await names(fs), ['a', 'b']);
    assert.equal(`default/log/${fs.volume.lastCommit.seq.toString(16).padStart(16, '0')}`, newest);
    assert.deepEqual(fs.volume.openWarnings, []);
    await fs.close();
    assert.deepEqual(await errors(store), []);
  });
}

test('a missing superblock is a clear ENOENT, and create does not mint a new volume over old commits', async () => {
  const { store } = await twoCommits();
  await store.delete('default/super');
  await assert.rejects(open(store), (e: unknown) => e instanceof FsError && e.errno === 'ENOENT' && /mkfs/.test(e.message));
  await assert.rejects(checkVolume(store, 'default'), (e: unknown) => e instanceof FsError && e.errno === 'ENOENT');
  const before = store.keys().filter((k) => k.includes('/log/')).length;
  await assert.rejects(open(store, true), (e: unknown) => e instanceof FsError && e.errno === 'EEXIST' && /no superblock/.test(e.message));
  assert.equal(store.keys().filter((k) => k.includes('/log/')).length, before, 'no commit was added or replaced');
  assert.equal(await store.head('default/super'), null, 'no new superblock (with a new volume id) was written');
});

test('a garbage superblock is a CorruptionError naming it, not a crash', async () => {
  const { store } = await twoCommits();
  await store.put('default/super', Buffer.from('{"format":"silt"'));
  await assert.rejects(open(store), (e: unknown) => e instanceof Error && e.name === 'CorruptionError' && /super/.test(e.message));
});
