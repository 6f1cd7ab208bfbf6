/**
 * Persistence through the FUSE mount of the real engine over a file: store:
 * - unmount, mount again in a new server process: everything is there (content, modes, owners,
 *   times, links, xattrs, inode numbers);
 * - SIGTERM commits and unmounts; `silt mount --background` / `silt umount` (runMount/runUmount);
 * - kill -9 of the server in the middle of a write workload: the stale mount is cleaned by the next
 *   mount, every fsync'd file (and, in sync-on-close mode, every closed file) is intact, and fsck
 *   finds the volume clean.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMount, runUmount } from '../../src/cli/mount.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { findMount } from '../../src/fuse/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { nullLogger } from '../../src/util/log.ts';
import { pySpawn, q, sh, shTry, treeListing } from '../posix/util.ts';
import { ensureTools, forceUnmount, fuseUnavailable, repoRoot, startServer, tempDir, type ServerHandle } from '../support/mount.ts';

const skip = fuseUnavailable();

/** Everything that must survive a remount, as text. */
async function manifest(root: string): Promise<string> {
  const listing = await treeListing(root);
  const inodes = await sh(`cd ${q(root)} && find . -printf '%i %P %n %U:%G\\n' | LC_ALL=C sort -k2`);
  const sums = await sh(`cd ${q(root)} && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`);
  const xattrs = await sh(`cd ${q(root)} && getfattr -R -d -m - . 2>/dev/null | grep -v '^$' || true`);
  return [listing, inodes, sums, xattrs].join('\n---\n');
}

async function fsckClean(storeUrl: string, volume = 'default'): Promise<void> {
  const report = await checkVolume(await openStore(storeUrl), volume);
  assert.deepEqual(
    report.problems.filter((p) => p.severity === 'error'),
    [],
  );
  assert.ok(report.clean);
}

/** Start a writer that records each file after fsync (or close) returned; kill the server midway. */
const WORKLOAD = `
import os, sys, hashlib, random
d, mode = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(d, 'noise'), exist_ok=True)
random.seed(7)
i = 0
while True:
    i += 1
    data = os.urandom(random.choice([10, 4096, 70000, 300000, 1100000]))
    name = 'f%05d' % i
    try:
        fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, data)
        if mode == 'fsync':
            os.fsync(fd)
        os.close(fd)
        print(name, hashlib.sha256(data).hexdigest(), flush=True)
        # Unsynced noise in between: may or may not survive, must not corrupt anything.
        with open(os.path.join(d, 'noise', name), 'wb') as f:
            f.write(data[:5000])
        if i % 7 == 0:
            os.rename(os.path.join(d, 'noise', name), os.path.join(d, 'noise', 'r' + name))
    except OSError as e:
        print('STOP', e.errno, flush=True)
        break
`;

describe('FUSE mount: persistence and crashes (real engine, file: store)', { skip, timeout: 600_000 }, () => {
  let tmp = '';
  const servers: ServerHandle[] = [];
  const mounts: string[] = [];

  before(async () => {
    await ensureTools();
    tmp = tempDir('silt-fuse-persist-');
    process.env['SILT_RUN_DIR'] = path.join(tmp, 'run');
  });

  after(async () => {
    for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    for (const m of mounts) await forceUnmount(m);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function start(name: string, opts: { mkfs?: boolean; syncOnClose?: boolean; flushIntervalMs?: number } = {}): Promise<ServerHandle> {
    const mountpoint = path.join(tmp, `${name}-mnt`);
    if (!mounts.includes(mountpoint)) mounts.push(mountpoint);
    const s = await startServer({ mountpoint, store: `file:${path.join(tmp, `${name}-store`)}`, ...opts });
    servers.push(s);
    return s;
  }

  test('unmount, mount again in a new process: everything is there', async () => {
    let s = await start('remount', { mkfs: true });
    const m = s.mountpoint;
    await sh(
      `cd ${q(m)} && cp -a ${q(path.join(repoRoot, 'node_modules/commander'))} src && mkdir -p empty/deeper && ` +
        `head -c 8M /dev/urandom > big && ln big big-hard && ln -s big big-sym && ln -s /nowhere dangling && ` +
        `echo secret > secret && chmod 0600 secret && chown 1234:5678 secret && chmod 4755 empty && ` +
        `setfattr -n user.color -v blue big && setfattr -n user.dir -v yes empty && ` +
        `dd if=/dev/urandom of=sparse bs=4k count=1 seek=1000 status=none && mkfifo fifo && ` +
        `touch -d '1999-12-31 23:59:59.5 UTC' secret && mv src/lib src/lib-moved && rm -r src/typings`,
    );
    const before = await manifest(m);
    await s.unmount();
    assert.equal(findMount(m), undefined);
    s = await start('remount');
    assert.equal(await manifest(m), before);
    await s.unmount();
    await fsckClean(`file:${path.join(tmp, 'remount-store')}`);
  });

  test('SIGTERM commits and unmounts', async () => {
    const s = await start('sigterm', { mkfs: true, flushIntervalMs: 3_600_000 });
    fs.writeFileSync(path.join(s.mountpoint, 'unsynced'), 'written, never fsynced');
    await s.stop();
    assert.equal(findMount(s.mountpoint), undefined);
    const s2 = await start('sigterm');
    assert.equal(fs.readFileSync(path.join(s2.mountpoint, 'unsynced'), 'utf8'), 'written, never fsynced');
    await s2.unmount();
  });

  test('runMount --background returns once mounted; runUmount commits and waits for the server', async () => {
    const mountpoint = path.join(tmp, 'bg-mnt');
    mounts.push(mountpoint);
    const store = `file:${path.join(tmp, 'bg-store')}`;
    const common = { store, volume: 'vol1', mountpoint, syncOnClose: false, flushIntervalMs: 3_600_000, logger: nullLogger };
    // Without --mkfs a missing volume is an error.
    await assert.rejects(runMount({ ...common, mkfs: false, background: true }), /does not exist|mount failed/);
    await runMount({ ...common, mkfs: true, background: true });
    assert.ok(findMount(mountpoint), 'mounted when runMount returned');
    fs.writeFileSync(path.join(mountpoint, 'hello'), 'from the background server');
    // A second mount on the same mountpoint is refused.
    await assert.rejects(runMount({ ...common, mkfs: false, background: true }), /already mounted/);
    await runUmount(mountpoint);
    assert.equal(findMount(mountpoint), undefined);
    await runMount({ ...common, mkfs: false, background: true });
    assert.equal(fs.readFileSync(path.join(mountpoint, 'hello'), 'utf8'), 'from the background server');
    await runUmount(mountpoint);
    await fsckClean(store, 'vol1');
  });

  for (const mode of ['fsync', 'close'] as const) {
    test(`kill -9 during a write workload: stale mount cleaned, every ${mode === 'fsync' ? "fsync'd" : 'closed (sync-on-close)'} file intact, fsck clean`, async () => {
      const name = `crash-${mode}`;
      const syncOnClose = mode === 'close';
      const s = await start(name, { mkfs: true, syncOnClose, flushIntervalMs: 200 });
      const dir = path.join(s.mountpoint, 'work');
      fs.mkdirSync(dir);
      const w = pySpawn(WORKLOAD, [dir, mode]);
      const t0 = Date.now();
      // Let it run until a fair number of files are durable, then pull the plug mid-stream.
      const durable = (): number => w.output().split('\n').filter((l) => l.startsWith('f')).length;
      while (Date.now() - t0 < 60_000 && durable() < 25) await new Promise((r) => setTimeout(r, 100));
      await s.kill9();
      const out = await w.done;
      const done = out.stdout
        .split('\n')
        .filter((l) => /^f\d{5} [0-9a-f]{64}$/.test(l))
        .map((l) => l.split(' ') as [string, string]);
      assert.ok(done.length >= 3, `the workload made progress before the kill: ${out.stdout}${out.stderr}`);
      // The mount is stale now.
      // (ls, not stat: the root's attributes may still be cached in the kernel for a second.)
      const st = await shTry(`ls ${q(s.mountpoint)}`);
      assert.match(
        st.stderr,
        /Transport endpoint is not connected/,
        `ls after kill -9 (exit ${st.code}): ${st.stdout}\nmounted: ${JSON.stringify(findMount(s.mountpoint))}\nworkload: ${out.stdout.slice(-500)}${out.stderr}\nserver: ${s.log().slice(-2000)}`,
      );
      // A new server cleans the stale mount and serves the last durable state.
      const s2 = await start(name, { syncOnClose });
      assert.match(s2.log(), /cleaned a stale mount/);
      for (const [file, sum] of done) {
        const got = await sh(`sha256sum ${q(path.join(dir, file))}`);
        assert.equal(got.split(' ')[0], sum, `${file} after the crash`);
      }
      // Unsynced files may be missing or older, but whatever is there reads back whole.
      await sh(`cat ${q(dir)}/noise/* > /dev/null 2>&1 || true`);
      await s2.unmount();
      await fsckClean(`file:${path.join(tmp, `${name}-store`)}`);
    });
  }
});
