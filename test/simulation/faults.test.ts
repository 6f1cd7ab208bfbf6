/**
 * Transient store faults without crashes: every fault kind at 10%. The engine does not retry a
 * failed PUT inside one sync (backends retry; FaultyStore plays a backend whose retries ran out),
 * so a sync may fail with EIO: the model treats it as not acknowledged, and a later successful
 * sync must cover everything. An update that fails half-way halts the volume; the harness then
 * reopens it and checks the recovered state like a crash. At the end, with faults off, one sync
 * must succeed, the file system must equal the model exactly, and fsck must be clean.
 *
 *   SILT_SEED=n           replay exactly one seed
 *   SILT_FAULT_SEEDS=n    how many seeds (default 12)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultyStore, MemoryStore } from '../../src/objstore/index.ts';
import { openFileSystem, rootIdentity as who } from '../../src/fs/index.ts';
import { FsError, Random } from '../../src/util/index.ts';
import { Simulation, defaultShape, type SimStats } from './harness.ts';

const tenPercent = {
  putFailBefore: 0.1,
  putFailAfter: 0.1,
  streamWriteFail: 0.1,
  getFail: 0.1,
  shortRead: 0.1,
  headFail: 0.1,
  listFail: 0.1,
  deleteFail: 0.1,
  latency: 0.3,
};

test('transient faults at 10%: the workload completes and ends equal to the model', { timeout: 20 * 60_000 }, async () => {
  const one = process.env.SILT_SEED;
  const seeds = one !== undefined ? [Number(one)] : Array.from({ length: Number(process.env.SILT_FAULT_SEEDS ?? 12) }, (_, i) => 1001 + i);
  let syncsFailed = 0;
  let syncsAcked = 0;
  let restarts = 0;
  let faults = 0;
  const start = Date.now();
  for (const seed of seeds) {
    const t0 = Date.now();
    const s: SimStats = await new Simulation({ seed, rounds: 1, opsPerRound: 300, faults: tenPercent, crash: false, liveCheckEvery: 60, shape: { ...defaultShape, gc: true } }).run();
    console.log(`seed ${seed}: ${s.ops} ops, ${s.faults} faults, ${s.syncsAcked} syncs acked, ${s.syncsFailed} failed, ${s.eioOps} EIO ops, ${s.restarts} restarts after a halted update, ${Date.now() - t0} ms`);
    syncsFailed += s.syncsFailed;
    syncsAcked += s.syncsAcked;
    restarts += s.restarts;
    faults += s.faults;
  }
  console.log(`${seeds.length} seeds: ${faults} faults, ${syncsAcked} syncs acked, ${syncsFailed} failed, ${restarts} restarts, ${Date.now() - start} ms`);
  if (one === undefined) {
    assert.ok(syncsFailed > 0, 'faults at 10% should fail some syncs');
    assert.ok(syncsAcked > syncsFailed, 'most syncs should still succeed');
  }
});

test('a write that fails with EIO changes nothing; the next sync covers what came before', async () => {
  const store = new FaultyStore(new MemoryStore(), { random: new Random(7) });
  const fs = await openFileSystem({
    store,
    create: true,
    flushIntervalMs: 0,
    // Bulk data goes to small data segments, one PUT in flight at a time: a write waits for it.
    volumeOptions: { segmentBytesMax: 256 * 1024, inflightSegmentsMax: 1 },
    inode: { largeRunBytes: 64 * 1024 },
  });
  const f = await fs.create(who, 1, 'f', 0o644);
  const first = Buffer.alloc(600 * 1024, 1);
  await fs.write(who, f.ino, 0, first);
  await fs.sync();
  store.setFaults({ putFailBefore: 1 });
  // Writes go on until one must wait for a data segment PUT, which fails: that write is refused
  // before it changes anything.
  let size = first.length;
  let refused: unknown;
  for (let i = 0; i < 40 && refused === undefined; i++) {
    try {
      await fs.write(who, f.ino, size, Buffer.alloc(64 * 1024, 2));
      size += 64 * 1024;
    } catch (err) {
      refused = err;
    }
  }
  assert.ok(refused instanceof FsError && refused.errno === 'EIO', `a write was refused with EIO (${String(refused)})`);
  assert.equal((await fs.getattr(who, f.ino)).size, size, 'the refused write was not applied');
  await assert.rejects(fs.sync(), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  store.setFaults({ putFailBefore: 0 });
  await fs.sync();
  await fs.close();
  const again = await openFileSystem({ store: store.inner, flushIntervalMs: 0 });
  const a = await again.lookupPath(who, 'f');
  assert.equal(a.size, size);
  const got = Buffer.from(await again.read(who, a.ino, 0, a.size));
  assert.deepEqual(got.subarray(0, first.length), first);
  assert.ok(got.subarray(first.length).every((b) => b === 2));
  await again.close();
});
