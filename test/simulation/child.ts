/**
 * A separate process for the durability tests (test/integration/durability.test.ts), run as
 * `node --import tsx test/simulation/child.ts <command> <store dir> ...` on a LocalStore.
 *
 *   dump <dir>                      print {lines, fsck} of the volume as JSON (a fresh reader)
 *   workload <dir> <seed> <flushMs> run the simulation workload forever (until killed), printing
 *                                   "BEGIN i" before op i starts, "ACK i" when sync op i returned
 *   renamer <dir> <flushMs>         atomic-replace loop: write d1/tmp, rename over d2/target;
 *                                   "BEGIN i" before iteration i, "ACK i" after an fsync
 *
 * Progress lines are written with writeSync: they reach the pipe before the next step starts, so
 * a parent that kills this process with SIGKILL knows every operation that may have begun.
 */
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity as who, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { Random } from '../../src/util/index.ts';
import { Model, outcomeText } from './model.ts';
import { applyFs, applyModel, dataPool, describeFs, genOp, opText, type WorkloadShape } from './harness.ts';

export const childShape: WorkloadShape = { bigWrite: 0.03, sync: 0.1, depthMax: 2 };
export const childVolumeOptions = { segmentBytesMax: 256 * 1024, commitBytesMax: 512 * 1024, headEveryCommits: 3 };
export const childInodeOptions = { largeRunBytes: 96 * 1024 };

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

/** The content the renamer writes in iteration i (shared with the test that checks it). */
export function renameContent(i: number): Buffer {
  const pool = dataPool();
  const len = 1 + ((i * 7919) % (150 * 1024));
  const at = (i * 104_729) % (pool.length - len);
  return pool.subarray(at, at + len);
}

async function open(dir: string, flushMs: number, create: boolean): Promise<SiltFileSystem> {
  return openFileSystem({
    store: new LocalStore(dir),
    create,
    flushIntervalMs: flushMs,
    volumeOptions: childVolumeOptions,
    inode: childInodeOptions,
  });
}

async function main(): Promise<void> {
  const [cmd, dir, a, b] = process.argv.slice(2);
  if (!cmd || !dir) throw new Error('usage: child.ts dump|workload|renamer <dir> ...');
  if (cmd === 'dump') {
    const fs = await open(dir, 0, false);
    const lines = await describeFs(fs);
    const report = await checkVolume(new LocalStore(dir), 'default');
    say(JSON.stringify({ lines, problems: report.problems.filter((p) => p.severity === 'error') }));
    return;
  }
  if (cmd === 'workload') {
    const seed = Number(a);
    const fs = await open(dir, Number(b), true);
    const r = new Random(seed);
    const model = new Model();
    const handles: number[] = [];
    for (let i = 0; ; i++) {
      const op = genOp(r, model, childShape);
      const expected = applyModel(model, op);
      say(`BEGIN ${i}`);
      if (op.k === 'bgsync') {
        // Not awaited: ops go on while it commits. It covers everything before op i.
        fs.sync().then(
          () => say(`ACK ${i}`),
          () => {},
        );
        continue;
      }
      const { outcome } = await applyFs(fs, op, handles);
      if (outcomeText(outcome) !== outcomeText(expected)) {
        say(`MISMATCH ${i} ${opText(op)}: fs ${outcomeText(outcome)}, model ${outcomeText(expected)}`);
        process.exit(1);
      }
      if ((op.k === 'sync' || op.k === 'fsync') && 'ok' in outcome) say(`ACK ${i}`);
    }
  }
  if (cmd === 'renamer') {
    const fs = await open(dir, Number(a), true);
    const root = await fs.lookupPath(who, '');
    const d1 = (await fs.mkdir(who, root.ino, 'd1', 0o755)).ino;
    const d2 = (await fs.mkdir(who, root.ino, 'd2', 0o755)).ino;
    await fs.sync();
    say('READY');
    for (let i = 0; ; i++) {
      say(`BEGIN ${i}`);
      const f = await fs.create(who, d1, 'tmp', 0o644);
      const data = renameContent(i);
      for (let off = 0; off < data.length; off += 40 * 1024) {
        await fs.write(who, f.ino, off, data.subarray(off, Math.min(data.length, off + 40 * 1024)));
      }
      await fs.rename(who, d1, 'tmp', d2, 'target');
      if (i % 3 === 2) {
        await fs.fsync(f.ino, false);
        say(`ACK ${i}`);
      }
    }
  }
  throw new Error(`unknown command ${cmd}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      say(`ERROR ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(2);
    },
  );
}
