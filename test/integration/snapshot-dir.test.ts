import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, S_IFDIR, S_IFMT, W_OK, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { SNAPSHOT_DIR_INO } from '../../src/fs/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { RpcClient } from '../../src/rpc/index.ts';
import { FsError } from '../../src/util/index.ts';
import { TOKEN, startInProcess } from '../support/rpc-harness.ts';

const errno = (code: string) => (e: unknown) => e instanceof FsError && e.errno === code;

async function readPath(fs: SiltFileSystem, path: string): Promise<Buffer> {
  const a = await fs.lookupPath(root, path);
  return Buffer.from(await fs.read(root, a.ino, 0, a.size));
}

async function names(fs: SiltFileSystem, ino: number): Promise<string[]> {
  return (await fs.readdir(root, ino, 0n, 1000)).map((e) => e.name);
}

test('/.snapshot on the live file system: listing, old bytes, distinct inodes, EROFS, reserved name', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0 });
  try {
    const d = await fs.mkdir(root, 1, 'docs', 0o755);
    const f = await fs.create(root, d.ino, 'a.txt', 0o644);
    await fs.write(root, f.ino, 0, Buffer.from('version one'));
    await fs.symlink(root, d.ino, 'link', 'a.txt');
    await fs.setxattr(root, f.ino, 'user.tag', Buffer.from('v1'));
    await fs.volume.createSnapshot('one');
    await fs.write(root, f.ino, 0, Buffer.from('VERSION TWO, longer'));
    await fs.unlink(root, d.ino, 'link');
    await fs.volume.createSnapshot('two');
    await fs.unlink(root, d.ino, 'a.txt');
    await fs.rmdir(root, 1, 'docs');

    // Hidden from the root listing, reachable by name.
    assert.ok(!(await names(fs, 1)).includes('.snapshot'));
    const dir = await fs.lookup(root, 1, '.snapshot');
    assert.equal(dir.ino, SNAPSHOT_DIR_INO);
    assert.equal(dir.mode & S_IFMT, S_IFDIR);
    assert.deepEqual((await names(fs, dir.ino)).sort(), ['.', '..', 'one', 'two']);
    const plus = await fs.readdirplus(root, dir.ino, 0n, 1000);
    assert.equal(plus.find((e) => e.name === '..')!.ino, 1);
    assert.equal((await fs.lookup(root, dir.ino, '..')).ino, 1);

    // Each snapshot's tree, as it was.
    assert.equal((await readPath(fs, '.snapshot/one/docs/a.txt')).toString(), 'version one');
    assert.equal((await readPath(fs, '.snapshot/two/docs/a.txt')).toString(), 'VERSION TWO, longer');
    const link = await fs.lookupPath(root, '.snapshot/one/docs/link');
    assert.equal(await fs.readlink(root, link.ino), 'a.txt');
    await assert.rejects(fs.lookupPath(root, '.snapshot/two/docs/link'), errno('ENOENT'));
    const a1 = await fs.lookupPath(root, '.snapshot/one/docs/a.txt');
    assert.equal(Buffer.from(await fs.getxattr(root, a1.ino, 'user.tag')).toString(), 'v1');
    assert.deepEqual(await fs.listxattr(root, a1.ino), ['user.tag']);
    await assert.rejects(fs.lookupPath(root, 'docs'), errno('ENOENT'), 'the live tree lost docs');

    // Inode numbers: in the snapshot namespace, distinct per snapshot, stable, and `..` of a
    // snapshot root is /.snapshot.
    const a2 = await fs.lookupPath(root, '.snapshot/two/docs/a.txt');
    assert.ok(a1.ino > SNAPSHOT_DIR_INO && a2.ino > SNAPSHOT_DIR_INO && a1.ino !== a2.ino);
    assert.ok(Number.isSafeInteger(a1.ino) && Number.isSafeInteger(a2.ino));
    assert.equal((await fs.getattr(root, a1.ino)).ino, a1.ino);
    assert.equal((await fs.lookupPath(root, '.snapshot/one/docs/a.txt')).ino, a1.ino);
    const snapRoot = await fs.lookupPath(root, '.snapshot/one');
    assert.equal((await fs.lookup(root, snapRoot.ino, '..')).ino, SNAPSHOT_DIR_INO);
    const rootList = await fs.readdir(root, snapRoot.ino, 0n, 100);
    assert.equal(rootList.find((e) => e.name === '..')!.ino, SNAPSHOT_DIR_INO);
    assert.equal(rootList.find((e) => e.name === '.')!.ino, snapRoot.ino);
    const docs1 = await fs.lookupPath(root, '.snapshot/one/docs');
    const inDocs = await fs.readdirplus(root, docs1.ino, 0n, 100);
    assert.deepEqual(inDocs.map((e) => e.name).sort(), ['.', '..', 'a.txt', 'link']);
    for (const e of inDocs) assert.ok(e.ino > SNAPSHOT_DIR_INO && e.attr.ino === e.ino, `${e.name} ${e.ino}`);

    // Reading through a handle.
    await fs.open(root, a1.ino, O_RDONLY);
    assert.equal(Buffer.from(await fs.read(root, a1.ino, 8, 3)).toString(), 'one');
    await fs.release(a1.ino, false);

    // Everything that writes is refused with EROFS.
    const ro = errno('EROFS');
    await assert.rejects(fs.write(root, a1.ino, 0, Buffer.from('x')), ro);
    await assert.rejects(fs.open(root, a1.ino, O_WRONLY), ro);
    await assert.rejects(fs.open(root, a1.ino, O_RDWR), ro);
    await assert.rejects(fs.open(root, a1.ino, O_RDONLY | O_TRUNC), ro);
    await assert.rejects(fs.setattr(root, a1.ino, { mode: 0o600 }), ro);
    await assert.rejects(fs.setattr(root, a1.ino, { size: 0 }), ro);
    await assert.rejects(fs.setxattr(root, a1.ino, 'user.x', Buffer.from('1')), ro);
    await assert.rejects(fs.removexattr(root, a1.ino, 'user.tag'), ro);
    await assert.rejects(fs.create(root, docs1.ino, 'new', 0o644), ro);
    await assert.rejects(fs.mkdir(root, docs1.ino, 'new', 0o755), ro);
    await assert.rejects(fs.symlink(root, docs1.ino, 'new', 'x'), ro);
    await assert.rejects(fs.mknod(root, docs1.ino, 'new', 0o644, 0), ro);
    await assert.rejects(fs.unlink(root, docs1.ino, 'a.txt'), ro);
    await assert.rejects(fs.rmdir(root, snapRoot.ino, 'docs'), ro);
    await assert.rejects(fs.rename(root, docs1.ino, 'a.txt', docs1.ino, 'b.txt'), ro);
    await assert.rejects(fs.rename(root, docs1.ino, 'a.txt', 1, 'stolen'), ro);
    await assert.rejects(fs.link(root, a1.ino, 1, 'hard'), ro);
    await assert.rejects(fs.fallocate(root, a1.ino, 0, 0, 10), ro);
    await assert.rejects(fs.access(root, a1.ino, W_OK), ro);
    await assert.rejects(fs.create(root, SNAPSHOT_DIR_INO, 'three', 0o644), ro);
    await assert.rejects(fs.mkdir(root, SNAPSHOT_DIR_INO, 'three', 0o755), ro);
    await assert.rejects(fs.rmdir(root, SNAPSHOT_DIR_INO, 'one'), ro);
    await assert.rejects(fs.rmdir(root, 1, '.snapshot'), ro);
    await assert.rejects(fs.rename(root, 1, '.snapshot', 1, 'snaps'), ro);
    await fs.access(root, a1.ino, 4);

    // A real entry named .snapshot cannot be made at the root (anywhere else it is an ordinary name).
    const taken = errno('EEXIST');
    await assert.rejects(fs.create(root, 1, '.snapshot', 0o644), taken);
    await assert.rejects(fs.mkdir(root, 1, '.snapshot', 0o755), taken);
    await assert.rejects(fs.symlink(root, 1, '.snapshot', 'x'), taken);
    await assert.rejects(fs.mknod(root, 1, '.snapshot', 0o644, 0), taken);
    const other = await fs.create(root, 1, 'other', 0o644);
    await assert.rejects(fs.link(root, other.ino, 1, '.snapshot'), taken);
    await assert.rejects(fs.rename(root, 1, 'other', 1, '.snapshot'), taken);
    const sub = await fs.mkdir(root, 1, 'sub', 0o755);
    await fs.mkdir(root, sub.ino, '.snapshot', 0o755);

    // A deleted snapshot disappears from the listing; its inodes answer ESTALE.
    await fs.volume.deleteSnapshot('one');
    assert.deepEqual((await names(fs, SNAPSHOT_DIR_INO)).sort(), ['.', '..', 'two']);
    await assert.rejects(fs.getattr(root, a1.ino), errno('ESTALE'));
    await assert.rejects(fs.lookupPath(root, '.snapshot/one'), errno('ENOENT'));
    assert.equal((await readPath(fs, '.snapshot/two/docs/a.txt')).toString(), 'VERSION TWO, longer');
  } finally {
    await fs.close();
  }
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});

test('/.snapshot is listed in the root when configured visible, after every real entry', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, snapshotDirVisible: true });
  try {
    for (let i = 0; i < 5; i++) await fs.create(root, 1, `f${i}`, 0o644);
    await fs.volume.createSnapshot('s');
    const all = await fs.readdir(root, 1, 0n, 1000);
    assert.equal(all.at(-1)!.name, '.snapshot');
    assert.equal(all.length, 2 + 5 + 1);
    // Paged two at a time: every entry once, .snapshot last.
    const paged: string[] = [];
    let cookie = 0n;
    for (;;) {
      const page = await fs.readdirplus(root, 1, cookie, 2);
      if (page.length === 0) break;
      paged.push(...page.map((e) => e.name));
      cookie = page.at(-1)!.cookie;
    }
    assert.deepEqual(paged, all.map((e) => e.name));
    assert.equal((await readPath(fs, '.snapshot/s/f0')).length, 0);
  } finally {
    await fs.close();
  }
});

test('a snapshot view has no /.snapshot of its own', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0 });
  await fs.volume.createSnapshot('s');
  await fs.close();
  const view = await openFileSystem({ store, snapshot: 's', gcIntervalMs: 0 });
  try {
    await assert.rejects(view.lookup(root, 1, '.snapshot'), errno('ENOENT'));
  } finally {
    await view.close();
  }
});

test('/.snapshot through RPC (RpcClient against an in-process server): lookup, read, EROFS', async () => {
  const srv = await startInProcess();
  const client = await RpcClient.connect({ port: srv.server.port, token: TOKEN });
  try {
    const f = await srv.fsys.create(root, 1, 'r.txt', 0o644);
    await srv.fsys.write(root, f.ino, 0, Buffer.from('as it was'));
    await srv.fsys.volume.createSnapshot('rpc');
    await srv.fsys.write(root, f.ino, 0, Buffer.from('AS IT IS!'));
    const dir = await client.lookup(root, 1, '.snapshot');
    assert.equal(dir.ino, SNAPSHOT_DIR_INO);
    assert.deepEqual((await client.readdir(root, dir.ino, 0n, 100)).map((e) => e.name).sort(), ['.', '..', 'rpc']);
    const snapRoot = await client.lookup(root, dir.ino, 'rpc');
    const a = await client.lookup(root, snapRoot.ino, 'r.txt');
    assert.ok(a.ino > SNAPSHOT_DIR_INO);
    assert.equal(Buffer.from(await client.read(root, a.ino, 0, a.size)).toString(), 'as it was');
    await assert.rejects(client.write(root, a.ino, 0, Buffer.from('x')), errno('EROFS'));
    await assert.rejects(client.create(root, snapRoot.ino, 'new', 0o644), errno('EROFS'));
    await assert.rejects(client.mkdir(root, 1, '.snapshot', 0o755), errno('EEXIST'));
  } finally {
    await client.close();
    await srv.close();
  }
});
