/**
 * The real engine mounted over FUSE on the local Swift all-in-one (test/support/swift.ts), through
 * both of its front doors:
 * - Swift URL: a tree of 2,000 small files (1-8 KiB, nested directories) plus one 64 MiB file
 *   copied in with `cp -a`, unmount, mount again in a new server process, `diff -r` against the
 *   source, `silt fsck` exits 0;
 * - S3 URL (Swift's s3api): the same, smaller (200 files + 16 MiB);
 * - small files share segments: 1,000 files of 4 KiB written through the mount leave a handful of
 *   objects under <volume>/log/ and <volume>/seg/, not one per file.
 * Every run uses fresh container / bucket names; they are purged in the background afterwards.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listAll, openStore } from '../../src/objstore/index.ts';
import { ensureTools, forceUnmount, fuseUnavailable, q, repoRoot, sh, shOk, startServer, tempDir, type ServerHandle } from '../support/mount.ts';
import { ensureSwift, purgeInBackground, type LocalSwift } from '../support/swift.ts';

const skip = fuseUnavailable();
const VOLUME = 'default';

/** Python: N files of random sizes (1-8 KiB) in nested directories under DIR. */
const GEN_TREE = `
import os, sys, random
d, n = sys.argv[1], int(sys.argv[2])
random.seed(n)
for i in range(n):
    sub = os.path.join(d, 'a%02d' % (i % 20), 'b%d' % (i // 20 % 5), 'c%d' % (i % 3))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, 'f%05d.dat' % i), 'wb') as f:
        f.write(os.urandom(random.randint(1024, 8192)))
`;

describe('FUSE mount of the real engine on Swift and S3 (local Swift)', { skip, timeout: 600_000 }, () => {
  let tmp = '';
  let swift: LocalSwift;
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const containers: string[] = [];
  const servers: ServerHandle[] = [];
  const mounts: string[] = [];

  before(async () => {
    await ensureTools();
    swift = await ensureSwift();
    process.env['SILT_SWIFT_USER'] = swift.user;
    process.env['SILT_SWIFT_KEY'] = swift.key;
    process.env['AWS_ACCESS_KEY_ID'] = swift.user;
    process.env['AWS_SECRET_ACCESS_KEY'] = swift.key;
    tmp = tempDir('silt-swift-mount-');
    process.env['SILT_RUN_DIR'] = path.join(tmp, 'run');
  });

  after(async () => {
    for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    for (const m of mounts) await forceUnmount(m);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    // S3 multipart uploads keep their parts in BUCKET+segments.
    if (swift && containers.length) purgeInBackground(swift, [...containers, ...containers.map((c) => `${c}+segments`)], '');
  });

  function swiftUrl(name: string): string {
    const c = `silt-${name}-${runId}`;
    containers.push(c);
    return `${swift.storeUrl}?container=${c}`;
  }
  function s3Url(name: string): string {
    const c = `silt-${name}-${runId}`;
    containers.push(c);
    return `${swift.s3Base}/${c}`;
  }

  async function start(name: string, store: string, mkfs: boolean, flushIntervalMs?: number): Promise<ServerHandle> {
    const mountpoint = path.join(tmp, `${name}-mnt`);
    if (!mounts.includes(mountpoint)) mounts.push(mountpoint);
    const s = await startServer({ mountpoint, store, volume: VOLUME, mkfs, readyTimeoutMs: 60_000, ...(flushIntervalMs !== undefined ? { flushIntervalMs } : {}) });
    servers.push(s);
    return s;
  }

  async function fsckExit0(store: string): Promise<void> {
    const r = await sh(`node bin/silt.mjs fsck --store ${q(store)} --volume ${VOLUME}`, { cwd: repoRoot, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `silt fsck exited ${r.code}:\n${r.stdout}${r.stderr}`);
  }

  /** Source tree: `files` small files + one big file; copy, remount in a new process, diff, fsck. */
  async function copyRemountDiff(name: string, store: string, files: number, bigMiB: number): Promise<void> {
    const src = path.join(tmp, `${name}-src`);
    fs.mkdirSync(src);
    await shOk(`python3 -c ${q(GEN_TREE)} ${q(path.join(src, 'tree'))} ${files} && head -c ${bigMiB}M /dev/urandom > ${q(path.join(src, 'big'))}`);
    let s = await start(name, store, true);
    const t0 = Date.now();
    await shOk(`cp -a ${q(src)}/. ${q(s.mountpoint)}/`, { timeoutMs: 300_000 });
    const tCopy = Date.now();
    await s.unmount();
    const tUmount = Date.now();
    s = await start(name, store, false);
    const tMount = Date.now();
    const d = await sh(`diff -r ${q(src)} ${q(s.mountpoint)}`, { timeoutMs: 300_000 });
    const tDiff = Date.now();
    assert.equal(d.code, 0, `diff -r found differences:\n${d.stdout.slice(0, 4000)}${d.stderr.slice(0, 4000)}`);
    const count = (await shOk(`find ${q(s.mountpoint)} -type f | wc -l`)).trim();
    assert.equal(Number(count), files + 1);
    await s.unmount();
    await fsckExit0(store);
    console.log(
      `${name}: cp -a ${tCopy - t0} ms, umount ${tUmount - tCopy} ms, mount ${tMount - tUmount} ms, diff -r ${tDiff - tMount} ms, fsck ${Date.now() - tDiff} ms`,
    );
  }

  test('Swift: 2,000 small files + 64 MiB with cp -a, remount in a new process, diff -r, fsck clean', async () => {
    await copyRemountDiff('swift', swiftUrl('swift'), 2000, 64);
  });

  test('S3: 200 small files + 16 MiB with cp -a, remount in a new process, diff -r, fsck clean', async () => {
    await copyRemountDiff('s3', s3Url('s3'), 200, 16);
  });

  test('1,000 files of 4 KiB share a handful of segments', async () => {
    const store = swiftUrl('pack');
    // No time-based commits (the default commits every second, so on a slow machine the count
    // would measure the write's duration): what is left is packing by size, and the unmount.
    const s = await start('pack', store, true, 600_000);
    await shOk(`python3 -c ${q("import os,sys\nd=sys.argv[1]\nos.mkdir(d)\nfor i in range(1000):\n    open(os.path.join(d,'f%04d'%i),'wb').write(os.urandom(4096))")} ${q(path.join(s.mountpoint, 'small'))}`, {
      timeoutMs: 300_000,
    });
    await s.unmount();
    const st = await openStore(store);
    try {
      const log: string[] = [];
      const seg: string[] = [];
      for await (const o of listAll(st, `${VOLUME}/log/`)) log.push(o.key);
      for await (const o of listAll(st, `${VOLUME}/seg/`)) seg.push(o.key);
      console.log(`pack: ${log.length} objects under ${VOLUME}/log/, ${seg.length} under ${VOLUME}/seg/ for 1,000 files of 4 KiB`);
      assert.ok(log.length >= 1, 'no commit segments at all');
      assert.ok(log.length + seg.length <= 20, `expected a handful of segments, found log/ ${log.length} + seg/ ${seg.length}`);
    } finally {
      await st.close();
    }
    await fsckExit0(store);
  });
});
