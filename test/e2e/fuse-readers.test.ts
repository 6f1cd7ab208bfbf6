/**
 * The two ways a mount server reads /dev/fuse, through the real CLI and kernel: on the event loop
 * (the default, src/fuse/device-stream.ts) and with blocking reader threads (SILT_FUSE_READERS=N,
 * the fallback). Both must serve the same workload byte for byte, unmount cleanly and leave a
 * volume that fsck passes; the event-loop server runs without the reader threads; a bad value is
 * refused with a message naming the variable.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { findMount } from '../../src/fuse/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { ensureTools, forceUnmount, fuseUnavailable, q, repoRoot, sh, shOk, tempDir } from '../support/mount.ts';

const skip = fuseUnavailable();
const cli = path.join(repoRoot, 'bin', 'silt.mjs');

interface Mounted {
  pid: number;
  log: () => string;
  exited: Promise<number | string>;
}

async function mount(store: string, mnt: string, env: NodeJS.ProcessEnv): Promise<Mounted> {
  fs.mkdirSync(mnt, { recursive: true });
  const proc = spawn(process.execPath, [cli, 'mount', '--store', store, mnt, '--mkfs', '--log-level', 'info', '--log-format', 'json'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const deadline = Date.now() + 30_000;
  while (!/"msg":"mounted"/.test(log)) {
    const done = await Promise.race([exited.then((c) => `exited ${c}`), new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
    if (done) throw new Error(`silt mount ${done} before mounting:\n${log}`);
    if (Date.now() > deadline) throw new Error(`silt mount not mounted in 30 s:\n${log}`);
  }
  return { pid: proc.pid!, log: () => log, exited };
}

/** Threads of a process. */
function threadCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

/** Big and small writes, 8 writers at once, reads back, renames, deletes: a digest of the result. */
const WORKLOAD = (mnt: string): string => `
set -e
cd ${q(mnt)}
head -c 33554432 /dev/urandom > /tmp/silt-readers-src.$$
dd if=/tmp/silt-readers-src.$$ of=big bs=1M status=none conv=fsync
cmp /tmp/silt-readers-src.$$ big
rm /tmp/silt-readers-src.$$
mkdir d
for w in 1 2 3 4 5 6 7 8; do (for i in $(seq 50); do echo "w$w f$i" > d/w$w-$i; done) & done
wait
test "$(ls d | wc -l)" = 400
cat d/w3-17
mv d/w1-1 d/renamed
rm d/w2-*
test "$(ls d | wc -l)" = 350
setfattr -n user.k -v v d/renamed && getfattr --only-values -n user.k d/renamed; echo
`;

describe('reading /dev/fuse: event loop (default) and reader threads (SILT_FUSE_READERS)', { skip, timeout: 300_000 }, () => {
  let tmp: string;
  before(async () => {
    await ensureTools();
    tmp = tempDir('silt-fuse-readers-');
    process.env['SILT_RUN_DIR'] = path.join(tmp, 'run');
  });
  after(async () => {
    for (const m of ['loop', 'threads']) await forceUnmount(path.join(tmp, m, 'mnt')).catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const threads: Record<string, number> = {};
  for (const [name, env] of [
    ['loop', {}],
    ['threads', { SILT_FUSE_READERS: '3' }],
  ] as const) {
    test(`${name}: the same workload, a clean unmount, fsck clean`, async () => {
      const dir = path.join(tmp, name);
      const store = `file:${path.join(dir, 'store')}`;
      const mnt = path.join(dir, 'mnt');
      const m = await mount(store, mnt, env);
      const out = await shOk(WORKLOAD(mnt));
      assert.match(out, /^w3 f17\nv\n?$/m);
      threads[name] = threadCount(m.pid);
      const um = await sh(`${q(process.execPath)} ${q(cli)} umount ${q(mnt)}`);
      assert.equal(um.code, 0, um.stderr + um.stdout);
      assert.equal(await m.exited, 0, m.log());
      assert.equal(findMount(mnt), undefined);
      assert.match(m.log(), /"msg":"fuse connection ended","why":"ENODEV"/);
      const report = await checkVolume(await openStore(store), 'default');
      assert.deepEqual(report.problems.filter((p) => p.severity === 'error'), []);
      assert.ok(report.clean);
    });
  }

  test('the event-loop server runs without the reader threads', () => {
    assert.ok(threads['loop'] !== undefined && threads['threads'] !== undefined, 'both servers ran');
    assert.ok(threads['threads']! >= threads['loop']! + 3, `threads: event loop ${threads['loop']}, 3 readers ${threads['threads']}`);
  });

  test('SILT_FUSE_READERS out of range is refused, naming the variable, and nothing is mounted', async () => {
    const mnt = path.join(tmp, 'bad', 'mnt');
    fs.mkdirSync(mnt, { recursive: true });
    const r = await sh(`${q(process.execPath)} ${q(cli)} mount --store file:${q(path.join(tmp, 'bad', 'store'))} ${q(mnt)} --mkfs`, {
      env: { ...process.env, SILT_FUSE_READERS: 'many' },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /SILT_FUSE_READERS=many: must be an integer from 0/);
    assert.equal(findMount(mnt), undefined);
  });
});
