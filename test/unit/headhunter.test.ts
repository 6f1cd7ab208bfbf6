import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type ObjectStore, type PutOptions } from '../../src/objstore/index.ts';
import { Volume, readCommit, decodeInode } from '../../src/headhunter/index.ts';
import { mkfs, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { TRAILER_BYTES, commitKey } from '../../src/segment/index.ts';
import { CorruptionError, FsError } from '../../src/util/index.ts';

const V = 'vol';

async function open(store: ObjectStore, volumeOptions: Record<string, unknown> = {}): Promise<SiltFileSystem> {
  return openFileSystem({ store, volume: V, create: true, flushIntervalMs: 0, volumeOptions: { headEveryCommits: 1000, ...volumeOptions } });
}

function logPuts(store: MemoryStore, before: string[]): string[] {
  return store.keys().filter((k) => k.startsWith(`${V}/log/`) && !before.includes(k));
}

async function expectErrno(p: Promise<unknown>, errno: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FsError, `expected FsError ${errno}, got ${String(e)}`);
    assert.equal(e.errno, errno, e.message);
    return true;
  });
}

async function clean(store: ObjectStore): Promise<void> {
  const r = await checkVolume(store, V);
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(r.problems));
}

/** Wraps a store: PUTs of keys matching `match` wait until `release()`; counts every PUT by key. */
class GateStore implements ObjectStore {
  readonly puts: string[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  constructor(
    readonly inner: ObjectStore,
    readonly match: RegExp = /\/log\//,
    conditional = true,
  ) {
    this.capabilities = { conditionalCreate: conditional, description: 'gate' };
  }
  readonly capabilities: ObjectStore['capabilities'];
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  async put(key: string, data: Uint8Array, o?: PutOptions) {
    this.puts.push(key);
    if (this.gate && this.match.test(key)) await this.gate;
    return this.inner.put(key, data, this.capabilities.conditionalCreate ? o : {});
  }
  putStream(key: string, o?: PutOptions) {
    return this.inner.putStream(key, o);
  }
  get(key: string, r?: { offset: number; length: number }) {
    return this.inner.get(key, r);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(p: string, o?: { after?: string; limit?: number }) {
    return this.inner.list(p, o);
  }
  async close() {}
}

test('mkfs writes super, the first commit and head; open reads them back', async () => {
  const store = new MemoryStore();
  const v = await mkfs(store, V);
  assert.deepEqual(store.keys(), [`${V}/head`, `${V}/log/0000000000000001`, `${V}/super`]);
  const sb = JSON.parse(Buffer.from(await store.get(`${V}/super`)).toString());
  assert.equal(sb.format, 'silt');
  assert.equal(sb.version, 1);
  assert.equal(sb.name, V);
  assert.match(sb.volumeId, /^[0-9a-f]{32}$/);
  assert.deepEqual(JSON.parse(Buffer.from(await store.get(`${V}/head`)).toString()), { seq: 1 });
  assert.equal(v.lastCommit.seq, 1);
  assert.equal(v.lastCommit.prevSeq, 0);
  assert.equal(v.lastCommit.volumeId, sb.volumeId);
  assert.equal(v.lastCommit.inodeCount, 1);
  assert.equal(v.lastCommit.nonceNext, 2);
  await v.close();
  const c = await readCommit(store, `${V}/`, 1);
  assert.deepEqual(c, v.lastCommit);
  const w = await Volume.open(store, V, {});
  assert.deepEqual(w.lastCommit, v.lastCommit);
  assert.deepEqual(w.openWarnings, []);
  const rootRec = decodeInode((await w.inodeTable.get(1))!, 1);
  assert.equal(rootRec.mode, 0o40755);
  assert.equal(rootRec.nlink, 2);
  assert.equal(rootRec.parent, 1);
  await clean(store);
  // mkfs refuses an existing volume; open refuses a missing one; names are validated.
  await expectErrno(mkfs(store, V), 'EEXIST');
  await expectErrno(Volume.open(store, 'nope', {}), 'ENOENT');
  await expectErrno(mkfs(store, '../x'), 'EINVAL');
  await expectErrno(mkfs(store, ''), 'EINVAL');
  // A volume is opened by the fs layer with `create`; reopening keeps it.
  const fs = await open(store);
  assert.equal(fs.volume.volumeId, sb.volumeId);
  await fs.close();
});

test('group commit: 8 concurrent sync() calls share one commit PUT', async () => {
  const store = new MemoryStore();
  const fs = await open(store);
  const files = [];
  for (let i = 0; i < 8; i++) files.push(await fs.create(root, 1, `f${i}`, 0o644));
  for (const f of files) await fs.write(root, f.ino, 0, Buffer.alloc(4096, f.ino));
  const before = store.keys();
  store.resetStats();
  await Promise.all(files.map((f) => fs.fsync(f.ino, false)));
  assert.equal(store.stats.puts, 1, `one PUT for 8 concurrent fsyncs, saw ${store.stats.puts}`);
  assert.equal(logPuts(store, before).length, 1);
  // Nothing changed: sync is free.
  store.resetStats();
  await Promise.all([fs.sync(), fs.sync(), fs.fsync(files[0]!.ino, true)]);
  assert.equal(store.stats.puts, 0);
  // 8 writers that each write then fsync, all at once: 1 or 2 commits (one may already be in flight).
  const before2 = store.keys();
  store.resetStats();
  await Promise.all(
    files.map(async (f) => {
      await fs.write(root, f.ino, 4096, Buffer.alloc(4096, 0xaa));
      await fs.fsync(f.ino, false);
    }),
  );
  const n = logPuts(store, before2).length;
  assert.ok(n === 1 || n === 2, `8 writer+fsync tasks took ${n} commit PUTs`);
  assert.equal(store.stats.puts, n, 'no other PUT on the commit path');
  await fs.close();
  await clean(store);
});

test('group commit: syncs arriving while a commit is in flight share exactly one follow-up commit', async () => {
  const mem = new MemoryStore();
  const store = new GateStore(mem);
  const fs = await open(store);
  const a = await fs.create(root, 1, 'a', 0o644);
  store.hold();
  const first = fs.sync();
  await new Promise((r) => setTimeout(r, 5)); // the first commit is now waiting on its PUT
  const files = [];
  for (let i = 0; i < 8; i++) files.push(await fs.create(root, 1, `g${i}`, 0o644));
  const later = files.map((f) => fs.fsync(f.ino, false));
  const putsBefore = store.puts.length;
  store.release();
  await Promise.all([first, ...later]);
  assert.equal(store.puts.length - putsBefore, 1, 'eight syncs behind an in-flight commit share one more PUT');
  await fs.close();
  const fs2 = await open(mem);
  for (const f of files) assert.equal((await fs2.lookup(root, 1, `g${files.indexOf(f)}`)).ino, f.ino);
  assert.equal((await fs2.lookup(root, 1, 'a')).ino, a.ino);
  await fs2.close();
});

test('fencing: the second of two servers to commit is fenced and refuses writes with EROFS', async () => {
  for (const conditional of [true, false]) {
    const mem = new MemoryStore();
    const store = new GateStore(mem, /^$/, conditional);
    const init = await open(store);
    await init.close();
    const a = await open(store);
    const b = await open(store);
    assert.equal(a.volume.lastCommit.seq, b.volume.lastCommit.seq);
    await a.create(root, 1, 'from-a', 0o644);
    await a.sync();
    const fb = await b.create(root, 1, 'from-b', 0o644);
    await expectErrno(b.sync(), 'EIO');
    assert.ok(b.volume.fenced, `fenced (conditional=${conditional})`);
    assert.match(b.volume.fenced!.message, /fenced/);
    await expectErrno(b.create(root, 1, 'again', 0o644), 'EROFS');
    await expectErrno(b.write(root, fb.ino, 0, Buffer.from('x')), 'EROFS');
    await expectErrno(b.mkdir(root, 1, 'd', 0o755), 'EROFS');
    await expectErrno(b.sync(), 'EIO');
    await b.close(); // a fenced volume closes without trying to commit
    // The first server is unaffected and keeps committing.
    await a.create(root, 1, 'a2', 0o644);
    await a.sync();
    await a.close();
    const c = await open(mem);
    const names = (await c.readdir(root, 1, 0n, 100)).map((e) => e.name).sort();
    assert.deepEqual(names, ['.', '..', 'a2', 'from-a']);
    await c.close();
    await clean(mem);
  }
});

test('recovery: a stale, missing, garbled or too-new head hint still finds the newest commit', async () => {
  const store = new MemoryStore();
  const fs = await open(store, { headEveryCommits: 4 });
  for (let i = 0; i < 11; i++) {
    await fs.create(root, 1, `f${i}`, 0o644);
    await fs.sync();
  }
  const newest = fs.volume.lastCommit.seq;
  assert.equal(newest, 12);
  const head = JSON.parse(Buffer.from(await store.get(`${V}/head`)).toString()).seq;
  assert.ok(head < newest, `head ${head} lags the newest commit ${newest} (hint written off the critical path)`);
  fs.inodes.stop(); // crash: no close, so no final head update
  const hints: Array<[string, Uint8Array | null]> = [
    ['stale', Buffer.from('{"seq":1}\n')],
    ['lagging', Buffer.from(`{"seq":${head}}\n`)],
    ['missing', null],
    ['garbled', Buffer.from('not json')],
    ['zero', Buffer.from('{"seq":0}')],
    ['ahead of the log', Buffer.from('{"seq":999}')],
    ['exact', Buffer.from(`{"seq":${newest}}`)],
  ];
  for (const [what, bytes] of hints) {
    if (bytes) await store.put(`${V}/head`, bytes);
    else await store.delete(`${V}/head`);
    store.resetStats();
    const v = await Volume.open(store, V, {});
    assert.equal(v.lastCommit.seq, newest, `${what} hint`);
    assert.deepEqual(v.openWarnings, [], `${what} hint: no warnings`);
    // Probe the hint and one past it, then read each commit from the checkpoint on (one HEAD each).
    const chain = newest - v.lastCommit.checkpointSeq + 1;
    if (what === 'exact') assert.ok(store.stats.heads <= 2 + chain, `exact hint: probe it, one past it, read ${chain} commits (${store.stats.heads} HEADs)`);
  }
  await clean(store);
});

test('recovery: a corrupt newest commit falls back to the one before, with a warning', async () => {
  const store = new MemoryStore();
  const fs = await open(store);
  await fs.create(root, 1, 'kept', 0o644);
  await fs.sync();
  const good = fs.volume.lastCommit.seq;
  await fs.create(root, 1, 'lost', 0o644);
  await fs.sync();
  fs.inodes.stop();
  const key = commitKey(`${V}/`, good + 1);
  const bytes = Uint8Array.from(await store.get(key));
  bytes[bytes.length - TRAILER_BYTES - 5]! ^= 0x40; // inside the commit record
  await store.put(key, bytes);
  await assert.rejects(readCommit(store, `${V}/`, good + 1), CorruptionError);
  const fs2 = await open(store);
  assert.equal(fs2.volume.lastCommit.seq, good);
  assert.equal(fs2.volume.openWarnings.length, 1);
  assert.match(fs2.volume.openWarnings[0]!, /falling back/);
  assert.ok(await fs2.lookup(root, 1, 'kept'));
  await expectErrno(fs2.lookup(root, 1, 'lost'), 'ENOENT');
  // Commits continue after the damaged sequence (which exists, so it cannot be reused): the next
  // one names the last good commit as its predecessor, and the damaged one is never read again.
  await fs2.create(root, 1, 'after', 0o644);
  await fs2.sync();
  assert.equal(fs2.volume.lastCommit.seq, good + 2);
  assert.equal(fs2.volume.lastCommit.prevSeq, good);
  await fs2.close();
  const fs3 = await open(store);
  assert.deepEqual(fs3.volume.openWarnings, []);
  assert.deepEqual((await fs3.readdir(root, 1, 0n, 10)).map((e) => e.name).sort(), ['.', '..', 'after', 'kept']);
  await fs3.close();
  await clean(store);
});

test('nonces never repeat across reopen (inode and data segment numbers)', async () => {
  const store = new MemoryStore();
  const inos = new Set<number>();
  const seen = (n: number, what: string) => {
    assert.ok(!inos.has(n), `${what} ${n} was handed out twice`);
    inos.add(n);
  };
  for (let round = 0; round < 6; round++) {
    const fs = await open(store, { segmentBytesMax: 256 * 1024 });
    const lastNonce = fs.volume.lastCommit.nonceNext;
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await fs.create(root, 1, `r${round}-${i}`, 0o644));
    made.push(await fs.mkdir(root, 1, `d${round}`, 0o755));
    for (const m of made) {
      assert.ok(m.ino >= lastNonce, `inode ${m.ino} below the durable high-water mark ${lastNonce}`);
      seen(m.ino, 'inode');
    }
    // A large sequential write streams into data segments (their numbers come from the nonce too).
    const big = Buffer.alloc(3 * 1024 * 1024, round + 1);
    for (let off = 0; off < big.length; off += 256 * 1024) await fs.write(root, made[0]!.ino, off, big.subarray(off, off + 256 * 1024));
    if (round % 2 === 0) await fs.close();
    else {
      await fs.sync();
      fs.inodes.stop(); // crash after a durable commit
    }
  }
  const segs = store.keys().filter((k) => k.startsWith(`${V}/seg/`)).map((k) => parseInt(k.slice(V.length + 5), 16));
  assert.ok(segs.length >= 6, `data segments were written (${segs.length})`);
  for (const s of segs) seen(s, 'data segment number');
  const v = await Volume.open(store, V, {});
  assert.ok(v.lastCommit.nonceNext > Math.max(...inos), 'the durable high-water mark covers everything handed out');
  await clean(store);
});

test('fencing: a second server never overwrites data segments the first one committed', async () => {
  const store = new MemoryStore();
  const o = { segmentBytesMax: 1 << 20 };
  await (await open(store, o)).close();
  const a = await open(store, o);
  const b = await open(store, o);
  const fa = await a.create(root, 1, 'a', 0o644);
  const fb = await b.create(root, 1, 'b', 0o644);
  const chunk = 256 * 1024;
  const size = 4 << 20;
  // Both hand out the same nonces (inode and data segment numbers) from the same commit.
  assert.equal(fa.ino, fb.ino);
  for (let off = 0; off < size; off += chunk) await a.write(root, fa.ino, off, Buffer.alloc(chunk, 0xaa));
  await a.sync();
  const segsOfA = new Map(store.keys().filter((k) => k.includes('/seg/')).map((k) => [k, store.snapshot().get(k)!]));
  assert.ok(segsOfA.size >= 3);
  // b streams data segments with the numbers a already used, then tries to commit.
  for (let off = 0; off < size; off += chunk) await b.write(root, fb.ino, off, Buffer.alloc(chunk, 0xbb)).catch(() => {});
  await expectErrno(b.sync(), 'EIO');
  assert.ok(b.volume.fenced, 'b is fenced');
  for (const [k, bytes] of segsOfA) assert.ok(Buffer.from(store.snapshot().get(k)!).equals(Buffer.from(bytes)), `${k} was overwritten`);
  await b.close();
  await a.close();
  const c = await open(store);
  const data = Buffer.from(await c.read(root, (await c.lookup(root, 1, 'a')).ino, 0, size));
  assert.ok(data.equals(Buffer.alloc(size, 0xaa)), "a's committed file still holds a's bytes");
  await c.close();
  await clean(store);
});

test('data segments left by a crash are skipped, not overwritten, when numbers are handed out again', async () => {
  const store = new MemoryStore();
  const o = { segmentBytesMax: 256 * 1024 };
  const fs = await open(store, o);
  const mark = fs.volume.lastCommit.nonceNext;
  const f = await fs.create(root, 1, 'lost', 0o644);
  for (let off = 0; off < 2 << 20; off += 128 * 1024) await fs.write(root, f.ino, off, Buffer.alloc(128 * 1024, 1));
  await new Promise((r) => setTimeout(r, 10));
  const leftovers = store.keys().filter((k) => k.includes('/seg/'));
  assert.ok(leftovers.length > 0);
  const before = new Map(leftovers.map((k) => [k, Buffer.from(store.snapshot().get(k)!)]));
  fs.inodes.stop(); // crash: no commit references the leftovers
  const fs2 = await open(store, o);
  assert.equal(fs2.volume.lastCommit.nonceNext, mark);
  const g = await fs2.create(root, 1, 'new', 0o644);
  const highest = Math.max(...leftovers.map((k) => parseInt(k.slice(k.lastIndexOf('/') + 1), 16)));
  assert.ok(g.ino > highest, `new numbers (${g.ino}) start above the leftovers (${highest})`);
  for (let off = 0; off < 2 << 20; off += 128 * 1024) await fs2.write(root, g.ino, off, Buffer.alloc(128 * 1024, 2));
  await fs2.close();
  for (const [k, b] of before) assert.ok(Buffer.from(store.snapshot().get(k)!).equals(b), `${k} untouched`);
  const fs3 = await open(store);
  assert.ok(Buffer.from(await fs3.read(root, g.ino, 0, 2 << 20)).equals(Buffer.alloc(2 << 20, 2)));
  await fs3.close();
  await clean(store);
});
