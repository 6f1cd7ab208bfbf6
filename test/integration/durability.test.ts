/**
 * The durability contract (DESIGN.md section 4), end to end on a LocalStore in a temporary
 * directory, with real processes:
 * - after create + write + fsync return, a fresh process opening the store sees exact bytes, and
 *   sees nothing that was written after the fsync and not committed;
 * - a writer killed with SIGKILL at a random moment leaves a volume that fsck finds clean (no
 *   directory entry names a missing inode), holding every operation up to the last acknowledged
 *   fsync and each later one wholly or not at all, in order;
 * - an atomic replace (write a temp file, rename it over the target) never leaves the target
 *   missing or partial across a kill.
 * The writer is test/simulation/child.ts; the oracle is the simulation's model, replayed here
 * from the same seed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity as who, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { Random } from '../../src/util/index.ts';
import { Model, diffLines } from '../simulation/model.ts';
import { applyModel, dataPool, describeFs, genOp } from '../simulation/harness.ts';
import { childInodeOptions, childShape, childVolumeOptions, renameContent } from '../simulation/child.ts';

const CHILD = fileURLToPath(new URL('../simulation/child.ts', import.meta.url));

interface Child {
  lines: string[];
  /** Resolves when `pred` holds for the lines so far (rejects if the child exits first). */
  until(pred: (lines: string[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
  stderr(): string;
}

function runChild(args: string[]): Child {
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const waiters = new Set<() => void>();
  p.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters) w();
  });
  p.stderr.setEncoding('utf8').on('data', (chunk: string) => void (err += chunk));
  const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
  return {
    lines,
    exited,
    stderr: () => err,
    until(pred, what, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const bad = lines.find((l) => l.startsWith('MISMATCH') || l.startsWith('ERROR'));
          if (bad) return void done(new Error(`child: ${bad}\n${err}`));
          if (pred(lines)) done();
        };
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}; child said:\n${lines.slice(-20).join('\n')}\n${err}`)), timeoutMs);
        const done = (e?: Error): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (e) reject(e);
          else resolve();
        };
        waiters.add(check);
        void exited.then((code) => done(new Error(`child exited (${code}) before ${what}:\n${lines.slice(-20).join('\n')}\n${err}`)));
        check();
      });
    },
    async kill() {
      p.kill('SIGKILL');
      await exited;
    },
  };
}

function lastIndex(lines: string[], tag: string): number {
  let n = -1;
  for (const l of lines) if (l.startsWith(`${tag} `)) n = Math.max(n, Number(l.slice(tag.length + 1)));
  return n;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'silt-durability-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function openLocal(dir: string, create = false): Promise<SiltFileSystem> {
  return openFileSystem({ store: new LocalStore(dir), create, flushIntervalMs: 0, volumeOptions: childVolumeOptions, inode: childInodeOptions });
}

async function fsckErrors(dir: string): Promise<string[]> {
  const report = await checkVolume(new LocalStore(dir), 'default');
  return report.problems.filter((p) => p.severity === 'error').map((p) => `${p.where}: ${p.message}`);
}

test('after fsync returns, a fresh process sees the exact bytes, and nothing uncommitted', { timeout: 120_000 }, async () => {
  await withDir(async (dir) => {
    const fs = await openLocal(dir, true);
    const m = new Model();
    const pool = dataPool();
    const root = 1;
    const put = async (path: string, parent: number, name: string, data: Buffer, offset = 0): Promise<number> => {
      const a = await fs.create(who, parent, name, 0o644);
      assert.ok('ok' in m.make(path, 'file', 0o644));
      // Sequential 256 KiB writes: a long run goes to data segments, as bulk writes do.
      for (let off = 0; off < data.length; off += 256 * 1024) {
        const piece = data.subarray(off, Math.min(data.length, off + 256 * 1024));
        await fs.write(who, a.ino, offset + off, piece);
        assert.ok('ok' in m.write(path, offset + off, piece));
      }
      return a.ino;
    };
    const small = await put('small', root, 'small', Buffer.from('hello, durable world'));
    await put('big', root, 'big', pool.subarray(0, 1_900_000));
    await put('sparse', root, 'sparse', pool.subarray(5000, 6000), 3_000_000);
    const d = await fs.mkdir(who, root, 'd', 0o750);
    assert.ok('ok' in m.make('d', 'dir', 0o750));
    const x = await put('d/x', d.ino, 'x', pool.subarray(777, 777 + 70_000));
    await fs.link(who, x, d.ino, 'y');
    assert.ok('ok' in m.link('d/x', 'd/y'));
    await fs.symlink(who, d.ino, 'l', '../small');
    assert.ok('ok' in m.make('d/l', 'symlink', 0o777, '../small'));
    await fs.setxattr(who, small, 'user.note', Buffer.from('kept'));
    assert.ok('ok' in m.setxattr('small', 'user.note', Buffer.from('kept'), {}));
    await fs.fsync(small, false);

    // The writer keeps running (not closed) and changes more, without a commit.
    await fs.write(who, small, 0, Buffer.from('UNSYNCED'));
    await fs.unlink(who, root, 'big');
    await fs.create(who, root, 'late', 0o644);

    const child = runChild(['dump', dir]);
    await child.until((l) => l.length > 0, 'the dump');
    assert.equal(await child.exited, 0, child.stderr());
    const seen = JSON.parse(child.lines[0]!) as { lines: string[]; problems: unknown[] };
    assert.deepEqual(seen.problems, []);
    assert.deepEqual(diffLines(m.describe(), seen.lines), [], 'a fresh process sees exactly the fsync-ed state');
    await fs.close();
  });
});

// Each case spends most of its time starting a child process: run them side by side.
describe('kill -9', { concurrency: 3 }, () => {
  for (const seed of [11, 12, 13]) {
    test(`kill -9 of a writer mid-workload (seed ${seed}): fsck clean, synced ops present, later ops whole or absent`, { timeout: 120_000 }, async () => {
      await withDir(async (dir) => {
        const r = new Random(seed);
        const acks = 1 + r.int(4);
        const child = runChild(['workload', dir, String(seed), '15']);
        await child.until((l) => lastIndex(l, 'ACK') >= 0 && l.filter((x) => x.startsWith('ACK ')).length >= acks, `${acks} acknowledged syncs`);
        await new Promise((resolve) => setTimeout(resolve, r.int(120)));
        await child.kill();
        const lastBegin = lastIndex(child.lines, 'BEGIN');
        const lastAck = lastIndex(child.lines, 'ACK');
        assert.ok(lastAck >= 0 && lastBegin >= lastAck);

        // Replay the same ops on the model: states[k] is the namespace after ops 0..k-1.
        const rr = new Random(seed);
        const m = new Model();
        const states = [m.describe()];
        for (let i = 0; i <= lastBegin; i++) {
          applyModel(m, genOp(rr, m, childShape));
          states.push(m.describe());
        }
        assert.deepEqual(await fsckErrors(dir), [], 'fsck after kill -9');
        const fs = await openLocal(dir);
        const actual = await describeFs(fs);
        await fs.close();
        let match = -1;
        for (let k = states.length - 1; k >= lastAck; k--) {
          if (diffLines(states[k]!, actual, 1).length === 0) {
            match = k;
            break;
          }
        }
        assert.ok(
          match >= 0,
          `recovered state is no op boundary in [${lastAck}, ${lastBegin + 1}] (last acknowledged sync: op ${lastAck}):\n` +
            `  vs acknowledged: ${diffLines(states[lastAck]!, actual).join('\n    ')}\n` +
            `  vs last begun: ${diffLines(states[lastBegin + 1]!, actual).join('\n    ')}`,
        );
        console.log(`seed ${seed}: killed after op ${lastBegin} began, last acked sync at op ${lastAck}; recovered at boundary ${match}`);
      });
    });
  }

  for (const seed of [21, 22]) {
    test(`rename over an existing file is atomic across kill -9 (seed ${seed})`, { timeout: 120_000 }, async () => {
      await withDir(async (dir) => {
        const r = new Random(seed);
        const child = runChild(['renamer', dir, String(5 + r.int(20))]);
        const acks = 1 + r.int(3);
        await child.until((l) => l.filter((x) => x.startsWith('ACK ')).length >= acks, `${acks} acknowledged fsyncs`);
        await new Promise((resolve) => setTimeout(resolve, r.int(80)));
        await child.kill();
        const lastBegin = lastIndex(child.lines, 'BEGIN');
        const lastAck = lastIndex(child.lines, 'ACK');
        assert.deepEqual(await fsckErrors(dir), [], 'fsck after kill -9');
        const fs = await openLocal(dir);
        const names = async (path: string): Promise<string[]> => {
          const a = await fs.lookupPath(who, path);
          return (await fs.readdir(who, a.ino, 0n, 100)).map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
        };
        assert.deepEqual(await names(''), ['d1', 'd2']);
        assert.deepEqual(await names('d2'), ['target'], 'the target never goes missing');
        const t = await fs.lookupPath(who, 'd2/target');
        const got = Buffer.from(await fs.read(who, t.ino, 0, t.size));
        const j = [...Array(lastBegin + 1).keys()].reverse().find((i) => i >= lastAck && renameContent(i).equals(got));
        assert.ok(j !== undefined, `d2/target (${got.length} bytes) is not the whole content of an iteration in [${lastAck}, ${lastBegin}]`);
        const d1 = await names('d1');
        if (d1.length > 0) {
          // The temp file of a later iteration, with whole writes only (40 KiB pieces or all of it).
          assert.deepEqual(d1, ['tmp']);
          const tmp = await fs.lookupPath(who, 'd1/tmp');
          const part = Buffer.from(await fs.read(who, tmp.ino, 0, tmp.size));
          const ok = [...Array(lastBegin + 1).keys()].some(
            (i) => i > j && (part.length % (40 * 1024) === 0 || part.length === renameContent(i).length) && renameContent(i).subarray(0, part.length).equals(part),
          );
          assert.ok(ok, `d1/tmp (${part.length} bytes) is not a whole-write prefix of a later iteration`);
        }
        await fs.close();
        console.log(`seed ${seed}: killed in iteration ${lastBegin}, last acked ${lastAck}; target holds iteration ${j}; d1: [${d1.join(', ')}]`);
      });
    });
  }
});
