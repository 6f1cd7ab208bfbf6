/**
 * A crash in the middle of gc or of the cleaner (compaction) loses nothing: for each failpoint gc
 * and the cleaner hit, the commit failpoints during the cleaner's commit, and crashes at a store
 * call, the process "dies" there (the store freezes: nothing after the point lands, as with the
 * simulation's FaultyStore), the volume is reopened, every file reads as before, fsck is clean,
 * and a later gc finishes the job (it frees objects and brings stored bytes near the live bytes).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { GC_FAILPOINTS, collectGarbage } from '../../src/headhunter/index.ts';
import { CLEANER_FAILPOINTS, cleanSegments } from '../../src/inode/index.ts';
import { FaultyStore, MemoryStore } from '../../src/objstore/index.ts';
import { Failpoints, Random } from '../../src/util/index.ts';

const volumeOptions = { segmentBytesMax: 128 * 1024, headEveryCommits: 2 };
const inode = { largeRunBytes: 32 * 1024 };

function storedBytes(store: MemoryStore): number {
  let n = 0;
  for (const [k, v] of store.snapshot()) if (k.includes('/log/') || k.includes('/seg/')) n += v.length;
  return n;
}

async function digests(fs: SiltFileSystem, names: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of [...names].sort()) {
    const a = await fs.lookupPath(root, name);
    out.set(name, createHash('sha256').update(await fs.read(root, a.ino, 0, a.size)).digest('hex'));
  }
  return out;
}

/** A churned volume: most segments partly live, many wholly dead. Returns the live files' digests. */
async function churnedVolume(store: MemoryStore): Promise<Map<string, string>> {
  const rnd = new Random(11);
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions, inode });
  const live = new Set<string>();
  for (let round = 0; round < 12; round++) {
    for (let i = 0; i < 8; i++) {
      const name = `f${rnd.int(16)}`;
      if (live.has(name)) await fs.unlink(root, 1, name);
      const a = await fs.create(root, 1, name, 0o644);
      await fs.write(root, a.ino, 0, rnd.bytes(1 + rnd.int(rnd.chance(0.3) ? 120_000 : 12_000)));
      live.add(name);
    }
    await fs.sync();
  }
  const d = await digests(fs, live);
  await fs.close();
  return d;
}

/** The full job, as `silt gc` does it: clean, one more commit, delete what is unreferenced. */
async function fullGc(fs: SiltFileSystem): Promise<{ deleted: number; liveBytes: number }> {
  const c = await cleanSegments(fs.inodes, { utilizationMax: 0.8, segmentsMax: 1000 });
  if (c.recordsMoved > 0) {
    fs.volume.markChanged();
    await fs.sync();
  }
  const g = await collectGarbage(fs.volume, { graceMs: 0 });
  return { deleted: g.deleted, liveBytes: g.liveBytes };
}

type Plan = { kind: 'failpoint'; name: string; after: number } | { kind: 'store'; after: number };

const plans: Plan[] = [
  ...GC_FAILPOINTS.map((name) => ({ kind: 'failpoint' as const, name, after: name === 'gc-mid-delete' ? 3 : 0 })),
  ...CLEANER_FAILPOINTS.map((name) => ({ kind: 'failpoint' as const, name, after: name === 'cleaner-after-move' ? 4 : 0 })),
  // The cleaner's commit itself, at each step of the commit path.
  ...['before-data-put', 'after-data-put', 'before-commit-put', 'after-commit-put', 'before-head-put'].map((name) => ({
    kind: 'failpoint' as const,
    name,
    after: 0,
  })),
  // Power cut at a store call somewhere in clean + commit + gc.
  ...[2, 9, 25, 60].map((after) => ({ kind: 'store' as const, after })),
];

test('a crash anywhere in the cleaner or gc loses nothing; fsck is clean; a later gc finishes the job', async () => {
  const reference = new MemoryStore();
  const expected = await churnedVolume(reference);
  // What an uninterrupted run leaves, for comparison.
  {
    const fs = await openFileSystem({ store: reference, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions, inode });
    await fullGc(fs);
    await fs.close();
  }
  const target = storedBytes(reference);
  let fired = 0;
  for (const plan of plans) {
    const what = plan.kind === 'store' ? `store call ${plan.after + 1}` : `${plan.name} after ${plan.after}`;
    const inner = new MemoryStore();
    await churnedVolume(inner);
    const before = storedBytes(inner);
    const faulty = new FaultyStore(inner, { random: new Random(plan.after + 1) });
    const failpoints = new Failpoints();
    failpoints.onCrash = (name) => faulty.crashNow(name);
    const fs = await openFileSystem({ store: faulty, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions: { ...volumeOptions, failpoints }, inode });
    if (plan.kind === 'store') faulty.crashAfterOps(plan.after);
    else failpoints.arm(plan.name, plan.after);
    await assert.rejects(fullGc(fs), `${what}: the run is cut off`);
    assert.ok(faulty.crashed, `${what}: the crash fired`);
    fired++;
    // The process is gone; a new one opens the same store.
    const rep = await checkVolume(inner, 'default');
    assert.ok(rep.clean, `${what}: fsck after the crash: ${JSON.stringify(rep.problems.slice(0, 3))}`);
    const fs2 = await openFileSystem({ store: inner, flushIntervalMs: 0, gcIntervalMs: 0, volumeOptions, inode });
    assert.deepEqual(await digests(fs2, expected.keys()), expected, `${what}: every file intact after the crash`);
    const later = await fullGc(fs2);
    await fs2.close();
    const after = storedBytes(inner);
    assert.ok(after < before, `${what}: the later gc freed space (${before} -> ${after})`);
    assert.ok(after <= 1.2 * later.liveBytes + 128 * 1024, `${what}: ${after} stored for ${later.liveBytes} live (uninterrupted: ${target})`);
    const rep2 = await checkVolume(inner, 'default');
    assert.ok(rep2.clean, `${what}: fsck after the later gc: ${JSON.stringify(rep2.problems.slice(0, 3))}`);
    const fs3 = await openFileSystem({ store: inner, flushIntervalMs: 0, gcIntervalMs: 0 });
    assert.deepEqual(await digests(fs3, expected.keys()), expected, `${what}: every file intact after the later gc`);
    await fs3.close();
  }
  assert.equal(fired, plans.length);
});
