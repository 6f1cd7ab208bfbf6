/**
 * A named table of POSIX cases, go-fuse posixtest style: each case takes a fresh, empty directory
 * on the file system under test and throws on failure. Nothing here knows what serves the
 * directory (a FUSE mount of Silt today; other front ends or a local directory as a reference).
 * Cases use node:fs and ordinary tools (coreutils, util-linux, attr, tar, python3 for calls Node
 * lacks). Cases that need root skip that part when not root.
 *
 * Sizes scale with SILT_POSIX_LARGE_MIB (the large-file case, default 256) and
 * SILT_POSIX_READDIR_N (entries in the concurrent readdir case, default 10000).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { asNobody, py, pySpawn, q, run, sh, sha256, shTry, sleep, treeListing } from './util.ts';

export type PosixCase = (dir: string) => Promise<void>;

const isRoot = process.getuid?.() === 0;

async function expectErrno(p: Promise<unknown>, ...codes: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    assert.ok(codes.includes(code), `expected ${codes.join('|')}, got ${code}: ${String(e)}`);
    return;
  }
  assert.fail(`expected ${codes.join('|')}, but it succeeded`);
}

/** A source tree on the local disk to copy in (the repo's sources and a dependency). */
function sourceTree(): string {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
  return root;
}

// ---------------------------------------------------------------------------------------------
// Files

const createWriteRead: PosixCase = async (dir) => {
  const f = path.join(dir, 'f');
  const data = randomBytes(300_000);
  await fsp.writeFile(f, data);
  assert.deepEqual(await fsp.readFile(f), data);
  const st = await fsp.stat(f);
  assert.equal(st.size, data.length);
  assert.ok(st.isFile());
  // Overwrite in the middle through a handle.
  const h = await fsp.open(f, 'r+');
  await h.write(Buffer.from('hello'), 0, 5, 1000);
  await h.close();
  const back = await fsp.readFile(f);
  assert.equal(back.subarray(1000, 1005).toString(), 'hello');
  assert.deepEqual(back.subarray(0, 1000), data.subarray(0, 1000));
  assert.deepEqual(back.subarray(1005), data.subarray(1005));
};

const exclusiveCreate: PosixCase = async (dir) => {
  const f = path.join(dir, 'x');
  await fsp.writeFile(f, 'one', { flag: 'wx' });
  await expectErrno(fsp.writeFile(f, 'two', { flag: 'wx' }), 'EEXIST');
  assert.equal(await fsp.readFile(f, 'utf8'), 'one');
  // O_TRUNC through open.
  await fsp.writeFile(f, 'longer content');
  await fsp.writeFile(f, 'ab');
  assert.equal(await fsp.readFile(f, 'utf8'), 'ab');
  // Create as read-only mode but write through the creating descriptor (POSIX allows it).
  const ro = path.join(dir, 'ro');
  const h = await fsp.open(ro, 'wx', 0o444);
  await h.write('still writable');
  await h.close();
  assert.equal(await fsp.readFile(ro, 'utf8'), 'still writable');
};

const append: PosixCase = async (dir) => {
  const f = path.join(dir, 'log');
  for (let i = 0; i < 50; i++) await fsp.appendFile(f, `line ${i}\n`);
  const lines = (await fsp.readFile(f, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 50);
  assert.equal(lines[49], 'line 49');
  // Two O_APPEND descriptors interleaved: nothing is overwritten.
  const a = await fsp.open(f, 'a');
  const b = await fsp.open(f, 'a');
  for (let i = 0; i < 20; i++) {
    await a.write(`a${i}\n`);
    await b.write(`b${i}\n`);
  }
  await a.close();
  await b.close();
  const all = (await fsp.readFile(f, 'utf8')).trim().split('\n');
  assert.equal(all.length, 90);
  assert.equal(all.filter((l) => l.startsWith('a')).length, 20);
  // Shell append.
  await sh(`echo tail >> ${q(f)}`);
  assert.ok((await fsp.readFile(f, 'utf8')).endsWith('tail\n'));
};

const truncateCase: PosixCase = async (dir) => {
  const f = path.join(dir, 't');
  await fsp.writeFile(f, Buffer.alloc(10_000, 0x61));
  await fsp.truncate(f, 100);
  assert.equal((await fsp.stat(f)).size, 100);
  await fsp.truncate(f, 5000);
  const b = await fsp.readFile(f);
  assert.equal(b.length, 5000);
  assert.ok(b.subarray(0, 100).every((x) => x === 0x61));
  assert.ok(b.subarray(100).every((x) => x === 0));
  // truncate(1) and ftruncate on an open handle.
  await sh(`truncate -s 1M ${q(f)} && truncate -s 10 ${q(f)}`);
  assert.equal((await fsp.stat(f)).size, 10);
  const h = await fsp.open(f, 'r+');
  await h.truncate(3);
  await h.close();
  assert.equal(await fsp.readFile(f, 'utf8'), 'aaa');
};

const unlinkOpenFile: PosixCase = async (dir) => {
  const f = path.join(dir, 'gone');
  await fsp.writeFile(f, 'still here');
  const h = await fsp.open(f, 'r+');
  await fsp.unlink(f);
  assert.deepEqual(await fsp.readdir(dir), []);
  await expectErrno(fsp.stat(f), 'ENOENT');
  const buf = Buffer.alloc(10);
  await h.read(buf, 0, 10, 0);
  assert.equal(buf.toString(), 'still here');
  await h.write('STILL', 0);
  await h.read(buf, 0, 10, 0);
  assert.equal(buf.toString(), 'STILL here');
  assert.equal((await h.stat()).nlink, 0);
  await h.close();
};

const directories: PosixCase = async (dir) => {
  await fsp.mkdir(path.join(dir, 'a/b/c'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'a/b/c/f'), 'x');
  await expectErrno(fsp.rmdir(path.join(dir, 'a/b')), 'ENOTEMPTY', 'EEXIST');
  await expectErrno(fsp.rmdir(path.join(dir, 'a/b/c/f')), 'ENOTDIR');
  await expectErrno(fsp.unlink(path.join(dir, 'a/b')), 'EISDIR', 'EPERM');
  await expectErrno(fsp.mkdir(path.join(dir, 'a')), 'EEXIST');
  assert.equal((await fsp.stat(path.join(dir, 'a'))).nlink, 3);
  await fsp.rm(path.join(dir, 'a'), { recursive: true });
  assert.deepEqual(await fsp.readdir(dir), []);
  // Long names.
  await fsp.writeFile(path.join(dir, 'n'.repeat(255)), '');
  await expectErrno(fsp.writeFile(path.join(dir, 'n'.repeat(256)), ''), 'ENAMETOOLONG');
  // Unicode names round-trip.
  const uni = 'ünïcødé ☃ 名前';
  await fsp.writeFile(path.join(dir, uni), 'u');
  assert.ok((await fsp.readdir(dir)).includes(uni));
};

const renames: PosixCase = async (dir) => {
  const p = (s: string): string => path.join(dir, s);
  await fsp.writeFile(p('a'), 'A');
  await fsp.rename(p('a'), p('b'));
  assert.equal(await fsp.readFile(p('b'), 'utf8'), 'A');
  await expectErrno(fsp.stat(p('a')), 'ENOENT');
  // Over an existing file: the target is replaced atomically.
  await fsp.writeFile(p('c'), 'C');
  const oldIno = (await fsp.stat(p('c'))).ino;
  await fsp.rename(p('b'), p('c'));
  assert.equal(await fsp.readFile(p('c'), 'utf8'), 'A');
  assert.notEqual((await fsp.stat(p('c'))).ino, oldIno);
  // Directories, across parents, over an empty directory, not over a non-empty one.
  await fsp.mkdir(p('d1/sub'), { recursive: true });
  await fsp.writeFile(p('d1/sub/f'), 'F');
  await fsp.mkdir(p('d2'));
  await fsp.rename(p('d1/sub'), p('d2/moved'));
  assert.equal(await fsp.readFile(p('d2/moved/f'), 'utf8'), 'F');
  assert.equal((await fsp.stat(p('d1'))).nlink, 2);
  assert.equal((await fsp.stat(p('d2'))).nlink, 3);
  await fsp.mkdir(p('empty'));
  await fsp.rename(p('d2/moved'), p('empty'));
  assert.equal(await fsp.readFile(p('empty/f'), 'utf8'), 'F');
  await fsp.mkdir(p('full'));
  await fsp.writeFile(p('full/x'), '');
  await expectErrno(fsp.rename(p('empty'), p('full')), 'ENOTEMPTY', 'EEXIST');
  await expectErrno(fsp.rename(p('empty'), p('empty/inside')), 'EINVAL');
  await expectErrno(fsp.rename(p('c'), p('full')), 'EISDIR');
  await expectErrno(fsp.rename(p('full'), p('c')), 'ENOTDIR');
  // Shell mv: files and directories, over existing ones.
  await sh(`cd ${q(dir)} && echo 1 > m1 && echo 2 > m2 && mv m1 m2 && test "$(cat m2)" = 1 && test ! -e m1`);
  await sh(`cd ${q(dir)} && mkdir -p t1/in t2 && echo z > t1/in/z && mv t1 t2/ && test -f t2/t1/in/z`);
  await sh(`cd ${q(dir)} && mkdir -p over/src overdst && echo s > over/src/s && mv -T over/src overdst && test -f overdst/s`);
};

/** renameat2 flags through ctypes (Node has no renameat2). */
const rename2: PosixCase = async (dir) => {
  await fsp.writeFile(path.join(dir, 'x'), 'X');
  await fsp.writeFile(path.join(dir, 'y'), 'Y');
  await fsp.mkdir(path.join(dir, 'z'));
  const out = await py(
    `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT = -100
def r2(a, b, flags):
    rc = libc.renameat2(AT, a.encode(), AT, b.encode(), flags)
    return 0 if rc == 0 else ctypes.get_errno()
d = sys.argv[1]
p = lambda s: os.path.join(d, s)
print(r2(p('x'), p('y'), 1))          # NOREPLACE onto existing -> EEXIST
print(r2(p('x'), p('y'), 2))          # EXCHANGE
print(open(p('x')).read(), open(p('y')).read())
print(r2(p('x'), p('z'), 2))          # EXCHANGE file <-> dir
print(os.path.isdir(p('x')), open(p('z')).read())
print(r2(p('y'), p('new'), 1))        # NOREPLACE onto nothing -> ok
print(r2(p('new'), p('nothere'), 2))  # EXCHANGE with a missing target -> ENOENT
print(r2(p('new'), p('x'), 3))        # both flags -> EINVAL
`,
    [dir],
  );
  assert.deepEqual(out.trim().split('\n'), ['17', '0', 'Y X', '0', 'True Y', '0', '2', '22']);
};

const hardlinks: PosixCase = async (dir) => {
  const a = path.join(dir, 'a');
  await fsp.writeFile(a, 'shared');
  await fsp.link(a, path.join(dir, 'b'));
  await sh(`cd ${q(dir)} && ln a c`);
  const [sa, sb, sc] = await Promise.all(['a', 'b', 'c'].map((n) => fsp.stat(path.join(dir, n))));
  assert.equal(sa!.ino, sb!.ino);
  assert.equal(sa!.ino, sc!.ino);
  assert.equal(sa!.nlink, 3);
  await fsp.appendFile(path.join(dir, 'b'), '!');
  assert.equal(await fsp.readFile(path.join(dir, 'c'), 'utf8'), 'shared!');
  await fsp.unlink(a);
  assert.equal((await fsp.stat(path.join(dir, 'b'))).nlink, 2);
  await fsp.mkdir(path.join(dir, 'd'));
  await expectErrno(fsp.link(path.join(dir, 'd'), path.join(dir, 'dl')), 'EPERM');
  await expectErrno(fsp.link(path.join(dir, 'b'), path.join(dir, 'c')), 'EEXIST');
};

const symlinks: PosixCase = async (dir) => {
  await fsp.writeFile(path.join(dir, 'target'), 'T');
  await fsp.symlink('target', path.join(dir, 'rel'));
  await sh(`cd ${q(dir)} && ln -s ${q(path.join(dir, 'target'))} abs && ln -s nowhere dangling && ln -sf target dangling`);
  assert.equal(await fsp.readlink(path.join(dir, 'rel')), 'target');
  assert.equal(await fsp.readFile(path.join(dir, 'abs'), 'utf8'), 'T');
  assert.equal(await fsp.readlink(path.join(dir, 'dangling')), 'target');
  const l = await fsp.lstat(path.join(dir, 'rel'));
  assert.ok(l.isSymbolicLink());
  assert.equal(l.size, 'target'.length);
  await fsp.symlink('x'.repeat(1000), path.join(dir, 'long'));
  assert.equal((await fsp.readlink(path.join(dir, 'long'))).length, 1000);
  await fsp.symlink('missing', path.join(dir, 'broken'));
  await expectErrno(fsp.readFile(path.join(dir, 'broken')), 'ENOENT');
};

const attributes: PosixCase = async (dir) => {
  const f = path.join(dir, 'f');
  await fsp.writeFile(f, 'x');
  await fsp.chmod(f, 0o640);
  assert.equal((await fsp.stat(f)).mode & 0o7777, 0o640);
  await sh(`chmod u+s,g+s,o+t ${q(f)}`);
  assert.equal((await fsp.stat(f)).mode & 0o7777, 0o7640);
  if (isRoot) {
    await fsp.chown(f, 1234, 5678);
    let st = await fsp.stat(f);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    await sh(`chown 42:43 ${q(f)}`);
    st = await fsp.stat(f);
    assert.equal(st.uid, 42);
    assert.equal(st.gid, 43);
  }
  // touch -d and utimes with nanoseconds.
  await sh(`touch -d '2001-02-03 04:05:06.123456789 UTC' ${q(f)}`);
  const st = await fsp.stat(f, { bigint: true });
  assert.equal(st.mtimeNs, 981173106123456789n);
  assert.equal(st.atimeNs, 981173106123456789n);
  await fsp.utimes(f, 1_000_000, 2_000_000);
  const st2 = await fsp.stat(f);
  assert.equal(st2.mtimeMs, 2_000_000_000);
  assert.equal(st2.atimeMs, 1_000_000_000);
  // touch with no date moves mtime to now; ctime follows every change.
  const before = Date.now() - 5000;
  await sh(`touch ${q(f)}`);
  assert.ok((await fsp.stat(f)).mtimeMs >= before);
  assert.ok((await fsp.stat(f)).ctimeMs >= before);
  // Symlink times with touch -h.
  await fsp.symlink('f', path.join(dir, 'l'));
  await sh(`touch -h -d '2002-01-01 00:00:00 UTC' ${q(path.join(dir, 'l'))}`);
  assert.equal((await fsp.lstat(path.join(dir, 'l'))).mtimeMs, Date.UTC(2002, 0, 1));
  // A write moves mtime.
  await fsp.utimes(f, 1, 1);
  await fsp.appendFile(f, 'y');
  assert.ok((await fsp.stat(f)).mtimeMs >= before);
};

const xattrs: PosixCase = async (dir) => {
  const f = path.join(dir, 'f');
  await fsp.writeFile(f, '');
  await sh(`setfattr -n user.color -v blue ${q(f)} && setfattr -n user.empty ${q(f)}`);
  const dump = await sh(`getfattr -d ${q(f)}`);
  assert.match(dump, /user\.color="blue"/);
  assert.equal((await sh(`getfattr --only-values -n user.color ${q(f)}`)), 'blue');
  // A value of a few KiB (Samba's security.NTACL, user.DOSATTRIB, streams).
  const big = 'v'.repeat(3000);
  await sh(`setfattr -n user.big -v ${big} ${q(f)}`);
  assert.equal((await sh(`getfattr --only-values -n user.big ${q(f)}`)).length, 3000);
  if (isRoot) await sh(`setfattr -n security.NTACL -v 0x0102030405 ${q(f)} && getfattr -n security.NTACL ${q(f)}`);
  await sh(`setfattr -x user.color ${q(f)}`);
  const r = await shTry(`getfattr -n user.color ${q(f)}`);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /No such attribute/);
  const out = await py(
    `
import os, sys, errno
f = sys.argv[1]
os.setxattr(f, 'user.a', b'1')
try:
    os.setxattr(f, 'user.a', b'2', os.XATTR_CREATE); print('no error')
except OSError as e: print(errno.errorcode[e.errno])
try:
    os.setxattr(f, 'user.nothere', b'2', os.XATTR_REPLACE); print('no error')
except OSError as e: print(errno.errorcode[e.errno])
os.setxattr(f, 'user.a', b'3', os.XATTR_REPLACE)
print(os.getxattr(f, 'user.a').decode())
print(sorted(os.listxattr(f)))
`,
    [f],
  );
  const lines = out.trim().split('\n');
  assert.equal(lines[0], 'EEXIST');
  assert.equal(lines[1], 'ENODATA');
  assert.equal(lines[2], '3');
  assert.ok(lines[3]!.includes("'user.a'") && lines[3]!.includes("'user.big'") && !lines[3]!.includes('user.color'));
  // Directories and symlinks' own xattrs (user.* is not allowed on symlinks by Linux).
  await fsp.mkdir(path.join(dir, 'd'));
  await sh(`setfattr -n user.dir -v yes ${q(path.join(dir, 'd'))}`);
  assert.equal(await sh(`getfattr --only-values -n user.dir ${q(path.join(dir, 'd'))}`), 'yes');
};

const sparse: PosixCase = async (dir) => {
  const f = path.join(dir, 'sparse');
  await sh(`dd if=/dev/urandom of=${q(f)} bs=4096 count=1 status=none && dd if=/dev/urandom of=${q(f)} bs=4096 count=2 seek=2560 conv=notrunc status=none`);
  const st = await fsp.stat(f);
  assert.equal(st.size, 2562 * 4096);
  assert.ok(st.blocks * 512 < st.size / 4, `sparse file allocates ${st.blocks * 512} of ${st.size}`);
  const b = await fsp.readFile(f);
  assert.ok(b.subarray(4096, 2560 * 4096).every((x) => x === 0));
  const out = await py(
    `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_DATA))
print(os.lseek(fd, 0, os.SEEK_HOLE))
print(os.lseek(fd, 8192, os.SEEK_DATA))
print(os.lseek(fd, 2560*4096, os.SEEK_HOLE))
try:
    os.lseek(fd, 2562*4096, os.SEEK_DATA); print('no error')
except OSError as e: print(e.errno)
`,
    [f],
  );
  const [d0, h0, d1, h1, enx] = out.trim().split('\n').map(Number);
  assert.equal(d0, 0);
  assert.ok(h0! >= 4096 && h0! < 2560 * 4096, `first hole at ${h0}`);
  assert.ok(d1! > 8192 && d1! <= 2560 * 4096, `data after the hole at ${d1}`);
  assert.equal(h1, 2562 * 4096);
  assert.equal(enx, 6); // ENXIO
};

const fallocate: PosixCase = async (dir) => {
  const f = path.join(dir, 'fa');
  await sh(`fallocate -l 1M ${q(f)}`);
  assert.equal((await fsp.stat(f)).size, 1 << 20);
  await fsp.writeFile(f, Buffer.alloc(1 << 20, 0x55));
  await sh(`fallocate -p -o 4096 -l 65536 ${q(f)}`);
  const b = await fsp.readFile(f);
  assert.equal(b.length, 1 << 20);
  assert.ok(b.subarray(0, 4096).every((x) => x === 0x55));
  assert.ok(b.subarray(4096, 4096 + 65536).every((x) => x === 0));
  assert.ok(b.subarray(4096 + 65536).every((x) => x === 0x55));
  await sh(`fallocate -n -l 4M ${q(f)}`); // KEEP_SIZE
  assert.equal((await fsp.stat(f)).size, 1 << 20);
};

const special: PosixCase = async (dir) => {
  await sh(`mkfifo ${q(path.join(dir, 'fifo'))}`);
  assert.ok((await fsp.stat(path.join(dir, 'fifo'))).isFIFO());
  if (isRoot) {
    await sh(`mknod ${q(path.join(dir, 'null'))} c 1 3`);
    const st = await fsp.stat(path.join(dir, 'null'));
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, (1 << 8) | 3);
  }
  const sf = await fsp.statfs(dir);
  assert.ok(sf.bsize > 0 && sf.blocks > 0);
  assert.match(await sh(`df -P ${q(dir)}`), /\d+%/);
};

const fsyncAndMmap: PosixCase = async (dir) => {
  const f = path.join(dir, 'm');
  const out = await py(
    `
import os, sys, mmap
f = sys.argv[1]
fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'\\0' * 65536)
os.fsync(fd)
os.fdatasync(fd)
m = mmap.mmap(fd, 65536)
m[100:105] = b'mmap!'
m.flush()
m.close()
os.close(fd)
d = os.open(os.path.dirname(f), os.O_RDONLY)
os.fsync(d)
os.close(d)
os.sync()
print(open(f, 'rb').read()[100:105].decode())
`,
    [f],
  );
  assert.equal(out.trim(), 'mmap!');
  assert.equal((await fsp.readFile(f)).subarray(100, 105).toString(), 'mmap!');
};

// ---------------------------------------------------------------------------------------------
// Trees and tools

const cpTree: PosixCase = async (dir) => {
  // Copy from a private snapshot: the repository's own tree may change while we copy.
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'posix-cp-'));
  try {
    const src = path.join(tmp, 'src');
    await sh(`cp -a ${q(path.join(sourceTree(), 'src'))} ${q(src)} && cp -a ${q(path.join(sourceTree(), 'node_modules/commander'))} ${q(path.join(src, 'commander'))}`);
    const dst = path.join(dir, 'src');
    await sh(`cp -a ${q(src)} ${q(dst)}`);
    await sh(`diff -r ${q(src)} ${q(dst)}`);
    assert.equal(await treeListing(dst), await treeListing(src));
    // Copy it again within the mount (reads and writes both on the mount).
    await sh(`cp -a ${q(dst)} ${q(dst + '2')} && diff -r ${q(src)} ${q(dst + '2')}`);
    assert.equal(await treeListing(dst + '2'), await treeListing(src));
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
};

const tarExtract: PosixCase = async (dir) => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'posix-tar-'));
  try {
    const src = path.join(tmp, 'tree');
    // A tree with what tar must keep: modes, symlinks, hard links, empty dirs, mtimes.
    await sh(
      `mkdir -p ${q(src)} && cd ${q(src)} && cp -a ${q(path.join(sourceTree(), 'node_modules/commander'))} commander && ` +
        `mkdir -p empty/deeper && ln -s commander/package.json pj && ln commander/package.json hard && ` +
        `chmod 0750 empty && chmod 0600 hard && touch -d '2010-10-10 10:10:10' empty/deeper`,
    );
    await sh(`tar -C ${q(tmp)} --format=posix -cf ${q(path.join(tmp, 't.tar'))} tree`);
    await sh(`tar -C ${q(dir)} -xpf ${q(path.join(tmp, 't.tar'))}`);
    await sh(`diff -r ${q(src)} ${q(path.join(dir, 'tree'))}`);
    assert.equal(await treeListing(path.join(dir, 'tree')), await treeListing(src));
    const a = await fsp.stat(path.join(dir, 'tree/hard'));
    assert.equal(a.nlink, 2);
    // And back out of the mount.
    await sh(`tar -C ${q(dir)} -cf - tree | tar -C ${q(tmp)} -xf - --transform s/^tree/back/ && diff -r ${q(src)} ${q(path.join(tmp, 'back'))}`);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
};

const largeFile: PosixCase = async (dir) => {
  const mib = Number(process.env['SILT_POSIX_LARGE_MIB'] ?? 256);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'posix-large-'));
  try {
    const src = path.join(tmp, 'src');
    await sh(`head -c ${mib}M /dev/urandom > ${q(src)}`);
    const want = await sha256(src);
    const dst = path.join(dir, 'large');
    let t = Date.now();
    await sh(`dd if=${q(src)} of=${q(dst)} bs=1M conv=fsync status=none`, { timeoutMs: 600_000 });
    const writeMBs = (mib * 1.048576) / ((Date.now() - t) / 1000);
    t = Date.now();
    assert.equal(await sha256(dst), want);
    const readMBs = (mib * 1.048576) / ((Date.now() - t) / 1000);
    assert.equal((await fsp.stat(dst)).size, mib << 20);
    // Rewrite a range in the middle and compare again.
    await sh(`dd if=/dev/urandom of=${q(src)} bs=1M count=3 seek=${Math.floor(mib / 2)} conv=notrunc status=none`);
    await sh(`dd if=${q(src)} of=${q(dst)} bs=1M count=3 skip=${Math.floor(mib / 2)} seek=${Math.floor(mib / 2)} conv=notrunc,fsync status=none`);
    assert.equal(await sha256(dst), await sha256(src));
    process.stderr.write(`# large file ${mib} MiB: write+fsync ${writeMBs.toFixed(0)} MB/s, read+sha256 ${readMBs.toFixed(0)} MB/s\n`);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
};

/** readdir of N entries while another process keeps creating files in the same directory. */
const readdirWhileCreating: PosixCase = async (dir) => {
  const n = Number(process.env['SILT_POSIX_READDIR_N'] ?? 10_000);
  await py(
    `
import os, sys
d = sys.argv[1]
for i in range(int(sys.argv[2])):
    os.close(os.open(os.path.join(d, 'f%05d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
`,
    [dir, String(n)],
    300_000,
  );
  const creator = pySpawn(
    `
import os, sys, time
d = sys.argv[1]
for i in range(3000):
    os.close(os.open(os.path.join(d, 'new%05d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
print('created')
`,
    [dir],
  );
  // Several full listings while the creator runs: every original name exactly once each time.
  for (let round = 0; round < 3; round++) {
    const names = await fsp.readdir(dir);
    const seen = new Set<string>();
    for (const name of names) {
      assert.ok(!seen.has(name), `duplicate entry ${name}`);
      seen.add(name);
    }
    for (let i = 0; i < n; i++) assert.ok(seen.has(`f${String(i).padStart(5, '0')}`), `missing f${i} in round ${round}`);
  }
  const lsCount = Number((await sh(`ls -f ${q(dir)} | grep -c '^f'`)).trim());
  assert.equal(lsCount, n);
  const r = await creator.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await fsp.readdir(dir)).length, n + 3000);
  // ls -l (READDIRPLUS) agrees with readdir.
  const long = (await sh(`ls -l ${q(dir)} | tail -n +2 | wc -l`)).trim();
  assert.equal(Number(long), n + 3000);
};

const concurrentWriters: PosixCase = async (dir) => {
  const shared = path.join(dir, 'shared');
  const mib = 2;
  const writers = 4;
  await sh(`truncate -s ${mib * writers}M ${q(shared)}`);
  const jobs: Array<Promise<unknown>> = [];
  for (let w = 0; w < writers; w++) {
    // Each writer fills its own region of the shared file and its own file.
    jobs.push(sh(`yes w${w} | head -c ${mib}M | dd of=${q(shared)} bs=64K seek=${(w * mib * 1024) / 64} conv=notrunc iflag=fullblock status=none`));
    jobs.push(sh(`yes own${w} | head -c ${mib}M | dd of=${q(path.join(dir, `own${w}`))} bs=64K iflag=fullblock status=none`));
  }
  await Promise.all(jobs);
  const b = await fsp.readFile(shared);
  for (let w = 0; w < writers; w++) {
    const region = b.subarray(w * mib * 1024 * 1024, (w + 1) * mib * 1024 * 1024);
    const expect = Buffer.from(`w${w}\n`.repeat((mib * 1024 * 1024) / 3 + 1)).subarray(0, mib * 1024 * 1024);
    assert.ok(region.equals(expect), `region ${w} differs`);
    const own = await fsp.readFile(path.join(dir, `own${w}`));
    assert.equal(own.length, mib * 1024 * 1024);
    assert.equal(own.subarray(0, 5).toString(), `own${w}\n`);
  }
};

// ---------------------------------------------------------------------------------------------
// Locks between processes

const flockTwoProcesses: PosixCase = async (dir) => {
  const f = path.join(dir, 'lockfile');
  await fsp.writeFile(f, '');
  const holder = run('flock', ['-x', f, '-c', 'echo held; sleep 1.5']);
  await sleep(400);
  const nb = await shTry(`flock -n -x ${q(f)} true`);
  assert.equal(nb.code, 1, 'flock -n must fail while another process holds it');
  const nbs = await shTry(`flock -n -s ${q(f)} true`);
  assert.equal(nbs.code, 1, 'shared flock must fail against an exclusive one');
  const t = Date.now();
  await sh(`flock -w 10 -x ${q(f)} true`);
  assert.ok(Date.now() - t >= 500, 'the blocking flock returned before the holder released');
  assert.equal((await holder).code, 0);
  // Shared locks coexist.
  const s1 = run('flock', ['-s', f, '-c', 'sleep 1']);
  await sleep(300);
  assert.equal((await shTry(`flock -n -s ${q(f)} true`)).code, 0);
  assert.equal((await shTry(`flock -n -x ${q(f)} true`)).code, 1);
  await s1;
  // The lock dies with its holder's last close (kill the holder).
  const dying = pySpawn(
    `
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(30)
`,
    [f],
  );
  await sleep(600);
  assert.equal((await shTry(`flock -n -x ${q(f)} true`)).code, 1);
  process.kill(dying.pid, 'SIGKILL');
  await dying.done;
  await sh(`flock -w 5 -x ${q(f)} true`);
};

const fcntlTwoProcesses: PosixCase = async (dir) => {
  const f = path.join(dir, 'rangefile');
  await fsp.writeFile(f, Buffer.alloc(1000));
  const holder = pySpawn(
    `
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0, os.SEEK_SET)     # bytes 0..99 exclusive
fcntl.lockf(fd, fcntl.LOCK_SH, 100, 500, os.SEEK_SET)   # bytes 500..599 shared
print('locked', flush=True)
time.sleep(1.5)
os.close(fd)  # any close drops the process's POSIX locks
time.sleep(3)
`,
    [f],
  );
  await sleep(600);
  const out = await py(
    `
import fcntl, os, sys, struct, time, errno
fd = os.open(sys.argv[1], os.O_RDWR)
def try_lock(kind, length, start):
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB, length, start, os.SEEK_SET); fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print(try_lock(fcntl.LOCK_EX, 100, 0))     # conflicts
print(try_lock(fcntl.LOCK_EX, 10, 50))     # overlaps the exclusive range
print(try_lock(fcntl.LOCK_EX, 100, 200))   # free range
print(try_lock(fcntl.LOCK_SH, 100, 500))   # shared with shared
print(try_lock(fcntl.LOCK_EX, 1, 550))     # exclusive against shared
# F_GETLK names the holder.
lk = struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, 0, 10, 0)
res = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, lk + b'\\0' * 4)[:28])
print(res[0] == fcntl.F_WRLCK, res[2], res[3], res[4])
t = time.time()
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0, os.SEEK_SET)  # F_SETLKW: waits for the holder's close
print('waited', round(time.time() - t, 1) >= 0.3)
`,
    [f],
  );
  const lines = out.trim().split('\n');
  assert.deepEqual(lines.slice(0, 5), ['EAGAIN', 'EAGAIN', 'ok', 'ok', 'EAGAIN'].map((x) => x));
  const getlk = lines[5]!.split(' ');
  assert.equal(getlk[0], 'True');
  assert.equal(getlk[1], '0');
  assert.equal(getlk[2], '100');
  assert.equal(Number(getlk[3]), holder.pid);
  assert.equal(lines[6], 'waited True');
  const h = await holder.done;
  assert.equal(h.code, 0, h.stderr);
};

/** A blocked F_SETLKW is interrupted by a signal (FUSE INTERRUPT -> EINTR). */
const lockInterrupt: PosixCase = async (dir) => {
  const f = path.join(dir, 'intr');
  await fsp.writeFile(f, 'x');
  const holder = pySpawn(
    `
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(4)
`,
    [f],
  );
  await sleep(600);
  const out = await py(
    `
import fcntl, os, sys, signal, time
class Alarm(Exception): pass
def on_alarm(*_): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
fd = os.open(sys.argv[1], os.O_RDWR)
signal.setitimer(signal.ITIMER_REAL, 0.5)
t = time.time()
try:
    fcntl.lockf(fd, fcntl.LOCK_EX); print('acquired')
except Alarm: print('interrupted', round(time.time() - t, 1) < 3)
`,
    [f],
  );
  assert.equal(out.trim(), 'interrupted True');
  await holder.done;
};

// ---------------------------------------------------------------------------------------------
// Permissions (needs root to become someone else)

const permissions: PosixCase = async (dir) => {
  if (!isRoot) return;
  const p = (s: string): string => path.join(dir, s);
  await fsp.chmod(dir, 0o755);
  await fsp.writeFile(p('secret'), 'secret');
  await fsp.chmod(p('secret'), 0o600);
  await fsp.writeFile(p('public'), 'public');
  await fsp.chmod(p('public'), 0o644);
  await fsp.writeFile(p('group'), 'group');
  await fsp.chown(p('group'), 0, 4242);
  await fsp.chmod(p('group'), 0o640);
  await fsp.mkdir(p('sticky'));
  await fsp.chmod(p('sticky'), 0o1777);
  await fsp.writeFile(p('sticky/roots'), 'r');
  await fsp.mkdir(p('private'));
  await fsp.chmod(p('private'), 0o700);

  const denied = async (cmd: string, groups: number[] = []): Promise<void> => {
    const r = await asNobody(cmd, groups);
    assert.notEqual(r.code, 0, `as nobody this must fail: ${cmd}`);
    assert.match(r.stderr, /Permission denied|Operation not permitted/, `${cmd}: ${r.stderr}`);
  };
  const allowed = async (cmd: string, groups: number[] = []): Promise<string> => {
    const r = await asNobody(cmd, groups);
    assert.equal(r.code, 0, `as nobody this must work: ${cmd}\n${r.stderr}`);
    return r.stdout;
  };
  await denied(`cat ${q(p('secret'))}`);
  assert.equal(await allowed(`cat ${q(p('public'))}`), 'public');
  await denied(`echo x >> ${q(p('public'))}`);
  await denied(`touch ${q(p('new'))}`);
  await denied(`rm -f ${q(p('public'))}`);
  await denied(`chmod 777 ${q(p('public'))}`);
  await denied(`ls ${q(p('private'))}`);
  await denied(`cat ${q(p('group'))}`);
  // Supplementary groups come from the caller's process.
  assert.equal(await allowed(`cat ${q(p('group'))}`, [4242]), 'group');
  // Sticky directory: create own files, not remove others'.
  await allowed(`echo mine > ${q(p('sticky/mine'))} && rm ${q(p('sticky/mine'))}`);
  await denied(`rm -f ${q(p('sticky/roots'))}`);
  await denied(`mv ${q(p('sticky/roots'))} ${q(p('sticky/stolen'))}`);
  // Ownership: nobody may chmod its own file but not give it away.
  await allowed(`echo n > ${q(p('sticky/own'))} && chmod 600 ${q(p('sticky/own'))}`);
  await denied(`chown 0 ${q(p('sticky/own'))}`);
  assert.equal((await fsp.stat(p('sticky/own'))).uid, 65534);
  // An unprivileged write clears setuid (and setgid on group-executable files).
  await fsp.chown(p('sticky/own'), 65534, 65534);
  await fsp.chmod(p('sticky/own'), 0o6775);
  await allowed(`echo more >> ${q(p('sticky/own'))}`);
  await sleep(1100); // attribute cache
  assert.equal((await fsp.stat(p('sticky/own'))).mode & 0o7777, 0o775);
};

// ---------------------------------------------------------------------------------------------

/** The table: name -> case. Order is the order a runner should use (cheap ones first). */
export const posixCases: Readonly<Record<string, PosixCase>> = {
  'create-write-read': createWriteRead,
  'exclusive-create-and-trunc': exclusiveCreate,
  append,
  truncate: truncateCase,
  'unlink-open-file': unlinkOpenFile,
  directories,
  renames,
  rename2,
  hardlinks,
  symlinks,
  'attributes-chmod-chown-touch': attributes,
  xattrs,
  'sparse-dd-seek-data-hole': sparse,
  fallocate,
  'special-files-statfs': special,
  'fsync-mmap': fsyncAndMmap,
  'cp-a-diff': cpTree,
  'tar-extract': tarExtract,
  'concurrent-writers': concurrentWriters,
  'flock-two-processes': flockTwoProcesses,
  'fcntl-locks-two-processes': fcntlTwoProcesses,
  'setlkw-interrupt': lockInterrupt,
  'permissions-nonroot': permissions,
  'readdir-while-creating': readdirWhileCreating,
  'large-file-sha256': largeFile,
};

/** Cases that take long; a quick runner may skip them. */
export const slowCases: ReadonlySet<string> = new Set(['readdir-while-creating', 'large-file-sha256']);

/** Run every case (or `only`) in its own subdirectory of `root`; returns failures by name. */
export async function runPosixCases(root: string, only?: readonly string[]): Promise<Map<string, unknown>> {
  const failures = new Map<string, unknown>();
  for (const [name, fn] of Object.entries(posixCases)) {
    if (only && !only.includes(name)) continue;
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    try {
      await fn(dir);
    } catch (e) {
      failures.set(name, e);
    }
  }
  return failures;
}
