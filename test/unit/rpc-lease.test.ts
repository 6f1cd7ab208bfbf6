/**
 * The owner lease (src/headhunter/lease.ts) that `silt serve` and `silt mount` hold: a second
 * owner is refused while the first one's heartbeat is fresh (the refusal names it and its age);
 * a lease whose holder stopped renewing goes stale and is taken; a holder on this host whose
 * process is gone is taken at once; --takeover takes a live one; the old holder learns it lost
 * at its next heartbeat, and the new owner's claim commit fences the old owner's next commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { openFileSystem, rootIdentity } from '../../src/fs/index.ts';
import { LeaseHeldError, VolumeLease, readLease, type LeaseView } from '../../src/headhunter/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { FsError, StoreError } from '../../src/util/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const elsewhere = { host: 'standby-host', bootId: 'b-standby', pid: 4242 };

test('a live lease refuses a second owner, naming the holder and the age of its heartbeat', async () => {
  const store = new MemoryStore();
  const a = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', address: '10.0.0.1:12345', intervalMs: 1000, host: 'owner-host', bootId: 'b1', pid: 111 });
  assert.equal(a.previous, undefined);
  assert.equal(a.tookOver, false);
  const err = await VolumeLease.acquire(store, 'vol', { role: 'silt mount', ...elsewhere }).then(
    () => assert.fail('a second owner was let in'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LeaseHeldError);
  assert.equal(err.errno, 'EBUSY');
  assert.match(err.message, /owned by silt serve \(pid 111 on host owner-host, at 10\.0\.0\.1:12345\), last heartbeat \d+\.\d s ago/);
  assert.equal(err.view.state, 'live');
  // Another volume of the same store is not affected.
  const other = await VolumeLease.acquire(store, 'other', { role: 'silt serve', ...elsewhere });
  await other.release();
  await a.release();
  const v = await readLease(store, 'vol');
  assert.equal(v?.state, 'released');
  // A released lease is free, and taking it is no takeover.
  const b = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', ...elsewhere });
  assert.equal(b.previous?.state, 'released');
  assert.equal(b.tookOver, false);
  assert.equal(b.info.epoch, 2);
  // Recent epochs stay (an old holder must find its successor), the highest is the lease.
  assert.deepEqual((await store.list('vol/owner/')).objects.map((o) => o.key), ['vol/owner/0000000000000001', 'vol/owner/0000000000000002']);
  await b.release({ forget: true });
  assert.deepEqual((await store.list('vol/owner/')).objects.map((o) => o.key), ['vol/owner/0000000000000001'], 'forget deletes its own epoch');
  assert.equal((await readLease(store, 'vol'))?.state, 'released');
});

test('a lease that is not renewed goes stale and is taken; the old holder learns it lost at its next heartbeat', async () => {
  const store = new MemoryStore();
  const a = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', intervalMs: 40, staleAfterIntervals: 3, host: 'owner-host', bootId: 'b1', pid: 111 });
  // Heartbeats keep it live well past 3 intervals.
  a.start(() => assert.fail('lost while nobody took it'));
  await sleep(250);
  await assert.rejects(VolumeLease.acquire(store, 'vol', { role: 'silt serve', ...elsewhere }), LeaseHeldError);
  // Simulate a hung owner: no heartbeats. (release() would mark it released; this only stops the timer.)
  let lostTo: LeaseView | undefined;
  let lostCalls = 0;
  const hung = a as unknown as { stopTimer(): void; onLost: (v: LeaseView | undefined) => void };
  hung.stopTimer();
  hung.onLost = (v) => {
    lostTo = v;
    lostCalls++;
  };
  await sleep(200);
  const b = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', ...elsewhere });
  assert.equal(b.previous?.state, 'stale');
  assert.ok(b.previous!.ageMs > 120, `age ${b.previous!.ageMs}`);
  assert.equal(b.tookOver, true);
  // The hung owner wakes up: its heartbeat finds the successor, and it writes nothing more.
  await a.renew();
  assert.equal(a.lost, true);
  assert.equal(lostCalls, 1);
  assert.equal(lostTo?.holder.ownerId, b.info.ownerId);
  await a.release();
  assert.equal((await readLease(store, 'vol'))?.holder.ownerId, b.info.ownerId);
  assert.equal((await readLease(store, 'vol'))?.state, 'live');
  await b.release();
});

test('a holder on this host whose process is gone is taken at once; --takeover takes a live one', async () => {
  const store = new MemoryStore();
  // A pid that cannot be alive on this host, with this host's name and boot id (read by acquire).
  const dead = await VolumeLease.acquire(store, 'vol', { role: 'silt mount', pid: 2 ** 22 + 12345, intervalMs: 60_000 });
  assert.equal(dead.info.host, os.hostname());
  const t0 = performance.now();
  const b = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', intervalMs: 100 });
  assert.ok(performance.now() - t0 < 2000, 'a dead holder is not waited for');
  assert.equal(b.previous?.state, 'dead');
  assert.equal(b.tookOver, true);
  // b is alive (this process): refused without takeover, taken with it, after waiting b's lease out.
  await assert.rejects(VolumeLease.acquire(store, 'vol', { role: 'silt serve', ...elsewhere }), LeaseHeldError);
  const t1 = performance.now();
  const c = await VolumeLease.acquire(store, 'vol', { role: 'silt serve', takeover: true, ...elsewhere });
  assert.ok(performance.now() - t1 >= 300, `the takeover waited b's 3 intervals (${performance.now() - t1} ms)`);
  assert.equal(c.previous?.state, 'live');
  assert.equal(c.tookOver, true);
  await b.renew();
  assert.equal(b.lost, true);
  await c.release();
});

test("after a takeover the new owner's claim commit fences the old owner's next commit", async () => {
  const store = new MemoryStore();
  const leaseA = await VolumeLease.acquire(store, 'default', { role: 'silt serve', intervalMs: 100 });
  const fsA = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  const f = await fsA.create(rootIdentity, 1, 'fromA', 0o644);
  await fsA.write(rootIdentity, f.ino, 0, Buffer.from('A1'));
  await fsA.fsync(f.ino, false);

  const leaseB = await VolumeLease.acquire(store, 'default', { role: 'silt serve', takeover: true, ...elsewhere, intervalMs: 100 });
  const fsB = await openFileSystem({ store, flushIntervalMs: 0 });
  await leaseB.claim(fsB.volume);

  // A has not noticed yet and writes on: its commit fails, and it stays fenced.
  await fsA.write(rootIdentity, f.ino, 0, Buffer.from('A2'));
  await assert.rejects(fsA.fsync(f.ino, false), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  assert.ok(fsA.volume.fenced);
  await leaseA.renew();
  assert.equal(leaseA.lost, true);
  await fsA.close().catch(() => {});
  await leaseA.release();

  // B serves what A had made durable, and commits on.
  const a = await fsB.lookupPath(rootIdentity, 'fromA');
  assert.equal(Buffer.from(await fsB.read(rootIdentity, a.ino, 0, 10)).toString(), 'A1');
  await fsB.create(rootIdentity, 1, 'fromB', 0o644);
  await fsB.close();
  await leaseB.release();
  const fsC = await openFileSystem({ store });
  assert.deepEqual((await fsC.readdir(rootIdentity, 1, 0n, 100)).map((e) => e.name).filter((n) => !n.startsWith('.')).sort(), ['fromA', 'fromB']);
  await fsC.close();
});

test('an owner writes and acknowledges only while its lease is valid; a lapsed lease makes fsync fail (EIO, not fenced) until a heartbeat renews it; a lost one fences', async () => {
  const store = new MemoryStore();
  const lease = await VolumeLease.acquire(store, 'default', { role: 'silt serve', intervalMs: 100 });
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  fs.volume.setOwnership(lease);
  const f = await fs.create(rootIdentity, 1, 'f', 0o644);
  await fs.write(rootIdentity, f.ino, 0, Buffer.from('one'));
  await fs.fsync(f.ino, false); // valid: acquired just now
  // No heartbeat for longer than the validity (2 intervals), and the store refuses the renewal.
  await sleep(250);
  const head = store.head.bind(store);
  store.head = async () => {
    throw new StoreError('unavailable', 'store unreachable');
  };
  await fs.write(rootIdentity, f.ino, 0, Buffer.from('two'));
  await assert.rejects(fs.fsync(f.ino, false), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  assert.equal(fs.volume.fenced, null, 'not fenced: the lease may still be ours');
  // The store is back: the next fsync renews the lease and acknowledges.
  store.head = head;
  await fs.fsync(f.ino, false);
  // Another process takes the volume over (after waiting this lease out): the next commit fences.
  const other = await VolumeLease.acquire(store, 'default', { role: 'silt serve', takeover: true, ...elsewhere, intervalMs: 100 });
  await fs.write(rootIdentity, f.ino, 0, Buffer.from('three'));
  await assert.rejects(fs.fsync(f.ino, false), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
  assert.ok(fs.volume.fenced, 'fenced once the lease is lost');
  assert.equal(lease.lost, true);
  await fs.close().catch(() => {});
  await other.release();
  const fs2 = await openFileSystem({ store, flushIntervalMs: 0 });
  const a = await fs2.lookupPath(rootIdentity, 'f');
  assert.equal(Buffer.from(await fs2.read(rootIdentity, a.ino, 0, 10)).toString(), 'two', 'what was acknowledged is there');
  await fs2.close();
});
