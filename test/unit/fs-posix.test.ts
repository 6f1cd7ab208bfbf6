/**
 * A named table of POSIX cases against the in-process fs layer (SiltFileSystem): each case gets a
 * fresh volume on a MemoryStore, runs, then the volume is committed and fsck must find it clean.
 * The same rules are exercised through real mounts by test/posix (node:fs against FUSE).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/objstore/index.ts';
import {
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  R_OK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  S_ISUID,
  W_OK,
  X_OK,
  openFileSystem,
  rootIdentity as root,
  type Identity,
  type SiltFileSystem,
} from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { FsError } from '../../src/util/index.ts';

const alice: Identity = { uid: 1000, gid: 1000, groups: [] };
const bob: Identity = { uid: 1001, gid: 1001, groups: [] };
/** In alice's group and in group 50. */
const carol: Identity = { uid: 1002, gid: 1002, groups: [1000, 50] };
const R = 1; // root directory inode

async function errno(p: Promise<unknown>, want: string, what = ''): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FsError, `${what}: expected FsError ${want}, got ${String(e)}`);
    assert.equal(e.errno, want, `${what}: ${e.message}`);
    return;
  }
  assert.fail(`${what}: expected ${want}, but it succeeded`);
}

const names = async (fs: SiltFileSystem, dir: number) => (await fs.readdir(root, dir, 0n, 10_000)).map((e) => e.name).sort();
const text = async (fs: SiltFileSystem, ino: number) => Buffer.from(await fs.read(root, ino, 0, 1 << 20)).toString();

/** A world-writable scratch directory owned by root (non-root identities work in it). */
async function pub(fs: SiltFileSystem, mode = 0o777): Promise<number> {
  const d = await fs.mkdir(root, R, 'pub', mode);
  await fs.setattr(root, d.ino, { mode }); // no umask in the fs layer, but be explicit
  return d.ino;
}

async function file(fs: SiltFileSystem, dir: number, name: string, body = '', who: Identity = root, mode = 0o644) {
  const a = await fs.create(who, dir, name, mode);
  if (body) await fs.write(who, a.ino, 0, Buffer.from(body));
  return a;
}

type Case = (fs: SiltFileSystem) => Promise<void>;

const cases: Record<string, Case> = {
  // ------------------------------------------------------------------ ENOENT
  'ENOENT: lookup, unlink, rmdir, rename of a missing name': async (fs) => {
    await errno(fs.lookup(root, R, 'nope'), 'ENOENT', 'lookup');
    await errno(fs.unlink(root, R, 'nope'), 'ENOENT', 'unlink');
    await errno(fs.rmdir(root, R, 'nope'), 'ENOENT', 'rmdir');
    await errno(fs.rename(root, R, 'nope', R, 'x'), 'ENOENT', 'rename');
    await errno(fs.lookupPath(root, 'a/b/c'), 'ENOENT', 'path');
    await errno(fs.getattr(root, 987654), 'ENOENT', 'getattr of an unknown inode');
  },
  'ENOENT: empty names and empty symlink targets': async (fs) => {
    await errno(fs.create(root, R, '', 0o644), 'ENOENT', 'create ""');
    await errno(fs.lookup(root, R, ''), 'ENOENT', 'lookup ""');
    await errno(fs.symlink(root, R, 'l', ''), 'ENOENT', 'symlink to ""');
  },
  'ENOENT: creating in a removed directory': async (fs) => {
    const d = await fs.mkdir(root, R, 'd', 0o755);
    fs.pin(d.ino); // a front end still refers to it
    await fs.rmdir(root, R, 'd');
    await errno(fs.create(root, d.ino, 'x', 0o644), 'ENOENT', 'create in removed dir');
    await errno(fs.mkdir(root, d.ino, 'x', 0o755), 'ENOENT', 'mkdir in removed dir');
    fs.unpin(d.ino);
  },
  // ------------------------------------------------------------------ EEXIST
  'EEXIST: create, mkdir, symlink, mknod, link onto an existing name, and . / ..': async (fs) => {
    const f = await file(fs, R, 'f');
    await fs.mkdir(root, R, 'd', 0o755);
    for (const n of ['f', 'd', '.', '..']) {
      await errno(fs.create(root, R, n, 0o644), 'EEXIST', `create ${n}`);
      await errno(fs.mkdir(root, R, n, 0o755), 'EEXIST', `mkdir ${n}`);
      await errno(fs.symlink(root, R, n, 't'), 'EEXIST', `symlink ${n}`);
      await errno(fs.mknod(root, R, n, S_IFIFO | 0o644, 0), 'EEXIST', `mknod ${n}`);
      await errno(fs.link(root, f.ino, R, n), 'EEXIST', `link ${n}`);
    }
  },
  // ------------------------------------------------------------------ ENOTDIR
  'ENOTDIR: a file used as a directory': async (fs) => {
    const f = await file(fs, R, 'f');
    await fs.mkdir(root, R, 'd', 0o755);
    await errno(fs.lookup(root, f.ino, 'x'), 'ENOTDIR', 'lookup in a file');
    await errno(fs.create(root, f.ino, 'x', 0o644), 'ENOTDIR', 'create in a file');
    await errno(fs.readdir(root, f.ino, 0n, 10), 'ENOTDIR', 'readdir of a file');
    await errno(fs.rmdir(root, R, 'f'), 'ENOTDIR', 'rmdir of a file');
    await errno(fs.rename(root, R, 'd', R, 'f'), 'ENOTDIR', 'rename dir over file');
    await errno(fs.lookupPath(root, 'f/x'), 'ENOTDIR', 'path through a file');
  },
  // ------------------------------------------------------------------ EISDIR
  'EISDIR: a directory used as a file': async (fs) => {
    const d = await fs.mkdir(root, R, 'd', 0o755);
    await file(fs, R, 'f');
    await errno(fs.unlink(root, R, 'd'), 'EISDIR', 'unlink a dir');
    await errno(fs.unlink(root, R, '.'), 'EISDIR', 'unlink .');
    await errno(fs.rename(root, R, 'f', R, 'd'), 'EISDIR', 'rename file over dir');
    await errno(fs.open(root, d.ino, O_WRONLY), 'EISDIR', 'open dir for writing');
    await errno(fs.open(root, d.ino, O_RDWR), 'EISDIR', 'open dir read-write');
    await fs.open(root, d.ino, O_RDONLY);
    await fs.release(d.ino, false);
    await errno(fs.read(root, d.ino, 0, 10), 'EISDIR', 'read a dir');
    await errno(fs.write(root, d.ino, 0, Buffer.from('x')), 'EISDIR', 'write a dir');
    await errno(fs.setattr(root, d.ino, { size: 0 }), 'EISDIR', 'truncate a dir');
    await errno(fs.fallocate(root, d.ino, 0, 0, 10), 'EISDIR', 'fallocate a dir');
  },
  // ------------------------------------------------------------------ ENOTEMPTY
  'ENOTEMPTY: rmdir and rename over a non-empty directory': async (fs) => {
    const d = await fs.mkdir(root, R, 'd', 0o755);
    await file(fs, d.ino, 'x');
    await fs.mkdir(root, R, 'e', 0o755);
    await errno(fs.rmdir(root, R, 'd'), 'ENOTEMPTY', 'rmdir');
    await errno(fs.rename(root, R, 'e', R, 'd'), 'ENOTEMPTY', 'rename over');
    await errno(fs.rmdir(root, d.ino, '..'), 'ENOTEMPTY', 'rmdir ..');
    await fs.unlink(root, d.ino, 'x');
    await fs.rmdir(root, R, 'd');
  },
  // ------------------------------------------------------------------ EINVAL and friends
  'EINVAL: rename a directory into itself or its descendant; rmdir .; bad names; flags': async (fs) => {
    const a = await fs.mkdir(root, R, 'a', 0o755);
    const b = await fs.mkdir(root, a.ino, 'b', 0o755);
    const c = await fs.mkdir(root, b.ino, 'c', 0o755);
    await errno(fs.rename(root, R, 'a', a.ino, 'x'), 'EINVAL', 'into itself');
    await errno(fs.rename(root, R, 'a', c.ino, 'x'), 'EINVAL', 'into a grandchild');
    await errno(fs.rename(root, a.ino, 'b', c.ino, 'x'), 'EINVAL', 'into a child');
    await errno(fs.rename(root, a.ino, 'b', R, 'b', { exchange: true }), 'ENOENT', 'exchange with a missing target');
    await fs.mkdir(root, R, 'z', 0o755);
    await fs.rename(root, R, 'z', c.ino, 'z'); // moving a sibling down is fine
    assert.equal((await fs.lookupPath(root, 'a/b/c/z')).mode & S_IFMT, S_IFDIR);
    await errno(fs.rmdir(root, a.ino, '.'), 'EINVAL', 'rmdir .');
    await errno(fs.create(root, R, 'x/y', 0o644), 'EINVAL', 'slash in a name');
    await errno(fs.create(root, R, 'x\0y', 0o644), 'EINVAL', 'NUL in a name');
    await errno(fs.rename(root, R, 'a', R, 'q', { noReplace: true, exchange: true }), 'EINVAL', 'NOREPLACE|EXCHANGE');
    await errno(fs.rename(root, R, '.', R, 'q'), 'EBUSY', 'rename .');
    await errno(fs.rename(root, R, 'a', R, '..'), 'EBUSY', 'rename onto ..');
    const f = await file(fs, R, 'f');
    await errno(fs.readlink(root, f.ino), 'EINVAL', 'readlink of a file');
    await errno(fs.mknod(root, R, 'weird', 0o170000 | 0o644, 0), 'EINVAL', 'mknod of an unknown type');
    await errno(fs.access(root, f.ino, 8), 'EINVAL', 'access with a bad mask');
    await errno(fs.lseek(root, f.ino, 0, 0), 'EINVAL', 'lseek SEEK_SET through the fs layer');
    await errno(fs.setattr(root, f.ino, { size: -1 }), 'EINVAL', 'negative size');
    await errno(fs.read(root, f.ino, -1, 1), 'EINVAL', 'negative offset');
    await errno(fs.write(root, f.ino, -1, Buffer.from('x')), 'EINVAL', 'negative write offset');
    await errno(fs.write(root, f.ino, 2 ** 52, Buffer.from('x')), 'EFBIG', 'beyond the largest file');
  },
  'ENAMETOOLONG at 256 bytes, 255 is fine (bytes, not characters)': async (fs) => {
    const ok = 'a'.repeat(255);
    const long = 'a'.repeat(256);
    const okWide = 'é'.repeat(127) + 'a'; // 255 bytes
    const longWide = 'é'.repeat(128); // 256 bytes in 128 characters
    const f = await file(fs, R, ok);
    assert.equal((await fs.lookup(root, R, ok)).ino, f.ino);
    await fs.mkdir(root, R, okWide, 0o755);
    for (const n of [long, longWide]) {
      await errno(fs.create(root, R, n, 0o644), 'ENAMETOOLONG', 'create');
      await errno(fs.mkdir(root, R, n, 0o755), 'ENAMETOOLONG', 'mkdir');
      await errno(fs.lookup(root, R, n), 'ENAMETOOLONG', 'lookup');
      await errno(fs.symlink(root, R, n, 't'), 'ENAMETOOLONG', 'symlink');
      await errno(fs.link(root, f.ino, R, n), 'ENAMETOOLONG', 'link');
      await errno(fs.rename(root, R, ok, R, n), 'ENAMETOOLONG', 'rename');
      await errno(fs.unlink(root, R, n), 'ENAMETOOLONG', 'unlink');
    }
    await errno(fs.symlink(root, R, 's', 'x'.repeat(4096)), 'ENAMETOOLONG', 'symlink target of PATH_MAX');
    await fs.symlink(root, R, 's', 'x'.repeat(4095));
    await fs.rename(root, R, ok, R, okWide.slice(0, -1) + 'b');
    assert.deepEqual(await names(fs, R), ['.', '..', okWide, okWide.slice(0, -1) + 'b', 's'].sort());
  },
  // ------------------------------------------------------------------ permissions
  'EACCES: non-root create, read, write, lookup, readdir without the mode bits': async (fs) => {
    await errno(fs.create(alice, R, 'x', 0o644), 'EACCES', 'create in root-owned 0755');
    await errno(fs.mkdir(alice, R, 'x', 0o755), 'EACCES', 'mkdir in root-owned 0755');
    const p = await pub(fs);
    const f = await file(fs, p, 'secret', 'hush', alice, 0o600);
    await errno(fs.open(bob, f.ino, O_RDONLY), 'EACCES', 'open for reading');
    await errno(fs.open(bob, f.ino, O_WRONLY), 'EACCES', 'open for writing');
    await errno(fs.read(bob, f.ino, 0, 4), 'EACCES', 'read');
    await errno(fs.write(bob, f.ino, 0, Buffer.from('x')), 'EACCES', 'write');
    await errno(fs.setattr(bob, f.ino, { size: 0 }), 'EACCES', 'truncate');
    await errno(fs.access(bob, f.ino, R_OK), 'EACCES', 'access R_OK');
    await fs.access(alice, f.ino, R_OK | W_OK);
    await errno(fs.access(alice, f.ino, X_OK), 'EACCES', 'access X_OK without x bits');
    await errno(fs.access(root, f.ino, X_OK), 'EACCES', 'root needs some x bit to execute');
    await fs.access(root, f.ino, R_OK | W_OK);
    // Group bits: carol is in alice's group.
    const g = await file(fs, p, 'group', 'g', alice, 0o640);
    assert.equal(g.gid, 1000);
    assert.equal(await text(fs, g.ino), 'g');
    assert.deepEqual(Buffer.from(await fs.read(carol, g.ino, 0, 1)).toString(), 'g');
    await errno(fs.read(bob, g.ino, 0, 1), 'EACCES', 'other has no bits');
    await errno(fs.write(carol, g.ino, 0, Buffer.from('x')), 'EACCES', 'group has no w');
    // A directory without x cannot be searched; without r cannot be listed.
    const d = await fs.mkdir(alice, p, 'private', 0o700);
    await file(fs, d.ino, 'inside', '', alice);
    await errno(fs.lookup(bob, d.ino, 'inside'), 'EACCES', 'lookup without x');
    await errno(fs.readdir(bob, d.ino, 0n, 10), 'EACCES', 'readdir without r');
    await errno(fs.lookupPath(bob, 'pub/private/inside'), 'EACCES', 'path walk');
    await fs.setattr(alice, d.ino, { mode: 0o711 });
    await fs.lookup(bob, d.ino, 'inside');
    await errno(fs.readdir(bob, d.ino, 0n, 10), 'EACCES', 'x without r: search but not list');
    await errno(fs.create(bob, d.ino, 'x', 0o644), 'EACCES', 'create without w');
    await errno(fs.unlink(bob, d.ino, 'inside'), 'EACCES', 'unlink without w');
    // An open handle keeps the access it was opened with.
    await fs.open(alice, f.ino, O_RDWR);
    await fs.setattr(alice, f.ino, { mode: 0o000 });
    assert.equal(Buffer.from(await fs.read(alice, f.ino, 0, 4)).toString(), 'hush');
    await fs.release(f.ino, false);
    await errno(fs.read(alice, f.ino, 0, 4), 'EACCES', 'after release');
  },
  'EPERM: chmod, chown, utimes, mknod, link to a dir, by the wrong user': async (fs) => {
    const p = await pub(fs);
    const f = await file(fs, p, 'f', 'x', alice, 0o644);
    await errno(fs.setattr(bob, f.ino, { mode: 0o777 }), 'EPERM', 'chmod by non-owner');
    await fs.setattr(alice, f.ino, { mode: 0o600 });
    await errno(fs.setattr(alice, f.ino, { uid: 1001 }), 'EPERM', 'give away a file');
    await errno(fs.setattr(bob, f.ino, { uid: 1001 }), 'EPERM', 'take a file');
    await errno(fs.setattr(alice, f.ino, { gid: 1001 }), 'EPERM', 'chgrp to a group alice is not in');
    await errno(fs.setattr(bob, f.ino, { gid: 1001 }), 'EPERM', 'chgrp by non-owner');
    await fs.setattr(alice, f.ino, { uid: 1000 }); // no-op chown to oneself is allowed
    await fs.setattr(root, f.ino, { uid: 1002, gid: 50 });
    await fs.setattr(carol, f.ino, { gid: 1000 }); // owner may chgrp to a group she is in
    assert.equal((await fs.getattr(root, f.ino)).gid, 1000);
    await errno(fs.setattr(bob, f.ino, { mtimeNs: 5n }), 'EPERM', 'explicit times by non-owner');
    await errno(fs.setattr(bob, f.ino, { mtimeNs: 'now' }), 'EACCES', 'touch without write access');
    await fs.setattr(carol, f.ino, { mtimeNs: 5n, atimeNs: 6n });
    const a = await fs.getattr(root, f.ino);
    assert.equal(a.mtimeNs, 5n);
    assert.equal(a.atimeNs, 6n);
    await fs.setattr(root, f.ino, { mode: 0o666 });
    await fs.setattr(bob, f.ino, { mtimeNs: 'now' }); // write access suffices for "now"
    await errno(fs.mknod(alice, p, 'dev', S_IFCHR | 0o644, 0x0501), 'EPERM', 'device node by non-root');
    const dev = await fs.mknod(root, p, 'dev', S_IFCHR | 0o644, 0x0501);
    assert.equal(dev.rdev, 0x0501);
    assert.equal(dev.mode & S_IFMT, S_IFCHR);
    const fifo = await fs.mknod(alice, p, 'fifo', S_IFIFO | 0o644, 99);
    assert.equal(fifo.rdev, 0, 'rdev only for devices');
    const plain = await fs.mknod(alice, p, 'plain', 0o644, 0);
    assert.equal(plain.mode & S_IFMT, S_IFREG, 'mknod type 0 is a regular file');
    const d = await fs.mkdir(root, R, 'd', 0o755);
    await errno(fs.link(root, d.ino, R, 'dlink'), 'EPERM', 'hard link to a directory');
  },
  'sticky directory: only the owner of the entry, of the directory, or root may remove or rename': async (fs) => {
    const tmp = await fs.mkdir(root, R, 'tmp', 0o1777);
    assert.equal((await fs.getattr(root, tmp.ino)).mode, S_IFDIR | 0o1777);
    await file(fs, tmp.ino, 'a', '', alice);
    await file(fs, tmp.ino, 'b', '', bob);
    await fs.mkdir(alice, tmp.ino, 'ad', 0o777);
    await errno(fs.unlink(bob, tmp.ino, 'a'), 'EPERM', 'unlink other user\'s file');
    await errno(fs.rename(bob, tmp.ino, 'a', tmp.ino, 'x'), 'EPERM', 'rename other user\'s file');
    await errno(fs.rename(bob, tmp.ino, 'b', tmp.ino, 'a'), 'EPERM', 'rename over other user\'s file');
    await errno(fs.rmdir(bob, tmp.ino, 'ad'), 'EPERM', 'rmdir other user\'s dir');
    await fs.rename(bob, tmp.ino, 'b', tmp.ino, 'b2');
    await fs.unlink(bob, tmp.ino, 'b2');
    await fs.rename(alice, tmp.ino, 'a', tmp.ino, 'a2');
    // The directory's owner (here root) may remove anything; so may the owner of a sticky dir.
    const own = await fs.mkdir(bob, tmp.ino, 'bobs', 0o1777);
    await file(fs, own.ino, 'af', '', alice);
    await fs.unlink(bob, own.ino, 'af');
    await fs.unlink(root, tmp.ino, 'a2');
    await fs.rmdir(root, tmp.ino, 'ad');
    // Without the sticky bit bob could remove alice's file.
    await fs.setattr(root, tmp.ino, { mode: 0o777 });
    await file(fs, tmp.ino, 'c', '', alice);
    await fs.unlink(bob, tmp.ino, 'c');
  },
  'setgid directory: new entries inherit its group; subdirectories inherit the bit': async (fs) => {
    const sg = await fs.mkdir(root, R, 'sg', 0o777);
    await fs.setattr(root, sg.ino, { gid: 50, mode: S_ISGID | 0o777 });
    const f = await fs.create(carol, sg.ino, 'f', 0o644);
    assert.equal(f.gid, 50, 'file takes the directory group');
    assert.equal(f.mode & S_ISGID, 0);
    const d = await fs.mkdir(carol, sg.ino, 'd', 0o755);
    assert.equal(d.gid, 50);
    assert.equal(d.mode & S_ISGID, S_ISGID, 'subdirectory inherits setgid');
    const dd = await fs.mkdir(bob, d.ino, 'x', 0o777).catch(() => null);
    assert.equal(dd, null, 'bob cannot write in a 0755 dir');
    const deep = await fs.mkdir(carol, d.ino, 'deep', 0o700);
    assert.equal(deep.gid, 50);
    assert.equal(deep.mode & S_ISGID, S_ISGID, 'inherited all the way down');
    // bob, not in group 50, asks for a setgid file there: the bit is dropped.
    const b = await fs.create(bob, sg.ino, 'b', S_ISGID | 0o755);
    assert.equal(b.gid, 50);
    assert.equal(b.mode & S_ISGID, 0, 'setgid dropped for a non-member');
    const c = await fs.create(carol, sg.ino, 'c', S_ISGID | 0o755);
    assert.equal(c.mode & S_ISGID, S_ISGID, 'kept for a member');
    // Outside a setgid directory the creator's group is used.
    const p = await pub(fs);
    assert.equal((await fs.create(carol, p, 'plain', 0o644)).gid, 1002);
    // chmod g+s by a non-member of the file's group drops the bit; by a member keeps it.
    const mine = await fs.create(bob, p, 'mine', 0o644);
    await fs.setattr(root, mine.ino, { gid: 50 });
    await fs.setattr(bob, mine.ino, { mode: S_ISGID | 0o755 });
    assert.equal((await fs.getattr(root, mine.ino)).mode & S_ISGID, 0);
  },
  'chown clears setuid and (group-executable) setgid of files': async (fs) => {
    const f = await fs.create(root, R, 'f', S_ISUID | S_ISGID | 0o755);
    assert.equal(f.mode & 0o7777, S_ISUID | S_ISGID | 0o755);
    await fs.setattr(root, f.ino, { uid: 1000 });
    assert.equal((await fs.getattr(root, f.ino)).mode & 0o7777, 0o755);
    // setgid without group execute means mandatory locking: kept.
    await fs.setattr(root, f.ino, { mode: S_ISGID | 0o745 });
    await fs.setattr(root, f.ino, { gid: 7 });
    assert.equal((await fs.getattr(root, f.ino)).mode & 0o7777, S_ISGID | 0o745);
    // Directories keep their bits.
    const d = await fs.mkdir(root, R, 'd', S_ISGID | 0o755);
    await fs.setattr(root, d.ino, { uid: 1000, gid: 1000 });
    assert.equal((await fs.getattr(root, d.ino)).mode & S_ISGID, S_ISGID);
  },
  // ------------------------------------------------------------------ xattrs
  'xattrs: create/replace flags, ENODATA, ERANGE, E2BIG, namespaces': async (fs) => {
    const f = await file(fs, R, 'f');
    const v = Buffer.from('v1');
    await fs.setxattr(root, f.ino, 'user.a', v, { create: true });
    await errno(fs.setxattr(root, f.ino, 'user.a', v, { create: true }), 'EEXIST', 'XATTR_CREATE on existing');
    await errno(fs.setxattr(root, f.ino, 'user.b', v, { replace: true }), 'ENODATA', 'XATTR_REPLACE on missing');
    await fs.setxattr(root, f.ino, 'user.a', Buffer.from('v2'), { replace: true });
    assert.equal(Buffer.from(await fs.getxattr(root, f.ino, 'user.a')).toString(), 'v2');
    await fs.setxattr(root, f.ino, 'user.a', Buffer.from('v3'));
    assert.equal(Buffer.from(await fs.getxattr(root, f.ino, 'user.a')).toString(), 'v3');
    await errno(fs.getxattr(root, f.ino, 'user.missing'), 'ENODATA', 'get missing');
    await errno(fs.removexattr(root, f.ino, 'user.missing'), 'ENODATA', 'remove missing');
    await errno(fs.getxattr(root, f.ino, 'user.' + 'x'.repeat(251)), 'ERANGE', 'name of 256 bytes');
    await errno(fs.setxattr(root, f.ino, 'user.' + 'x'.repeat(251), v), 'ERANGE', 'set name of 256 bytes');
    await fs.setxattr(root, f.ino, 'user.' + 'x'.repeat(250), v); // 255 is fine
    await errno(fs.setxattr(root, f.ino, '', v), 'EINVAL', 'empty name');
    await errno(fs.setxattr(root, f.ino, 'user.big', Buffer.alloc(65537)), 'E2BIG', 'value over 64 KiB');
    await fs.setxattr(root, f.ino, 'user.big', Buffer.alloc(65536, 1));
    await fs.setxattr(root, f.ino, 'user.empty', Buffer.alloc(0));
    assert.equal((await fs.getxattr(root, f.ino, 'user.empty')).length, 0);
    await errno(fs.setxattr(root, f.ino, 'os2.x', v), 'EOPNOTSUPP', 'unknown namespace');
    await fs.setxattr(root, f.ino, 'trusted.t', v);
    await fs.setxattr(root, f.ino, 'security.s', v);
    assert.deepEqual((await fs.listxattr(root, f.ino)).sort(), ['security.s', 'trusted.t', 'user.a', 'user.big', 'user.empty', 'user.' + 'x'.repeat(250)].sort());
    await fs.removexattr(root, f.ino, 'user.a');
    await errno(fs.getxattr(root, f.ino, 'user.a'), 'ENODATA', 'after remove');
    // Namespaces for non-root users.
    await fs.setattr(root, f.ino, { mode: 0o644 });
    assert.ok(!(await fs.listxattr(alice, f.ino)).includes('trusted.t'), 'trusted.* hidden from non-root');
    await errno(fs.getxattr(alice, f.ino, 'trusted.t'), 'EPERM', 'read trusted');
    await errno(fs.setxattr(alice, f.ino, 'user.z', v), 'EACCES', 'user.* needs write permission');
    await errno(fs.setxattr(alice, f.ino, 'security.z', v), 'EPERM', 'security.* needs ownership');
    assert.equal(Buffer.from(await fs.getxattr(alice, f.ino, 'security.s')).toString(), 'v1');
    const l = await fs.symlink(root, R, 'l', 'f');
    await errno(fs.setxattr(root, l.ino, 'user.x', v), 'EPERM', 'user.* on a symlink');
    // Total bytes per inode are capped.
    const g = await file(fs, R, 'g');
    for (let i = 0; i < 3; i++) await fs.setxattr(root, g.ino, `user.${i}`, Buffer.alloc(65536));
    await errno(fs.setxattr(root, g.ino, 'user.3', Buffer.alloc(65536)), 'ENOSPC', 'over the per-inode total');
    // ctime moves on xattr changes.
    const before = (await fs.getattr(root, g.ino)).generation;
    await fs.removexattr(root, g.ino, 'user.0');
    assert.ok((await fs.getattr(root, g.ino)).generation > before);
  },
  // ------------------------------------------------------------------ rename
  'rename over an existing file replaces it; the old target loses a link': async (fs) => {
    const a = await file(fs, R, 'a', 'AAA');
    const b = await file(fs, R, 'b', 'BBB');
    await fs.link(root, b.ino, R, 'b-other');
    await fs.rename(root, R, 'a', R, 'b');
    assert.equal((await fs.lookup(root, R, 'b')).ino, a.ino);
    assert.equal(await text(fs, a.ino), 'AAA');
    await errno(fs.lookup(root, R, 'a'), 'ENOENT', 'source name gone');
    assert.equal((await fs.getattr(root, b.ino)).nlink, 1, 'replaced file keeps its other name');
    assert.equal(await text(fs, (await fs.lookup(root, R, 'b-other')).ino), 'BBB');
    // Replacing the last name frees it.
    await file(fs, R, 'c', 'CCC');
    await fs.rename(root, R, 'c', R, 'b-other');
    await errno(fs.getattr(root, b.ino), 'ENOENT', 'last name replaced: inode freed');
    assert.deepEqual(await names(fs, R), ['.', '..', 'b', 'b-other']);
    assert.equal((await fs.getattr(root, R)).size, 2);
  },
  'rename of a directory: over an empty directory, across parents, link counts and ..': async (fs) => {
    const p1 = await fs.mkdir(root, R, 'p1', 0o755);
    const p2 = await fs.mkdir(root, R, 'p2', 0o755);
    const d = await fs.mkdir(root, p1.ino, 'd', 0o755);
    await file(fs, d.ino, 'inside', 'x');
    await fs.mkdir(root, p2.ino, 'empty', 0o755);
    assert.equal((await fs.getattr(root, p1.ino)).nlink, 3);
    assert.equal((await fs.getattr(root, p2.ino)).nlink, 3);
    await fs.rename(root, p1.ino, 'd', p2.ino, 'empty');
    assert.equal((await fs.getattr(root, p1.ino)).nlink, 2, 'old parent lost a subdirectory');
    assert.equal((await fs.getattr(root, p2.ino)).nlink, 3, 'new parent: one replaced by another');
    assert.equal((await fs.lookup(root, d.ino, '..')).ino, p2.ino, '.. follows the move');
    assert.equal((await fs.lookupPath(root, 'p2/empty/inside')).size, 1);
    assert.deepEqual(await names(fs, p2.ino), ['.', '..', 'empty']);
    // Same parent rename keeps counts.
    await fs.rename(root, p2.ino, 'empty', p2.ino, 'moved');
    assert.equal((await fs.getattr(root, p2.ino)).nlink, 3);
    const lst = await fs.readdir(root, d.ino, 0n, 10);
    assert.equal(lst.find((e) => e.name === '..')!.ino, p2.ino);
  },
  'rename no-ops: same name, and two names of one file': async (fs) => {
    const a = await file(fs, R, 'a', 'x');
    await fs.link(root, a.ino, R, 'a2');
    await fs.rename(root, R, 'a', R, 'a');
    await fs.rename(root, R, 'a', R, 'a2');
    assert.deepEqual(await names(fs, R), ['.', '..', 'a', 'a2'], 'POSIX: renaming a name onto another name of the same file does nothing');
    assert.equal((await fs.getattr(root, a.ino)).nlink, 2);
  },
  'RENAME_NOREPLACE and RENAME_EXCHANGE': async (fs) => {
    const a = await file(fs, R, 'a', 'A');
    const b = await file(fs, R, 'b', 'B');
    await errno(fs.rename(root, R, 'a', R, 'b', { noReplace: true }), 'EEXIST', 'noreplace');
    await fs.rename(root, R, 'a', R, 'c', { noReplace: true });
    await fs.rename(root, R, 'c', R, 'b', { exchange: true });
    assert.equal((await fs.lookup(root, R, 'b')).ino, a.ino);
    assert.equal((await fs.lookup(root, R, 'c')).ino, b.ino);
    await errno(fs.rename(root, R, 'c', R, 'zz', { exchange: true }), 'ENOENT', 'exchange with a missing name');
    // Exchange a file and a directory across parents: .. and link counts follow.
    const p = await fs.mkdir(root, R, 'p', 0o755);
    const d = await fs.mkdir(root, p.ino, 'd', 0o755);
    assert.equal((await fs.getattr(root, R)).nlink, 3);
    await fs.rename(root, R, 'b', p.ino, 'd', { exchange: true });
    assert.equal((await fs.lookup(root, R, 'b')).ino, d.ino);
    assert.equal((await fs.lookup(root, p.ino, 'd')).ino, a.ino);
    assert.equal((await fs.lookup(root, d.ino, '..')).ino, R);
    assert.equal((await fs.getattr(root, R)).nlink, 4, 'root gained the directory');
    assert.equal((await fs.getattr(root, p.ino)).nlink, 2, 'p lost it');
    // Exchange a directory with its own descendant's entry is refused.
    const e = await fs.mkdir(root, d.ino, 'e', 0o755);
    await errno(fs.rename(root, R, 'b', e.ino, 'x', { exchange: true }), 'ENOENT', 'exchange needs both');
    await fs.mkdir(root, e.ino, 'x', 0o755);
    await errno(fs.rename(root, R, 'b', e.ino, 'x', { exchange: true }), 'EINVAL', 'exchange into itself');
  },
  // ------------------------------------------------------------------ links
  'hard links: nlink counts, ctime, shared contents, last unlink frees': async (fs) => {
    const a = await file(fs, R, 'a', 'shared');
    assert.equal(a.nlink, 1);
    const d = await fs.mkdir(root, R, 'd', 0o755);
    const l = await fs.link(root, a.ino, d.ino, 'b');
    assert.equal(l.nlink, 2);
    assert.ok(l.ctimeNs >= a.ctimeNs);
    await fs.write(root, a.ino, 6, Buffer.from('!'));
    assert.equal(await text(fs, (await fs.lookup(root, d.ino, 'b')).ino), 'shared!');
    await fs.unlink(root, R, 'a');
    assert.equal((await fs.getattr(root, a.ino)).nlink, 1);
    await fs.link(root, a.ino, R, 'again');
    await fs.unlink(root, d.ino, 'b');
    await fs.unlink(root, R, 'again');
    await errno(fs.getattr(root, a.ino), 'ENOENT', 'freed with its last name');
    await errno(fs.link(root, a.ino, R, 'zombie'), 'ENOENT', 'link to a freed inode');
  },
  'directory nlink: 2 + subdirectories; files do not count': async (fs) => {
    assert.equal((await fs.getattr(root, R)).nlink, 2);
    const d = await fs.mkdir(root, R, 'd', 0o755);
    assert.equal(d.nlink, 2);
    assert.equal((await fs.getattr(root, R)).nlink, 3);
    for (let i = 0; i < 5; i++) await fs.mkdir(root, d.ino, `s${i}`, 0o755);
    await file(fs, d.ino, 'f');
    await fs.symlink(root, d.ino, 'l', 's0');
    assert.equal((await fs.getattr(root, d.ino)).nlink, 7);
    await fs.rmdir(root, d.ino, 's0');
    assert.equal((await fs.getattr(root, d.ino)).nlink, 6);
    await fs.rename(root, d.ino, 's1', R, 's1');
    assert.equal((await fs.getattr(root, d.ino)).nlink, 5);
    assert.equal((await fs.getattr(root, R)).nlink, 4);
    const s2 = await fs.lookup(root, d.ino, 's2');
    fs.pin(s2.ino);
    await fs.rmdir(root, d.ino, 's2');
    assert.equal((await fs.getattr(root, s2.ino)).nlink, 0, 'a removed directory has no links');
    fs.unpin(s2.ino);
  },
  'unlinked but open: still readable and writable until release, then gone': async (fs) => {
    const f = await file(fs, R, 'f', 'still here');
    await fs.open(root, f.ino, O_RDWR);
    await fs.unlink(root, R, 'f');
    await errno(fs.lookup(root, R, 'f'), 'ENOENT', 'name gone');
    assert.equal((await fs.getattr(root, f.ino)).nlink, 0);
    assert.equal(await text(fs, f.ino), 'still here');
    await fs.write(root, f.ino, 0, Buffer.from('STILL'));
    assert.equal(await text(fs, f.ino), 'STILL here');
    await fs.sync(); // a commit while it is open must not write it into the table
    assert.equal(await text(fs, f.ino), 'STILL here');
    await fs.release(f.ino, true);
    await errno(fs.getattr(root, f.ino), 'ENOENT', 'freed at release');
    await errno(fs.read(root, f.ino, 0, 1), 'ENOENT', 'read after release');
  },
  'open with O_TRUNC truncates; directories and symlinks report sizes': async (fs) => {
    const f = await file(fs, R, 'f', 'hello');
    await fs.open(root, f.ino, O_WRONLY | O_TRUNC);
    assert.equal((await fs.getattr(root, f.ino)).size, 0);
    await fs.release(f.ino, false);
    const l = await fs.symlink(root, R, 'l', 'a/b/c');
    assert.equal(l.size, 5);
    assert.equal(l.mode, S_IFLNK | 0o777);
    assert.equal(await fs.readlink(root, l.ino), 'a/b/c');
    const d = await fs.mkdir(root, R, 'd', 0o755);
    assert.equal(d.size, 0);
    await file(fs, d.ino, 'x');
    assert.equal((await fs.getattr(root, d.ino)).size, 1);
  },
  'readdir: . and .., types, resume by cookie, readdirplus attrs': async (fs) => {
    const d = await fs.mkdir(root, R, 'd', 0o755);
    await file(fs, d.ino, 'f');
    await fs.mkdir(root, d.ino, 'sub', 0o755);
    await fs.symlink(root, d.ino, 'l', 'f');
    const all = await fs.readdir(root, d.ino, 0n, 100);
    assert.deepEqual(all.slice(0, 2).map((e) => [e.name, e.ino]), [['.', d.ino], ['..', R]]);
    const types = Object.fromEntries(all.map((e) => [e.name, e.type]));
    assert.deepEqual(types, { '.': S_IFDIR, '..': S_IFDIR, f: S_IFREG, sub: S_IFDIR, l: S_IFLNK });
    for (const e of all) assert.ok(e.cookie > 0n);
    const rest = await fs.readdir(root, d.ino, all[2]!.cookie, 100);
    assert.deepEqual(rest.map((e) => e.name), all.slice(3).map((e) => e.name));
    const plus = await fs.readdirplus(root, d.ino, 0n, 100);
    for (const e of plus) assert.equal(e.attr.ino, e.ino);
    assert.deepEqual(await fs.readdir(root, d.ino, all[all.length - 1]!.cookie, 100), []);
    const root2 = await fs.readdir(root, R, 0n, 100);
    assert.equal(root2.find((e) => e.name === '..')!.ino, R, 'the root is its own parent');
  },
};

for (const [name, run] of Object.entries(cases)) {
  test(name, async () => {
    const store = new MemoryStore();
    const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
    await run(fs);
    await fs.close();
    const r = await checkVolume(store, 'default');
    assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(r.problems));
  });
}
