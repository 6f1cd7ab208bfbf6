/**
 * The FUSE bridge and wire layer without a kernel, over the real engine (memory: store) wrapped
 * in a call counter: lookup counts -> pin/unpin, fs.release exactly once per handle with the right
 * `wrote`, create semantics, negative entries, READDIRPLUS references, lock interrupts -> EINTR,
 * the single errno mapping, shutdown, and reply encodings (struct sizes the kernel checks).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openFileSystem, type SiltFileSystem } from '../../src/fs/index.ts';
import {
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  ROOT_INODE,
  S_IFDIR,
  S_IFREG,
  type FileSystem,
} from '../../src/fs/types.ts';
import { FsBridge, GroupCache, Interrupted, errnoFor, killSuidgid, parseGroups, type FuseRequest } from '../../src/fuse/index.ts';
import { DirBuffer, F_RDLCK, F_UNLCK, F_WRLCK, OFFSET_MAX, SIZE, encodeAttrOut, encodeEntryOut, encodeStatfsOut, putAttr } from '../../src/fuse/wire.ts';
import { openStore } from '../../src/objstore/index.ts';
import { FsError } from '../../src/util/errors.ts';
import { copyOut } from '../../src/util/borrowed.ts';
import { nullLogger } from '../../src/util/log.ts';

interface Calls {
  pin: number[];
  unpin: number[];
  release: Array<[number, boolean]>;
  fsync: number[];
  open: number[];
}

/** The engine, with pin/unpin/open/release/fsync recorded. */
function counted(fs: FileSystem): { fs: FileSystem; calls: Calls } {
  const calls: Calls = { pin: [], unpin: [], release: [], fsync: [], open: [] };
  const wrapped = new Proxy(fs, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (prop === 'pin') calls.pin.push(args[0] as number);
        if (prop === 'unpin') calls.unpin.push(args[0] as number);
        if (prop === 'release') calls.release.push([args[0] as number, args[1] as boolean]);
        if (prop === 'fsync') calls.fsync.push(args[0] as number);
        if (prop === 'open') calls.open.push(args[1] as number);
        return fn.apply(target, args);
      };
    },
  });
  return { fs: wrapped, calls };
}

let unique = 100;
function req(uid = 0, gid = 0, signal?: AbortSignal): FuseRequest {
  return { opcode: 0, unique: unique++, nodeid: 0, uid, gid, pid: 0, signal: signal ?? new AbortController().signal };
}

describe('FUSE bridge over the real engine', () => {
  let engine: SiltFileSystem;
  let fs: FileSystem;
  let calls: Calls;
  let bridge: FsBridge;

  before(async () => {
    const store = await openStore(`memory:fuse-bridge-${process.pid}`, { create: true });
    engine = await openFileSystem({ store, create: true, flushIntervalMs: 3_600_000 });
    ({ fs, calls } = counted(engine));
    bridge = new FsBridge(fs, { logger: nullLogger, syncOnClose: true });
  });
  after(async () => {
    await engine.close();
  });

  test('lookup references pin on the first and unpin on the last FORGET', async () => {
    const c = await bridge.create(req(), ROOT_INODE, 'a', 0o644, O_RDWR | O_CREAT, 0);
    const ino = c.entry.nodeid;
    assert.equal(c.entry.attr?.ino, ino);
    assert.deepEqual(calls.pin, [ino]);
    await bridge.lookup(req(), ROOT_INODE, 'a');
    await bridge.lookup(req(), ROOT_INODE, 'a');
    assert.deepEqual(calls.pin, [ino], 'pinned once');
    assert.equal(bridge.lookupCounts.get(ino), 3);
    bridge.forget(ino, 2);
    assert.deepEqual(calls.unpin, []);
    await bridge.release(req(), ino, c.open.fh, 0, 0n);
    bridge.forget(ino, 1);
    assert.deepEqual(calls.unpin, [ino]);
    assert.equal(bridge.lookupCounts.has(ino), false);
  });

  test('a missing name is a negative entry (node 0) with the entry timeout', async () => {
    const e = await bridge.lookup(req(), ROOT_INODE, 'nothing-here');
    assert.equal(e.nodeid, 0);
    assert.equal(e.entryTimeoutMs, 1000);
    assert.equal(e.attr, undefined);
    const f = await bridge.lookup(req(), ROOT_INODE, 'a');
    await assert.rejects(bridge.lookup(req(), f.nodeid, 'x'), (e) => e instanceof FsError && e.errno === 'ENOTDIR');
  });

  test('fs.release once per handle, at the first FLUSH, with wrote; later writes are fsynced (sync-on-close)', async () => {
    const c = await bridge.create(req(), ROOT_INODE, 'h', 0o644, O_RDWR | O_CREAT, 0);
    const ino = c.entry.nodeid;
    const fh = c.open.fh;
    calls.release.length = 0;
    calls.fsync.length = 0;
    await bridge.write(req(), ino, fh, 0, Buffer.from('hello'), 0);
    await bridge.flush(req(), ino, fh, 1n);
    assert.deepEqual(calls.release, [[ino, true]]);
    await bridge.flush(req(), ino, fh, 1n); // dup'd descriptor closed: nothing new
    assert.deepEqual(calls.release, [[ino, true]]);
    await bridge.write(req(), ino, fh, 5, Buffer.from(' world'), 0); // e.g. through mmap after close
    await bridge.release(req(), ino, fh, 0, 1n);
    assert.deepEqual(calls.release, [[ino, true]], 'still once');
    assert.deepEqual(calls.fsync, [ino], 'the late write was made durable');
    assert.equal(Buffer.from(copyOut(await bridge.read(req(), ino, 0, 0, 100))).toString(), 'hello world');
    // A read-only handle that never flushed is released at RELEASE with wrote=false.
    const o = await bridge.open(req(), ino, O_RDONLY, 0);
    await bridge.release(req(), ino, o.fh, 0, 0n);
    assert.deepEqual(calls.release.at(-1), [ino, false]);
    assert.equal(bridge.openHandles, 0);
  });

  test('CREATE: EEXIST only with O_EXCL; the creator may write a file created read-only', async () => {
    await engine.setattr({ uid: 0, gid: 0, groups: [] }, ROOT_INODE, { mode: 0o777 });
    const c1 = await bridge.create(req(1000, 1000), ROOT_INODE, 'shared', 0o666, O_WRONLY | O_CREAT, 0);
    await bridge.release(req(), c1.entry.nodeid, c1.open.fh, 0, 0n);
    await assert.rejects(bridge.create(req(), ROOT_INODE, 'shared', 0o644, O_WRONLY | O_CREAT | O_EXCL, 0), (e) => e instanceof FsError && e.errno === 'EEXIST');
    const c2 = await bridge.create(req(), ROOT_INODE, 'shared', 0o644, O_WRONLY | O_CREAT, 0);
    assert.equal(c2.entry.nodeid, c1.entry.nodeid, 'open(O_CREAT) of an existing file opens it');
    await bridge.release(req(), c2.entry.nodeid, c2.open.fh, 0, 0n);
    const ro = await bridge.create(req(1000, 1000), ROOT_INODE, 'readonly', 0o444, O_WRONLY | O_CREAT | O_EXCL, 0);
    assert.equal(await bridge.write(req(1000, 1000), ro.entry.nodeid, ro.open.fh, 0, Buffer.from('x'), 0), 1);
    await bridge.release(req(), ro.entry.nodeid, ro.open.fh, 0, 0n);
    await assert.rejects(bridge.open(req(1000, 1000), ro.entry.nodeid, O_WRONLY, 0), (e) => e instanceof FsError && e.errno === 'EACCES');
  });

  test('READDIRPLUS takes one reference per entry it sends, none for . and ..', async () => {
    const d = await bridge.mkdir(req(), ROOT_INODE, 'dir', 0o755);
    for (let i = 0; i < 50; i++) {
      const c = await bridge.create(req(), d.nodeid, `f${i}`, 0o644, O_WRONLY | O_CREAT, 0);
      await bridge.release(req(), c.entry.nodeid, c.open.fh, 0, 0n);
      bridge.forget(c.entry.nodeid, 1);
    }
    const before = new Map(bridge.lookupCounts);
    const out = new DirBuffer(4096, true);
    await bridge.readdir(req(), d.nodeid, 0, 0n, out);
    assert.ok(out.length > 0 && out.length <= 4096);
    assert.ok(out.lookups.length > 5 && out.lookups.length < 52, `${out.lookups.length} entries fit in 4 KiB`);
    for (const id of out.lookups) assert.equal(bridge.lookupCounts.get(id), (before.get(id) ?? 0) + 1);
    assert.ok(!out.lookups.includes(d.nodeid) && !out.lookups.includes(ROOT_INODE));
    // Walk the whole directory with plain READDIR, continuing from the last cookie sent.
    const b = out.bytes();
    const names: string[] = [];
    let off = 0n;
    for (;;) {
      const page = new DirBuffer(512, false);
      await bridge.readdir(req(), d.nodeid, 0, off, page);
      if (page.length === 0) break;
      const buf = page.bytes();
      for (let o = 0; o < buf.length; ) {
        const len = buf.readUInt32LE(o + 16);
        names.push(buf.toString('utf8', o + 24, o + 24 + len));
        off = buf.readBigUInt64LE(o + 8);
        o += (24 + len + 7) & ~7;
      }
    }
    assert.equal(names.length, 52);
    assert.deepEqual(names.slice(0, 2), ['.', '..']);
    assert.equal(new Set(names).size, 52);
    void b;
  });

  test('POSIX locks: conflict, GETLK, FLUSH drops the owner’s locks, an interrupted SETLKW is EINTR', async () => {
    const c = await bridge.create(req(), ROOT_INODE, 'locked', 0o644, O_RDWR | O_CREAT, 0);
    const ino = c.entry.nodeid;
    const fh = c.open.fh;
    const lk = (owner: bigint, type: number, start = 0n, end = OFFSET_MAX, flock = false) => ({ fh, owner, flock, lock: { start, end, type, pid: Number(owner) } });
    await bridge.setlk(req(), ino, lk(1n, F_WRLCK, 0n, 99n), false);
    await assert.rejects(bridge.setlk(req(), ino, lk(2n, F_RDLCK, 50n, 60n), false), (e) => e instanceof FsError && e.errno === 'EAGAIN');
    const g = await bridge.getlk(req(), ino, lk(2n, F_WRLCK));
    assert.deepEqual([g.type, g.start, g.end, g.pid], [F_WRLCK, 0n, 99n, 1]);
    const free = await bridge.getlk(req(), ino, lk(2n, F_WRLCK, 100n, 200n));
    assert.equal(free.type, F_UNLCK);
    const ac = new AbortController();
    const waiting = bridge.setlk(req(0, 0, ac.signal), ino, lk(2n, F_WRLCK, 0n, 0n), true);
    ac.abort(new Interrupted());
    await assert.rejects(waiting, (e) => errnoFor(e).errno === 4);
    const waiting2 = bridge.setlk(req(), ino, lk(2n, F_WRLCK, 0n, 0n), true);
    await bridge.flush(req(), ino, fh, 1n); // owner 1 closed a descriptor of the file
    await waiting2;
    // flock through the same handle is dropped at RELEASE.
    await bridge.setlk(req(), ino, lk(9n, F_WRLCK, 0n, OFFSET_MAX, true), false);
    assert.equal(bridge.locks.flockHolders(ino).length, 1);
    await bridge.release(req(), ino, fh, 0, 9n);
    assert.equal(bridge.locks.flockHolders(ino).length, 0);
  });

  test('RENAME2 flags map onto the engine; unknown flags are EINVAL', async () => {
    const a = await bridge.create(req(), ROOT_INODE, 'ra', 0o644, O_WRONLY | O_CREAT, 0);
    const b = await bridge.create(req(), ROOT_INODE, 'rb', 0o644, O_WRONLY | O_CREAT, 0);
    await assert.rejects(bridge.rename(req(), ROOT_INODE, 'ra', ROOT_INODE, 'rb', 1), (e) => e instanceof FsError && e.errno === 'EEXIST');
    await bridge.rename(req(), ROOT_INODE, 'ra', ROOT_INODE, 'rb', 2);
    assert.equal((await bridge.lookup(req(), ROOT_INODE, 'rb')).nodeid, a.entry.nodeid);
    assert.equal((await bridge.lookup(req(), ROOT_INODE, 'ra')).nodeid, b.entry.nodeid);
    await assert.rejects(bridge.rename(req(), ROOT_INODE, 'ra', ROOT_INODE, 'rb', 4), (e) => e instanceof FsError && e.errno === 'EINVAL');
    await assert.rejects(bridge.rename(req(), ROOT_INODE, 'ra', ROOT_INODE, 'rb', 3), (e) => e instanceof FsError && e.errno === 'EINVAL');
  });

  test('shutdown releases handles the kernel never released and unpins every node', async () => {
    const c = await bridge.create(req(), ROOT_INODE, 'open-at-shutdown', 0o644, O_RDWR | O_CREAT, 0);
    await bridge.write(req(), c.entry.nodeid, c.open.fh, 0, Buffer.from('x'), 0);
    const held = [...bridge.lookupCounts.keys()];
    const handlesBefore = bridge.openHandles;
    calls.release.length = 0;
    calls.unpin.length = 0;
    await bridge.destroy();
    assert.ok(calls.release.some(([ino, wrote]) => ino === c.entry.nodeid && wrote));
    assert.equal(calls.release.length, handlesBefore);
    assert.deepEqual(calls.unpin.sort(), held.sort());
    assert.equal(bridge.openHandles, 0);
    await bridge.destroy(); // idempotent
  });
});

describe('errno mapping and wire encodings', () => {
  test('FsError -> its errno, Interrupted -> EINTR, anything else -> EIO (unexpected)', () => {
    assert.deepEqual(errnoFor(new FsError('ENOENT')), { errno: 2, expected: true });
    assert.deepEqual(errnoFor(new FsError('ENOTEMPTY')), { errno: 39, expected: true });
    assert.deepEqual(errnoFor(new Interrupted()), { errno: 4, expected: true });
    assert.deepEqual(errnoFor(new TypeError('bug')), { errno: 5, expected: false });
    assert.deepEqual(errnoFor('a string'), { errno: 5, expected: false });
  });

  test('struct sizes and attribute encoding', () => {
    const attr = { ino: 2 ** 40 + 5, size: 2 ** 45, blocks: 8, atimeNs: -1_500_000_000n, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 0n, mode: S_IFREG | 0o644, nlink: 1, uid: 65534, gid: 65534, rdev: 0 };
    const e = encodeEntryOut({ nodeid: attr.ino, generation: 0, entryTimeoutMs: 1500, attrTimeoutMs: 1000, attr });
    assert.equal(e.length, SIZE.ENTRY_OUT);
    assert.equal(e.readBigUInt64LE(0), BigInt(attr.ino));
    assert.equal(e.readBigUInt64LE(16), 1n); // entry_valid seconds
    assert.equal(e.readUInt32LE(32), 500_000_000); // entry_valid_nsec
    assert.equal(e.readBigUInt64LE(40 + 8), BigInt(attr.size));
    assert.equal(e.readBigInt64LE(40 + 24), -2n); // atime: -1.5 s = -2 s + 0.5 s
    assert.equal(e.readUInt32LE(40 + 48), 500_000_000);
    assert.equal(e.readBigInt64LE(40 + 32), 1_700_000_000n);
    assert.equal(e.readUInt32LE(40 + 52), 123_456_789);
    assert.equal(e.readUInt32LE(40 + 60), S_IFREG | 0o644);
    assert.equal(encodeAttrOut({ attrTimeoutMs: 1000, attr }).length, SIZE.ATTR_OUT);
    assert.equal(encodeStatfsOut({ blocks: 1, blocksFree: 1, blocksAvailable: 1, files: 1, filesFree: 1, blockSize: 4096, nameMax: 255 }).length, SIZE.STATFS_OUT);
    const b = Buffer.alloc(SIZE.ATTR);
    putAttr(b, 0, { ...attr, mode: S_IFDIR | 0o755 });
    assert.equal(b.readUInt32LE(60), S_IFDIR | 0o755);
  });

  test('dirents are 8-byte aligned and stop when the buffer is full', () => {
    const d = new DirBuffer(64, false);
    assert.ok(d.add('a', 5, 8, 1n)); // 24 + 1 -> 32
    assert.equal(d.length, 32);
    assert.ok(d.add('abcdefgh', 6, 4, 2n)); // 24 + 8 -> 32
    assert.equal(d.length, 64);
    assert.equal(d.add('x', 7, 8, 3n), false);
    assert.equal(d.bytes().readUInt32LE(16), 1);
    assert.equal(d.bytes().readBigUInt64LE(32 + 8), 2n);
  });

  test('suid/sgid killing follows the VFS rules', () => {
    assert.equal(killSuidgid(S_IFREG | 0o6755), S_IFREG | 0o755);
    assert.equal(killSuidgid(S_IFREG | 0o6745), S_IFREG | 0o2745, 'sgid without group exec is mandatory locking: kept');
    assert.equal(killSuidgid(S_IFDIR | 0o2755), S_IFDIR | 0o2755);
  });

  test('supplementary groups from /proc/<pid>/status, cached per pid', () => {
    assert.deepEqual(parseGroups('Name:\tx\nGroups:\t4 24 27 4242 \nNSpid: 1\n'), [4, 24, 27, 4242]);
    assert.deepEqual(parseGroups('Groups:\n'), []);
    let reads = 0;
    let t = 0;
    const g = new GroupCache({ ttlMs: 1000, readStatus: () => (reads++, 'Groups:\t7 8\n'), now: () => t });
    assert.deepEqual(g.groups(123, 1000), [7, 8]);
    assert.deepEqual(g.groups(123, 1000), [7, 8]);
    assert.equal(reads, 1);
    t = 1500;
    g.groups(123, 1000);
    assert.equal(reads, 2, 'expired');
    assert.deepEqual(g.groups(123, 0), [], 'root needs none');
    assert.deepEqual(new GroupCache({ readStatus: () => { throw new Error('gone'); } }).groups(5, 5), []);
    assert.deepEqual(g.identity(1000, 1000, 123), { uid: 1000, gid: 1000, groups: [7, 8], pid: 123 });
  });
});
