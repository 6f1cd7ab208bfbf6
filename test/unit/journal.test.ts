/**
 * Delta commits and their journal: encoding, what a durable small file costs, recovery by replay
 * from the newest checkpoint (every kind of change, a file unlinked while open, a damaged delta),
 * and the checkpoint policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore, type ObjectStore } from '../../src/objstore/index.ts';
import {
  COMMIT_VERSION,
  JournalOp,
  JournalWriter,
  Volume,
  decodeCommit,
  decodeJournal,
  encodeCommit,
  readCommit,
  type CommitRecord,
} from '../../src/headhunter/index.ts';
import { O_RDWR, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { commitKey } from '../../src/segment/index.ts';
import { CorruptionError } from '../../src/util/index.ts';

const V = 'vol';

function open(store: ObjectStore, create: boolean, volumeOptions: Record<string, unknown> = {}): Promise<SiltFileSystem> {
  return openFileSystem({ store, volume: V, create, flushIntervalMs: 0, volumeOptions: { checkpointIntervalMs: 3_600_000, ...volumeOptions } });
}

async function fsckProblems(store: ObjectStore): Promise<string[]> {
  return (await checkVolume(store, V)).problems.map((p) => `${p.severity} ${p.where}: ${p.message}`);
}

/** Everything a user could see of the tree: paths, kinds, sizes, modes, link counts, contents, xattrs. */
async function describe(fs: SiltFileSystem, dir = 1, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, dir, 0n, 10_000)) {
    if (e.name === '.' || e.name === '..') continue;
    const a = await fs.getattr(root, e.ino);
    const path = `${prefix}/${e.name}`;
    let line = `${path} mode=${a.mode.toString(8)} nlink=${a.nlink} size=${a.size} uid=${a.uid}`;
    if ((a.mode & 0o170000) === 0o100000) {
      const b = Buffer.from(await fs.read(root, e.ino, 0, a.size));
      line += ` sha=${(await import('node:crypto')).createHash('sha1').update(b).digest('hex').slice(0, 12)}`;
    }
    for (const x of (await fs.listxattr(root, e.ino)).sort()) line += ` ${x}=${Buffer.from(await fs.getxattr(root, e.ino, x)).toString('hex')}`;
    out.push(line);
    if ((a.mode & 0o170000) === 0o040000) out.push(...(await describe(fs, e.ino, path)));
  }
  return out.sort();
}

test('journal: every entry kind round-trips; damaged journals are CorruptionError, never RangeError', () => {
  const w = new JournalWriter();
  w.tree(JournalOp.DIR_PUT, 7, Uint8Array.of(1, 2, 3));
  w.mark(JournalOp.UNLINK, 8);
  w.tree(JournalOp.EXT_DEL, 9, Uint8Array.of(4));
  w.mark(JournalOp.FREE, 8);
  w.mark(JournalOp.TREE_DROP, 10);
  w.tree(JournalOp.DIR_DEL, 7, Uint8Array.of(5, 6));
  w.tree(JournalOp.EXT_PUT, 9, new Uint8Array(40).fill(9));
  const bytes = w.take([[11, Uint8Array.of(42)]], new Map([[3, 100], [5, 0], [7, -64]]));
  assert.equal(w.count, 0, 'take starts a new journal');
  const entries = decodeJournal(bytes, 'test');
  assert.deepEqual(
    entries.map((e) => e.op),
    [JournalOp.INODE, JournalOp.DIR_PUT, JournalOp.UNLINK, JournalOp.EXT_DEL, JournalOp.FREE, JournalOp.TREE_DROP, JournalOp.DIR_DEL, JournalOp.EXT_PUT, JournalOp.LIVE, JournalOp.LIVE],
    'inode entries first, then the operations in order, then live bytes (zero deltas left out)',
  );
  assert.deepEqual(entries[0], { op: JournalOp.INODE, ino: 11, record: Uint8Array.of(42) });
  assert.deepEqual(entries.slice(-2), [
    { op: JournalOp.LIVE, seg: 3, delta: 100 },
    { op: JournalOp.LIVE, seg: 7, delta: -64 },
  ]);
  assert.deepEqual(decodeJournal(new JournalWriter().take([], []), 'empty'), []);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, v, cut) => {
      const bad = cut ? bytes.subarray(0, at) : Uint8Array.from(bytes);
      if (!cut) bad[at] = v;
      try {
        decodeJournal(bad, 'damaged');
      } catch (e) {
        assert.ok(e instanceof CorruptionError, `got ${String(e)}`);
      }
    }),
  );
});

test('commit records: version 2 carries kind, checkpoint and journal; version 1 records read as checkpoints', () => {
  const base: CommitRecord = {
    version: COMMIT_VERSION,
    volumeId: '00112233445566778899aabbccddeeff',
    seq: 9,
    prevSeq: 8,
    timeMs: 1234,
    nonceNext: 500,
    inodeTableRoot: { seg: 10, off: 0, len: 100 },
    segmentTableRoot: { seg: 10, off: 100, len: 50 },
    inodeCount: 3,
    snapshots: [],
    kind: 'delta',
    checkpointSeq: 5,
    checkpointNonceNext: 400,
    journal: Uint8Array.of(0, 0, 0, 0),
  };
  assert.deepEqual(decodeCommit(encodeCommit(base), 'c'), base);
  const cp = { ...base, kind: 'checkpoint' as const, checkpointSeq: 9, checkpointNonceNext: 500, journal: new Uint8Array(0) };
  assert.deepEqual(decodeCommit(encodeCommit(cp), 'c'), cp);
  // A version 1 record is the version 2 layout without the tail: a checkpoint of itself.
  const v1 = Buffer.from(encodeCommit(cp));
  const tail = 1 + 8 + 8 + 4;
  v1.writeUInt16LE(1, 0);
  const old = decodeCommit(v1.subarray(0, v1.length - tail), 'v1');
  assert.equal(old.kind, 'checkpoint');
  assert.equal(old.checkpointSeq, 9);
  assert.equal(old.journal.length, 0);
  // Impossible combinations are refused.
  for (const bad of [
    { ...base, checkpointSeq: 9 }, // a delta of itself
    { ...base, checkpointSeq: 0 },
    { ...cp, checkpointSeq: 8 }, // a checkpoint naming another
    { ...cp, journal: Uint8Array.of(1) },
    { ...base, checkpointNonceNext: 501 },
  ]) {
    assert.throws(() => decodeCommit(encodeCommit(bad), 'bad'), CorruptionError, JSON.stringify({ ...bad, journal: bad.journal.length }));
  }
});

test('a durable 4 KiB file costs one PUT of under 8 KiB (a delta commit: data and a journal, no tree nodes)', async () => {
  const store = new MemoryStore();
  const fs = await open(store, true);
  // Some history first, so the trees have stored nodes a checkpoint would rewrite.
  await fs.mkdir(root, 1, 'dir', 0o755);
  const dir = (await fs.lookup(root, 1, 'dir')).ino;
  for (let i = 0; i < 200; i++) await fs.create(root, dir, `old${i}`, 0o644);
  await fs.volume.checkpoint();
  const data = Buffer.alloc(4096, 0x5a);
  for (let i = 0; i < 20; i++) {
    const puts0 = store.stats.puts;
    const bytes0 = store.stats.bytesPut;
    const a = await fs.create(root, dir, `f${i}`, 0o644);
    await fs.open(root, a.ino, O_RDWR);
    await fs.write(root, a.ino, 0, data);
    await fs.fsync(a.ino, false);
    await fs.release(a.ino, true);
    assert.equal(store.stats.puts - puts0, 1, `file ${i}: one PUT`);
    const sent = store.stats.bytesPut - bytes0;
    assert.ok(sent <= 8192, `file ${i}: ${sent} bytes sent`);
    assert.equal(fs.volume.lastCommit.kind, 'delta');
  }
  fs.inodes.stop(); // crash
  const again = await open(store, false);
  assert.equal(again.volume.replayed?.commits, 20);
  for (let i = 0; i < 20; i++) {
    const a = await again.lookup(root, dir, `f${i}`);
    assert.deepEqual(Buffer.from(await again.read(root, a.ino, 0, a.size)), data);
  }
  assert.equal((await again.readdir(root, dir, 0n, 1000)).length, 2 + 220);
  await again.close();
  assert.deepEqual(await fsckProblems(store), []);
});

/** A workload of every kind of change, synced in small steps; returns the state after each sync. */
async function workload(fs: SiltFileSystem, states: string[][], afterSync?: () => Promise<void>): Promise<void> {
  const sync = async (): Promise<void> => {
    await fs.sync();
    states.push(await describe(fs));
    await afterSync?.();
  };
  await fs.mkdir(root, 1, 'd', 0o750);
  const d = (await fs.lookup(root, 1, 'd')).ino;
  const small = await fs.create(root, d, 'small', 0o640);
  await fs.write(root, small.ino, 0, Buffer.from('hello world'));
  await sync();
  const big = await fs.create(root, 1, 'big', 0o600);
  const chunk = Buffer.alloc(300 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  for (let off = 0; off < 3 * chunk.length; off += chunk.length) await fs.write(root, big.ino, off, chunk);
  await sync();
  await fs.write(root, big.ino, 100_000, Buffer.alloc(70_000, 7)); // overwrite across records
  await fs.setattr(root, big.ino, { size: 500_000 }); // truncate
  await fs.setattr(root, small.ino, { mode: 0o604, uid: 77 });
  await fs.setxattr(root, small.ino, 'user.tag', Buffer.from('v1'));
  await sync();
  await fs.rename(root, d, 'small', 1, 'moved');
  await fs.link(root, big.ino, d, 'big-link');
  await fs.mkdir(root, d, 'sub', 0o755);
  const sub = (await fs.lookup(root, d, 'sub')).ino;
  for (let i = 0; i < 40; i++) {
    const f = await fs.create(root, sub, `n${i}`, 0o644);
    await fs.write(root, f.ino, 0, Buffer.from(`file ${i}`));
  }
  await sync();
  for (let i = 0; i < 40; i += 2) await fs.unlink(root, sub, `n${i}`);
  await fs.unlink(root, 1, 'big'); // still linked as d/big-link
  await fs.removexattr(root, (await fs.lookup(root, 1, 'moved')).ino, 'user.tag');
  await fs.symlink(root, d, 'sym', '../moved');
  await sync();
  // Joined files (extents moved from one file to another, the source's map dropped).
  const p1 = await fs.create(root, 1, 'p1', 0o644);
  await fs.write(root, p1.ino, 0, Buffer.alloc(100_000, 1));
  const p2 = await fs.create(root, 1, 'p2', 0o644);
  await fs.write(root, p2.ino, 0, Buffer.alloc(50_000, 2));
  const joined = await fs.create(root, 1, 'joined', 0o644);
  await fs.coalesce(root, joined.ino, [
    { parent: 1, name: 'p1' },
    { parent: 1, name: 'p2' },
  ]);
  await sync();
  await fs.rmdir(root, sub, 'nothing').catch(() => {});
  for (let i = 1; i < 40; i += 2) await fs.unlink(root, sub, `n${i}`);
  await fs.rmdir(root, d, 'sub');
  await sync();
}

for (const [name, volumeOptions] of [
  ['deltas only', { checkpointDeltasMax: 1000 }],
  ['a checkpoint every other commit', { checkpointDeltasMax: 1 }],
] as const) {
  test(`recovery replays every kind of change from the last checkpoint (${name}): each synced state comes back, fsck clean`, async () => {
    const store = new MemoryStore();
    const fs = await open(store, true, volumeOptions);
    const states: string[][] = [];
    const snapshots: MemoryStore[] = [];
    await workload(fs, states, async () => void snapshots.push(store.clone()));
    fs.inodes.stop();
    assert.equal(snapshots.length, states.length);
    for (let i = 0; i < states.length; i++) {
      // Each store as it was right after a sync: a crash then must recover exactly that state.
      const again = await open(snapshots[i]!, false, volumeOptions);
      assert.deepEqual(await describe(again), states[i], `state after sync ${i + 1}`);
      assert.deepEqual(again.volume.openWarnings, []);
      again.inodes.stop();
      assert.deepEqual(await fsckProblems(snapshots[i]!), [], `fsck after sync ${i + 1}`);
    }
    // After recovery the volume goes on; its next commit is a checkpoint.
    const again = await open(store, false, volumeOptions);
    await again.create(root, 1, 'after', 0o644);
    await again.sync();
    assert.equal(again.volume.lastCommit.kind, 'checkpoint');
    await again.close();
    assert.deepEqual(await fsckProblems(store), []);
  });
}

test('a file unlinked while open and written after: a crash frees it at recovery (no leaked bytes)', async () => {
  const store = new MemoryStore();
  const fs = await open(store, true);
  const a = await fs.create(root, 1, 'tmp', 0o644);
  await fs.open(root, a.ino, O_RDWR);
  await fs.write(root, a.ino, 0, Buffer.alloc(200_000, 3));
  await fs.sync();
  await fs.unlink(root, 1, 'tmp');
  await fs.write(root, a.ino, 200_000, Buffer.alloc(100_000, 4)); // through the open handle
  await fs.create(root, 1, 'other', 0o644);
  await fs.sync();
  const inodes = fs.volume.inodeCount;
  fs.inodes.stop(); // crash with the file still open
  const again = await open(store, false);
  assert.equal(again.volume.replayed?.orphansFreed, 1);
  assert.equal(again.volume.inodeCount, inodes - 1);
  assert.deepEqual((await again.readdir(root, 1, 0n, 100)).map((e) => e.name).sort(), ['.', '..', 'other']);
  again.inodes.stop();
  assert.deepEqual(await fsckProblems(store), [], 'no over-count: the orphan was released');
});

test('a damaged delta cuts the chain: open falls back to the commit before it, with a warning', async () => {
  const store = new MemoryStore();
  const fs = await open(store, true);
  await fs.create(root, 1, 'one', 0o644);
  await fs.sync();
  const good = fs.volume.lastCommit.seq;
  await fs.create(root, 1, 'two', 0o644);
  await fs.sync();
  await fs.create(root, 1, 'three', 0o644);
  await fs.sync();
  assert.equal(fs.volume.lastCommit.kind, 'delta');
  fs.inodes.stop();
  const key = commitKey(`${V}/`, good + 1);
  const bytes = Uint8Array.from(await store.get(key));
  bytes[bytes.length - 80]! ^= 0x10; // inside its commit record (the journal)
  await store.put(key, bytes);
  await assert.rejects(readCommit(store, `${V}/`, good + 1), CorruptionError);
  const again = await open(store, false);
  assert.equal(again.volume.lastCommit.seq, good);
  assert.ok(again.volume.openWarnings.some((w) => w.includes(`commit ${good + 1} is unreadable`)), again.volume.openWarnings.join('; '));
  assert.deepEqual((await again.readdir(root, 1, 0n, 100)).map((e) => e.name).sort(), ['.', '..', 'one']);
  again.inodes.stop();
});

test('checkpoints: after checkpointDeltasMax deltas, on close, for a snapshot, and when the flusher finds the volume idle', async () => {
  const store = new MemoryStore();
  const fs = await open(store, true, { checkpointDeltasMax: 3 });
  const kinds: string[] = [];
  for (let i = 0; i < 8; i++) {
    await fs.create(root, 1, `f${i}`, 0o644);
    await fs.sync();
    kinds.push(fs.volume.lastCommit.kind);
  }
  assert.deepEqual(kinds, ['delta', 'delta', 'delta', 'checkpoint', 'delta', 'delta', 'delta', 'checkpoint']);
  await fs.create(root, 1, 'snap-me', 0o644);
  const snap = await fs.volume.createSnapshot('s1');
  assert.equal((await readCommit(store, `${V}/`, snap.seq)).kind, 'checkpoint', 'a snapshot names a checkpoint');
  await fs.create(root, 1, 'last', 0o644);
  await fs.sync();
  assert.equal(fs.volume.lastCommit.kind, 'delta');
  await fs.close();
  const v = await Volume.open(store, V, {});
  assert.equal(v.lastCommit.kind, 'checkpoint', 'a closed volume ends on a checkpoint');
  assert.equal(v.replayed, undefined, 'nothing to replay');
  // The flusher checkpoints an idle volume a few intervals after its last delta.
  const live = await openFileSystem({ store, volume: V, flushIntervalMs: 20, volumeOptions: { checkpointIntervalMs: 3_600_000 } });
  await live.create(root, 1, 'idle', 0o644);
  await live.sync();
  assert.equal(live.volume.lastCommit.kind, 'delta');
  const kindNow = (): string => live.volume.lastCommit.kind;
  for (let i = 0; i < 100 && kindNow() !== 'checkpoint'; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(kindNow(), 'checkpoint', 'the idle volume was checkpointed');
  await live.close();
  assert.deepEqual(await fsckProblems(store), []);
});
