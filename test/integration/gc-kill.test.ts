/**
 * kill -9 of a real `silt gc` process in the middle of its deletions (a LocalStore volume with
 * dead commits, overwritten data segments and stray objects): nothing is lost, fsck is clean, and a
 * second `silt gc` finishes the job (every dead and stray object gone) and says so in its summary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { repoRoot, sh, shOk, tempDir, q } from '../support/mount.ts';

const STRAYS = 3000;

function count(dir: string): number {
  let n = 0;
  for (const sub of ['default/log', 'default/seg']) {
    const d = path.join(dir, sub);
    if (fs.existsSync(d)) n += fs.readdirSync(d).filter((x) => !x.startsWith('.tmp-')).length;
  }
  return n;
}

async function digests(url: string): Promise<Record<string, string>> {
  const store = await openStore(url);
  const f = await openFileSystem({ store, flushIntervalMs: 0, gcIntervalMs: 0 });
  try {
    const out: Record<string, string> = {};
    for (const e of await f.readdir(root, 1, 0n, 10_000)) {
      if (e.name === '.' || e.name === '..') continue;
      const a = await f.getattr(root, e.ino);
      out[e.name] = createHash('sha256').update(await f.read(root, e.ino, 0, a.size)).digest('hex');
    }
    return out;
  } finally {
    await f.close();
    await store.close();
  }
}

async function fsckErrors(url: string): Promise<string[]> {
  const store = await openStore(url);
  try {
    const rep = await checkVolume(store, 'default');
    return rep.problems.filter((p) => p.severity === 'error').map((p) => `${p.where}: ${p.message}`);
  } finally {
    await store.close();
  }
}

test('kill -9 of silt gc mid-run: nothing lost, fsck clean, the next silt gc finishes the job', async () => {
  const dir = tempDir('silt-gc-kill-');
  const url = `file:${dir}`;
  try {
    {
      const store = await openStore(url, { create: true });
      const f = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: { segmentBytesMax: 64 * 1024 }, inode: { largeRunBytes: 16 * 1024 } });
      // Dead commits, and data segments partly or wholly overwritten.
      for (let i = 0; i < 60; i++) {
        const a = await f.create(root, 1, `f${i % 20}-${i}`, 0o644);
        await f.write(root, a.ino, 0, Buffer.alloc(20 * 1024 + i * 512, i));
        if (i >= 20) await f.unlink(root, 1, `f${i % 20}-${i - 20}`);
        await f.sync();
      }
      await f.close();
      await store.close();
    }
    // Stray objects in the volume's namespace (e.g. a tool's leftovers): gc sweeps them too, and
    // they make the deletion phase long enough to be interrupted.
    for (let i = 0; i < STRAYS; i++) fs.writeFileSync(path.join(dir, 'default/seg', `stray-${i}`), 'x');
    const want = await digests(url);
    assert.equal(Object.keys(want).length, 20);
    const before = count(dir);

    const silt = ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts')];
    const child = spawn(process.execPath, [...silt, 'gc', '--store', url, '--force'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (c, s) => resolve(c ?? s ?? -1)));
    let killedAt = -1;
    const deadline = Date.now() + 180_000;
    let done: number | string | undefined;
    void exited.then((c) => (done = c));
    while (Date.now() < deadline && done === undefined) {
      const n = count(dir);
      if (n <= before - 50) {
        child.kill('SIGKILL');
        killedAt = n;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const code = await exited;
    assert.equal(code, 'SIGKILL', `silt gc was killed mid-run (it ended with ${code}):\n${out}`);
    const left = count(dir);
    assert.ok(left > before - STRAYS, `killed in the middle: ${left} of ${before} objects left (at kill: ${killedAt})`);

    assert.deepEqual(await fsckErrors(url), [], 'fsck clean after the kill');
    assert.deepEqual(await digests(url), want, 'every file intact after the kill');

    const again = await shOk(`node --import tsx ${q(path.join(repoRoot, 'src/cli/main.ts'))} gc --store ${q(url)} --force`, { cwd: repoRoot });
    assert.match(again, /deleted \d+/, again);
    const deleted = Number(/deleted (\d+)/.exec(again)![1]);
    assert.ok(deleted > 0, again);
    assert.match(again, /stray/, again);
    const remaining = fs.readdirSync(path.join(dir, 'default/seg')).filter((x) => x.startsWith('stray-'));
    assert.equal(remaining.length, 0, 'the second gc swept every stray object');
    assert.ok(count(dir) < 40, `only live segments and the kept commits remain: ${count(dir)}`);
    assert.deepEqual(await fsckErrors(url), [], 'fsck clean after the second gc');
    assert.deepEqual(await digests(url), want, 'every file intact after the second gc');
    const third = await sh(`node --import tsx ${q(path.join(repoRoot, 'src/cli/main.ts'))} gc --store ${q(url)} --force --json`, { cwd: repoRoot });
    assert.equal(third.code, 0, third.stderr);
    // A third pass finds only the commits the second one superseded (each run commits).
    const r3 = JSON.parse(third.stdout) as { deleted: number; strayObjects: number; orphanDataSegments: number };
    assert.equal(r3.strayObjects, 0, third.stdout);
    assert.equal(r3.orphanDataSegments, 0, third.stdout);
    assert.ok(r3.deleted <= 3, third.stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
