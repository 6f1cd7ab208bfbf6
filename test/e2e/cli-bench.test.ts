/**
 * `silt bench DIR`: in process on a plain temp directory, and through the real command on a real
 * Silt FUSE mount (file: store), with tiny sizes. Checks the figures it reports, the progress lines and the
 * summary, that it leaves nothing behind, and that a bad directory is one clear error (exit 2).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { runBench } from '../../src/cli/bench.ts';
import { CliError } from '../../src/cli/common.ts';
import { forceUnmount, fuseUnavailable, q, repoRoot, sh, startServer, tempDir, type ServerHandle } from '../support/mount.ts';

const silt = `${q(process.execPath)} ${q(path.join(repoRoot, 'bin', 'silt.mjs'))}`;

interface Report {
  dir: string;
  threads: number;
  phases: { name: string; value: number; unit: string; costMs: number; seconds: number }[];
}

/** A stream that keeps what is written to it. */
class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const PHASES = ['Write big file', 'Read big file', 'Write small file', 'Read small file', 'Stat file'];

function checkReport(r: Report, dir: string, threads: number): void {
  assert.equal(r.dir, dir);
  assert.equal(r.threads, threads);
  assert.deepEqual(r.phases.map((p) => p.name), PHASES);
  for (const p of r.phases) {
    assert.ok(Number.isFinite(p.value) && p.value > 0, `${p.name}: value ${p.value}`);
    assert.ok(Number.isFinite(p.costMs) && p.costMs > 0, `${p.name}: cost ${p.costMs}`);
    assert.ok(p.seconds > 0 && p.seconds < 60, `${p.name}: ${p.seconds} s`);
  }
  // Nothing is left behind.
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('__silt-bench-')), []);
}

describe('silt bench', () => {
  const base = tempDir('silt-cli-bench-');
  after(() => fs.rmSync(base, { recursive: true, force: true }));

  it('measures a local directory: figures, progress lines, a summary table (in process)', async () => {
    const dir = path.join(base, 'local');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'mine');
    const out = new Collect();
    const progress = new Collect() as unknown as NodeJS.WriteStream; // not a terminal: no isTTY
    const report = await runBench({ dir, bigFileMiB: 4, smallFileKiB: 4, smallFiles: 30, threads: 2, json: false, out, progress });
    checkReport(report as Report, dir, 2);
    const lines = (progress as unknown as Collect).text;
    // Not a terminal: one finished progress line per phase, no carriage returns.
    for (const name of PHASES) assert.match(lines, new RegExp(`${name} +\\[#{30}\\] +\\d+/\\d+ 100% [\\d.]+ s`));
    assert.doesNotMatch(lines, /\r/);
    assert.match(out.text, /\| ITEM +\| +VALUE \| +COST \| +TIME \|/);
    assert.match(out.text, /\| Write big file +\| +[\d.]+ MiB\/s \| +[\d.]+ ms\/MiB \|/);
    assert.match(out.text, /\| Stat file +\| +[\d.]+ stats\/s \|/);
    assert.match(out.text, /2 thread\(s\)/);
    assert.equal(fs.readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'mine', 'files already there are untouched');
  });

  it('fails clearly on a directory that does not exist, and on bad sizes', async () => {
    const opts = { bigFileMiB: 1, smallFileKiB: 4, smallFiles: 1, threads: 1, json: true, out: new Collect(), progress: new Collect() as unknown as NodeJS.WriteStream };
    await assert.rejects(runBench({ ...opts, dir: path.join(base, 'nope') }), (e: unknown) => e instanceof CliError && e.exitCode === 2 && /cannot use .*nope: ENOENT/.test(e.message));
    await assert.rejects(runBench({ ...opts, dir: base, threads: 0 }), (e: unknown) => e instanceof CliError && /--threads must be a whole number >= 1/.test(e.message));
  });

  describe('on a Silt FUSE mount', () => {
    const why = fuseUnavailable();
    const mnt = path.join(base, 'mnt');
    let server: ServerHandle | undefined;
    before(async () => {
      if (why !== undefined) throw new Error(`cannot run the FUSE case: ${why}`);
      server = await startServer({ mountpoint: mnt, store: `file:${path.join(base, 'store')}`, mkfs: true });
    });
    after(async () => {
      if (server !== undefined) await server.stop().catch(() => forceUnmount(mnt));
      else await forceUnmount(mnt);
    });

    it('the real command measures the mount with 2 threads and cleans up after itself', async () => {
      const r = await sh(`${silt} bench ${q(mnt)} --big-file-size 4 --small-files 10 --small-file-size 8 -p 2 --json`, { timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      checkReport(JSON.parse(r.stdout) as Report, mnt, 2);
      for (const name of PHASES) assert.match(r.stderr, new RegExp(`${name} +\\[#{30}\\] +\\d+/\\d+ 100%`));
      // The mount still works after the bench: the server survived it.
      fs.writeFileSync(path.join(mnt, 'after.txt'), 'ok');
      assert.equal(fs.readFileSync(path.join(mnt, 'after.txt'), 'utf8'), 'ok');
    });
  });
});
