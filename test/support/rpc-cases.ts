/**
 * A named table of POSIX-ish cases over the `FileSystem` interface (not a mount): each case gets a
 * file system, a fresh empty directory (inode) in it, and two identities. The same table runs
 * against the in-process fs layer and against RpcClient talking to `silt serve`, so the RPC path
 * is held to exactly the fs layer's behaviour, errno for errno.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SEEK_DATA,
  SEEK_HOLE,
  type FileSystem,
  type Identity,
} from '../../src/fs/index.ts';
import { FsError } from '../../src/util/index.ts';

export interface CaseEnv {
  fs: FileSystem;
  /** A fresh, empty directory (mode 0777) for the case. */
  dir: number;
  root: Identity;
  /** An unprivileged identity (uid/gid 1000). */
  user: Identity;
}

export type FsCase = (env: CaseEnv) => Promise<void>;

export async function expectErrno(p: Promise<unknown>, ...errnos: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FsError, `expected FsError ${errnos.join('|')}, got ${String(e)}`);
    assert.ok(errnos.includes(e.errno), `expected ${errnos.join('|')}, got ${e.errno}: ${e.message}`);
    return;
  }
  assert.fail(`expected ${errnos.join('|')}, but it succeeded`);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function names(fs: FileSystem, who: Identity, dir: number): Promise<string[]> {
  const out: string[] = [];
  let cookie = 0n;
  for (;;) {
    const page = await fs.readdir(who, dir, cookie, 100);
    if (page.length === 0) break;
    for (const e of page) out.push(e.name);
    cookie = page[page.length - 1]!.cookie;
  }
  return out.filter((n) => n !== '.' && n !== '..').sort();
}

export const fsCases: Record<string, FsCase> = {
  async createWriteRead({ fs, dir, root }) {
    const a = await fs.create(root, dir, 'f', 0o644);
    assert.equal(a.mode & S_IFMT, S_IFREG);
    assert.equal(a.mode & 0o7777, 0o644);
    assert.equal(a.size, 0);
    const data = randomBytes(300_000);
    assert.equal(await fs.write(root, a.ino, 0, data), data.length);
    assert.equal((await fs.getattr(root, a.ino)).size, data.length);
    assert.deepEqual(Buffer.from(await fs.read(root, a.ino, 0, data.length)), data);
    // Overwrite in the middle; short read at the end of the file.
    await fs.write(root, a.ino, 1000, Buffer.from('hello'));
    const tail = await fs.read(root, a.ino, data.length - 10, 100);
    assert.equal(tail.length, 10);
    const back = Buffer.from(await fs.read(root, a.ino, 995, 15));
    assert.deepEqual(back.subarray(5, 10).toString(), 'hello');
    assert.equal((await fs.lookup(root, dir, 'f')).ino, a.ino);
    await expectErrno(fs.create(root, dir, 'f', 0o644), 'EEXIST');
    await fs.fsync(a.ino, false);
  },

  async largeFileAcrossFrames({ fs, dir, root }) {
    // Larger than one RpcWrite/RpcRead (8 MiB): the client splits, the bytes must come back exact.
    const a = await fs.create(root, dir, 'big', 0o600);
    const data = randomBytes(8 * 1024 * 1024 + 4097);
    assert.equal(await fs.write(root, a.ino, 0, data), data.length);
    const back = await fs.read(root, a.ino, 0, data.length + 4096);
    assert.equal(back.length, data.length);
    assert.equal(sha(back), sha(data));
  },

  async sparseSeekPunch({ fs, dir, root }) {
    const a = await fs.create(root, dir, 'sparse', 0o644);
    await fs.write(root, a.ino, 1 << 20, Buffer.alloc(4096, 7));
    assert.equal((await fs.getattr(root, a.ino)).size, (1 << 20) + 4096);
    const hole = await fs.read(root, a.ino, 0, 4096);
    assert.ok(Buffer.from(hole).equals(Buffer.alloc(4096)));
    assert.equal(await fs.lseek(root, a.ino, 0, SEEK_DATA), 1 << 20);
    assert.equal(await fs.lseek(root, a.ino, 1 << 20, SEEK_HOLE), (1 << 20) + 4096);
    await expectErrno(fs.lseek(root, a.ino, (1 << 20) + 4096, SEEK_DATA), 'ENXIO');
    await fs.fallocate(root, a.ino, 0x03, 1 << 20, 4096); // punch hole, keep size
    assert.ok(Buffer.from(await fs.read(root, a.ino, 1 << 20, 4096)).equals(Buffer.alloc(4096)));
    assert.equal((await fs.getattr(root, a.ino)).size, (1 << 20) + 4096);
  },

  async mkdirRmdir({ fs, dir, root }) {
    const d = await fs.mkdir(root, dir, 'sub', 0o750);
    assert.equal(d.mode & S_IFMT, S_IFDIR);
    assert.equal(d.mode & 0o7777, 0o750);
    assert.equal(d.nlink, 2);
    assert.equal((await fs.getattr(root, dir)).nlink, 3);
    await fs.create(root, d.ino, 'x', 0o644);
    await expectErrno(fs.rmdir(root, dir, 'sub'), 'ENOTEMPTY');
    await expectErrno(fs.unlink(root, dir, 'sub'), 'EISDIR');
    await expectErrno(fs.rmdir(root, d.ino, 'x'), 'ENOTDIR');
    await fs.unlink(root, d.ino, 'x');
    await fs.rmdir(root, dir, 'sub');
    await expectErrno(fs.lookup(root, dir, 'sub'), 'ENOENT');
    assert.equal((await fs.getattr(root, dir)).nlink, 2);
    assert.equal((await fs.lookup(root, dir, '..')).ino !== 0, true);
  },

  async renameCases({ fs, dir, root }) {
    const a = await fs.create(root, dir, 'a', 0o644);
    await fs.write(root, a.ino, 0, Buffer.from('A'));
    const b = await fs.create(root, dir, 'b', 0o644);
    await fs.write(root, b.ino, 0, Buffer.from('B'));
    const sub = await fs.mkdir(root, dir, 'd', 0o755);
    // Plain move into a subdirectory.
    await fs.rename(root, dir, 'a', sub.ino, 'a2');
    await expectErrno(fs.lookup(root, dir, 'a'), 'ENOENT');
    assert.equal((await fs.lookup(root, sub.ino, 'a2')).ino, a.ino);
    // Over an existing target: the target's inode goes.
    await fs.rename(root, sub.ino, 'a2', dir, 'b');
    assert.equal((await fs.lookup(root, dir, 'b')).ino, a.ino);
    assert.equal(Buffer.from(await fs.read(root, a.ino, 0, 10)).toString(), 'A');
    // noReplace and exchange.
    const c = await fs.create(root, dir, 'c', 0o644);
    await expectErrno(fs.rename(root, dir, 'c', dir, 'b', { noReplace: true }), 'EEXIST');
    await fs.rename(root, dir, 'c', dir, 'b', { exchange: true });
    assert.equal((await fs.lookup(root, dir, 'b')).ino, c.ino);
    assert.equal((await fs.lookup(root, dir, 'c')).ino, a.ino);
    // A directory into its own subtree.
    const inner = await fs.mkdir(root, sub.ino, 'inner', 0o755);
    await expectErrno(fs.rename(root, dir, 'd', inner.ino, 'loop'), 'EINVAL');
    await expectErrno(fs.rename(root, dir, 'missing', dir, 'x'), 'ENOENT');
    // A directory over a non-empty directory.
    const e = await fs.mkdir(root, dir, 'e', 0o755);
    await fs.create(root, e.ino, 'keep', 0o644);
    await expectErrno(fs.rename(root, dir, 'd', dir, 'e'), 'ENOTEMPTY', 'EEXIST');
    assert.deepEqual(await names(fs, root, dir), ['b', 'c', 'd', 'e']);
  },

  async readdirPaging({ fs, dir, root }) {
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      const n = `entry-${String(i).padStart(4, '0')}-${'x'.repeat(i % 40)}`;
      await fs.create(root, dir, n, 0o644);
      want.push(n);
    }
    const pageAll = async (limit: number): Promise<{ name: string; cookie: bigint; ino: number }[]> => {
      const out: { name: string; cookie: bigint; ino: number }[] = [];
      let cookie = 0n;
      for (;;) {
        const page = await fs.readdir(root, dir, cookie, limit);
        assert.ok(page.length <= limit);
        if (page.length === 0) break;
        out.push(...page.map((e) => ({ name: e.name, cookie: e.cookie, ino: e.ino })));
        cookie = page[page.length - 1]!.cookie;
      }
      return out;
    };
    const all = await pageAll(17);
    assert.deepEqual(all.slice(0, 2).map((e) => e.name), ['.', '..']);
    assert.deepEqual(all.slice(2).map((e) => e.name).sort(), [...want].sort());
    const cookies = new Set(all.map((e) => e.cookie));
    assert.equal(cookies.size, all.length, 'cookies are unique');
    assert.ok(!cookies.has(0n), 'no cookie is 0');
    // Stable: another pass with another page size yields the same entries with the same cookies.
    assert.deepEqual(await pageAll(1000), all);
    // Resume from a cookie after entries before it were removed: the rest is unchanged.
    const mid = all[150]!;
    for (const e of all.slice(2, 100)) await fs.unlink(root, dir, e.name);
    const rest: string[] = [];
    let cookie = mid.cookie;
    for (;;) {
      const page = await fs.readdir(root, dir, cookie, 64);
      if (!page.length) break;
      rest.push(...page.map((e) => e.name));
      cookie = page[page.length - 1]!.cookie;
    }
    assert.deepEqual(rest, all.slice(151).map((e) => e.name));
    // readdirplus carries attributes.
    const plus = await fs.readdirplus(root, dir, 0n, 5);
    assert.equal(plus.length, 5);
    for (const e of plus) assert.equal(e.attr.ino, e.ino);
  },

  async xattrs({ fs, dir, root }) {
    const f = await fs.create(root, dir, 'x', 0o644);
    const v = randomBytes(1000);
    await fs.setxattr(root, f.ino, 'user.one', v);
    await fs.setxattr(root, f.ino, 'user.empty', new Uint8Array(0));
    assert.deepEqual(Buffer.from(await fs.getxattr(root, f.ino, 'user.one')), v);
    assert.equal((await fs.getxattr(root, f.ino, 'user.empty')).length, 0);
    assert.deepEqual((await fs.listxattr(root, f.ino)).sort(), ['user.empty', 'user.one']);
    await expectErrno(fs.setxattr(root, f.ino, 'user.one', v, { create: true }), 'EEXIST');
    await expectErrno(fs.setxattr(root, f.ino, 'user.two', v, { replace: true }), 'ENODATA');
    await fs.setxattr(root, f.ino, 'user.one', Buffer.from('new'), { replace: true });
    assert.equal(Buffer.from(await fs.getxattr(root, f.ino, 'user.one')).toString(), 'new');
    await fs.removexattr(root, f.ino, 'user.one');
    await expectErrno(fs.getxattr(root, f.ino, 'user.one'), 'ENODATA');
    await expectErrno(fs.removexattr(root, f.ino, 'user.one'), 'ENODATA');
    await expectErrno(fs.setxattr(root, f.ino, 'bogus.ns', v), 'EOPNOTSUPP');
    await expectErrno(fs.setxattr(root, f.ino, 'user.big', Buffer.alloc(65537)), 'E2BIG', 'EINVAL');
  },

  async symlinksAndLinks({ fs, dir, root }) {
    const f = await fs.create(root, dir, 'target', 0o644);
    const l = await fs.symlink(root, dir, 'sym', 'target');
    assert.equal(l.mode & S_IFMT, S_IFLNK);
    assert.equal(await fs.readlink(root, l.ino), 'target');
    await expectErrno(fs.readlink(root, f.ino), 'EINVAL');
    const h = await fs.link(root, f.ino, dir, 'hard');
    assert.equal(h.ino, f.ino);
    assert.equal(h.nlink, 2);
    await expectErrno(fs.link(root, f.ino, dir, 'hard'), 'EEXIST');
    await fs.unlink(root, dir, 'target');
    assert.equal((await fs.getattr(root, f.ino)).nlink, 1);
    assert.equal((await fs.lookup(root, dir, 'hard')).ino, f.ino);
  },

  async setattrTimesTruncate({ fs, dir, root }) {
    const f = await fs.create(root, dir, 't', 0o644);
    await fs.write(root, f.ino, 0, Buffer.alloc(10_000, 1));
    const t = 1_700_000_000_123_456_789n; // beyond 2^53: must survive the wire exactly
    const a = await fs.setattr(root, f.ino, { atimeNs: t, mtimeNs: t + 1n, mode: 0o600, size: 100 });
    assert.equal(a.atimeNs, t);
    assert.equal(a.mtimeNs, t + 1n);
    assert.equal(a.mode & 0o7777, 0o600);
    assert.equal(a.size, 100);
    const g = await fs.getattr(root, f.ino);
    assert.equal(g.mtimeNs, t + 1n);
    assert.equal(g.size, 100);
    const n = await fs.setattr(root, f.ino, { mtimeNs: 'now' });
    assert.ok(n.mtimeNs > t + 1n);
    await fs.setattr(root, f.ino, { uid: 1000, gid: 1000 });
    const o = await fs.getattr(root, f.ino);
    assert.equal(o.uid, 1000);
    assert.equal(o.gid, 1000);
    const d = await fs.mkdir(root, dir, 'dd', 0o755);
    await expectErrno(fs.setattr(root, d.ino, { size: 0 }), 'EISDIR');
  },

  async permissions({ fs, dir, root, user }) {
    const locked = await fs.mkdir(root, dir, 'locked', 0o755);
    await expectErrno(fs.create(user, locked.ino, 'no', 0o644), 'EACCES');
    const f = await fs.create(root, dir, 'rootfile', 0o600);
    await expectErrno(fs.read(user, f.ino, 0, 10), 'EACCES');
    await expectErrno(fs.setattr(user, f.ino, { mode: 0o777 }), 'EPERM');
    await expectErrno(fs.access(user, f.ino, 4), 'EACCES');
    await fs.access(root, f.ino, 6);
    const mine = await fs.create(user, dir, 'userfile', 0o640);
    assert.equal(mine.uid, user.uid);
    assert.equal(mine.gid, user.gid);
    await fs.write(user, mine.ino, 0, Buffer.from('mine'));
    await expectErrno(fs.setxattr(user, f.ino, 'trusted.x', Buffer.from('1')), 'EPERM');
    await expectErrno(fs.mknod(user, dir, 'dev', 0o020644, 0x0101), 'EPERM');
    const fifo = await fs.mknod(user, dir, 'fifo', 0o010644, 0);
    assert.equal(fifo.mode & S_IFMT, 0o010000);
  },

  async openUnlinkRead({ fs, dir, root }) {
    const f = await fs.create(root, dir, 'held', 0o644);
    await fs.write(root, f.ino, 0, Buffer.from('still here'));
    await fs.open(root, f.ino, O_RDONLY);
    fs.pin(f.ino);
    await fs.unlink(root, dir, 'held');
    await expectErrno(fs.lookup(root, dir, 'held'), 'ENOENT');
    assert.equal(Buffer.from(await fs.read(root, f.ino, 0, 100)).toString(), 'still here');
    assert.equal((await fs.getattr(root, f.ino)).nlink, 0);
    await fs.release(f.ino, false);
    fs.unpin(f.ino);
    // O_TRUNC through open truncates.
    const g = await fs.create(root, dir, 'trunc', 0o644);
    await fs.write(root, g.ino, 0, Buffer.alloc(5000, 1));
    const opened = await fs.open(root, g.ino, O_RDWR | O_TRUNC);
    assert.equal(opened.size, 0);
    await fs.release(g.ino, true);
  },

  async namesAndErrors({ fs, dir, root }) {
    await expectErrno(fs.lookup(root, dir, 'nope'), 'ENOENT');
    await expectErrno(fs.create(root, dir, 'n'.repeat(256), 0o644), 'ENAMETOOLONG');
    await expectErrno(fs.create(root, dir, 'a/b', 0o644), 'EINVAL');
    await expectErrno(fs.create(root, dir, '', 0o644), 'ENOENT');
    const f = await fs.create(root, dir, 'file', 0o644);
    await expectErrno(fs.lookup(root, f.ino, 'x'), 'ENOTDIR');
    await expectErrno(fs.readdir(root, f.ino, 0n, 10), 'ENOTDIR');
    await expectErrno(fs.read(root, dir, 0, 10), 'EISDIR');
    await expectErrno(fs.getattr(root, 0x7fff_ffff_ff), 'ENOENT', 'ESTALE');
    // Unicode names round-trip.
    const u = await fs.create(root, dir, 'größe-日本-🙂', 0o644);
    assert.equal((await fs.lookup(root, dir, 'größe-日本-🙂')).ino, u.ino);
    const st = await fs.statfs(root);
    assert.equal(st.nameMax, 255);
    assert.ok(st.blockSize > 0);
  },
};

/** Make a fresh 0777 directory named `name` under the root for a case. */
export async function caseDir(fs: FileSystem, root: Identity, name: string): Promise<number> {
  const d = await fs.mkdir(root, 1, name, 0o777);
  await fs.setattr(root, d.ino, { mode: 0o777 });
  return d.ino;
}

export const ROOT_ID: Identity = { uid: 0, gid: 0, groups: [] };
export const USER_ID: Identity = { uid: 1000, gid: 1000, groups: [] };
