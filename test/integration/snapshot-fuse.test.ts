/**
 * /.snapshot through a real FUSE mount (a server process running `silt mount`): ls, cat and cp out
 * of a snapshot see the old tree; writes, creates, removes and chmod are refused with EROFS; the
 * name /.snapshot cannot be taken by a real entry.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { forceUnmount, fuseUnavailable, q, sh, shOk, startServer, tempDir } from '../support/mount.ts';

const unavailable = fuseUnavailable();

test('/.snapshot on a FUSE mount: ls, cat, cp out; EROFS on writes', async () => {
  assert.equal(unavailable, undefined, `this test needs a real FUSE mount: ${unavailable}`);
  const dir = tempDir('silt-snapfuse-');
  const storeUrl = `file:${path.join(dir, 'store')}`;
  const mnt = path.join(dir, 'mnt');
  // Prepare: a tree, a snapshot of it, then the live tree rewritten and partly deleted.
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131) & 0xff;
  {
    const store = await openStore(storeUrl, { create: true });
    const f = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0 });
    const d = await f.mkdir(root, 1, 'docs', 0o755);
    const a = await f.create(root, d.ino, 'a.txt', 0o644);
    await f.write(root, a.ino, 0, Buffer.from('old words\n'));
    const b = await f.create(root, d.ino, 'big.bin', 0o644);
    await f.write(root, b.ino, 0, big);
    await f.volume.createSnapshot('nightly');
    await f.write(root, a.ino, 0, Buffer.from('NEW WORDS\n'));
    await f.unlink(root, d.ino, 'big.bin');
    await f.close();
    await store.close();
  }
  const server = await startServer({ mountpoint: mnt, store: storeUrl });
  try {
    assert.equal(fs.readFileSync(path.join(mnt, 'docs/a.txt'), 'utf8'), 'NEW WORDS\n');
    const top = await shOk(`ls -a ${q(mnt)}`);
    assert.ok(!top.split('\n').includes('.snapshot'), `hidden from ls -a: ${top}`);
    assert.equal((await shOk(`ls ${q(mnt + '/.snapshot')}`)).trim(), 'nightly');
    assert.deepEqual((await shOk(`ls ${q(mnt + '/.snapshot/nightly/docs')}`)).trim().split('\n'), ['a.txt', 'big.bin']);
    assert.equal(await shOk(`cat ${q(mnt + '/.snapshot/nightly/docs/a.txt')}`), 'old words\n');
    const out = path.join(dir, 'restored');
    await shOk(`cp -a ${q(mnt + '/.snapshot/nightly/docs')} ${q(out)}`);
    assert.equal(fs.readFileSync(path.join(out, 'a.txt'), 'utf8'), 'old words\n');
    assert.ok(fs.readFileSync(path.join(out, 'big.bin')).equals(big), 'big file copied out intact');
    // Distinct inode numbers from the live tree.
    const liveIno = fs.statSync(path.join(mnt, 'docs/a.txt')).ino;
    const snapIno = fs.statSync(path.join(mnt, '.snapshot/nightly/docs/a.txt')).ino;
    assert.notEqual(liveIno, snapIno);

    const snapFile = q(mnt + '/.snapshot/nightly/docs/a.txt');
    const snapDocs = q(mnt + '/.snapshot/nightly/docs');
    for (const cmd of [
      `echo x > ${snapFile}`,
      `echo x >> ${snapFile}`,
      `touch ${snapDocs}/new`,
      `mkdir ${snapDocs}/sub`,
      `rm ${snapFile}`,
      `mv ${snapFile} ${snapDocs}/b.txt`,
      `chmod 600 ${snapFile}`,
      `truncate -s 0 ${snapFile}`,
      `ln -s x ${snapDocs}/l`,
      `rmdir ${q(mnt + '/.snapshot/nightly')}`,
    ]) {
      const r = await sh(cmd);
      assert.notEqual(r.code, 0, `${cmd} must fail`);
      assert.match(r.stderr, /Read-only file system/, `${cmd}: ${r.stderr}`);
    }
    const taken = await sh(`mkdir ${q(mnt + '/.snapshot')}`);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /File exists/);
    assert.equal(await shOk(`cat ${snapFile}`), 'old words\n', 'unchanged after the refused writes');
  } finally {
    await server.unmount().catch(async (e: unknown) => {
      await forceUnmount(mnt);
      throw e;
    });
  }
  const store = await openStore(storeUrl);
  const rep = await checkVolume(store, 'default');
  await store.close();
  assert.ok(rep.clean, JSON.stringify(rep.problems));
  fs.rmSync(dir, { recursive: true, force: true });
});
