import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore } from '../../src/objstore/index.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  SEEK_DATA,
  SEEK_HOLE,
  openFileSystem,
  rootIdentity as root,
  type SiltFileSystem,
} from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { DATA_RECORD_BYTES_MAX } from '../../src/segment/index.ts';
import { FsError, copyOut } from '../../src/util/index.ts';

async function newFs(store = new MemoryStore(), inode: Record<string, unknown> = {}): Promise<{ fs: SiltFileSystem; store: MemoryStore }> {
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, inode, volumeOptions: { segmentBytesMax: 256 * 1024 } });
  return { fs, store };
}

/** A file model: contents plus which bytes are backed by data (the rest are holes). */
class Model {
  data = Buffer.alloc(0);
  mapped = new Uint8Array(0);
  private grow(n: number): void {
    if (n <= this.data.length) return;
    const d = Buffer.alloc(n);
    this.data.copy(d);
    const m = new Uint8Array(n);
    m.set(this.mapped);
    this.data = d;
    this.mapped = m;
  }
  write(off: number, b: Uint8Array): void {
    this.grow(off + b.length);
    this.data.set(b, off);
    this.mapped.fill(1, off, off + b.length);
  }
  truncate(n: number): void {
    if (n < this.data.length) {
      this.data = Buffer.from(this.data.subarray(0, n));
      this.mapped = this.mapped.slice(0, n);
    } else this.grow(n);
  }
  punch(off: number, len: number): void {
    const end = Math.min(this.data.length, off + len);
    if (end <= off) return;
    this.data.fill(0, off, end);
    this.mapped.fill(0, off, end);
  }
  get allocated(): number {
    let n = 0;
    for (const b of this.mapped) n += b;
    return n;
  }
}

async function extentsOf(fs: SiltFileSystem, ino: number): Promise<Array<[number, number]>> {
  const i = await fs.inodes.get(ino);
  const out: Array<[number, number]> = [];
  for await (const [k, e] of fs.inodes.extentsOf(i).entries()) out.push([k, e.n]);
  return out;
}

/** Compare the file with the model: bytes, size, allocated bytes, blocks, extents well-formed. */
async function same(fs: SiltFileSystem, ino: number, m: Model, what = ''): Promise<void> {
  const a = await fs.getattr(root, ino);
  assert.equal(a.size, m.data.length, `${what} size`);
  const got = Buffer.from(await fs.read(root, ino, 0, m.data.length + 10));
  assert.ok(got.equals(m.data), `${what} contents differ (first diff at ${firstDiff(got, m.data)})`);
  const i = await fs.inodes.get(ino);
  assert.equal(i.allocated, m.allocated, `${what} allocated bytes`);
  assert.equal(a.blocks, Math.ceil(m.allocated / 512), `${what} st_blocks`);
  let end = 0;
  let sum = 0;
  for (const [k, n] of await extentsOf(fs, ino)) {
    assert.ok(k >= end, `${what} extent at ${k} overlaps the previous (ends ${end})`);
    assert.ok(n > 0, `${what} empty extent at ${k}`);
    for (let x = k; x < k + n; x++) assert.equal(m.mapped[x], 1, `${what} extent covers a hole byte ${x}`);
    end = k + n;
    sum += n;
  }
  assert.ok(end <= m.data.length, `${what} extent past EOF`);
  assert.equal(sum, m.allocated);
}

function firstDiff(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

const fill = (n: number, v: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (v * 7 + i * 13) & 0xff || 1;
  return b;
};

async function fsckClean(store: MemoryStore): Promise<void> {
  const r = await checkVolume(store, 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(r.problems));
}

test('extent overwrite: middle, start, end, exact, and past the end of one extent', async () => {
  const cases: Array<[string, number, number, Array<[number, number]>]> = [
    ['middle', 40, 20, [[0, 40], [40, 20], [60, 40]]],
    ['start', 0, 10, [[0, 10], [10, 90]]],
    ['end', 90, 10, [[0, 90], [90, 10]]],
    ['exact', 0, 100, [[0, 100]]],
    ['straddling the end', 90, 60, [[0, 90], [90, 60]]],
    ['before the start (hole then data)', 150, 10, [[0, 100], [150, 10]]],
    ['one byte in the middle', 50, 1, [[0, 50], [50, 1], [51, 49]]],
  ];
  const { fs, store } = await newFs();
  for (const [what, off, len, want] of cases) {
    const f = await fs.create(root, 1, what, 0o644);
    const m = new Model();
    for (const [o, b] of [[0, fill(100, 1)], [off, fill(len, 2)]] as const) {
      await fs.write(root, f.ino, o, b);
      m.write(o, b);
    }
    assert.deepEqual(await extentsOf(fs, f.ino), want, what);
    await same(fs, f.ino, m, what);
  }
  await fs.sync();
  await fsckClean(store);
  await fs.close();
});

test('extent overwrite across many extents; records split at 64 KiB', async () => {
  const { fs, store } = await newFs();
  const f = await fs.create(root, 1, 'many', 0o644);
  const m = new Model();
  for (let i = 0; i < 10; i++) {
    const b = fill(10, i + 1);
    await fs.write(root, f.ino, i * 10, b);
    m.write(i * 10, b);
  }
  assert.equal((await extentsOf(fs, f.ino)).length, 10);
  const over = fill(70, 99);
  await fs.write(root, f.ino, 15, over);
  m.write(15, over);
  assert.deepEqual(await extentsOf(fs, f.ino), [[0, 10], [10, 5], [15, 70], [85, 5], [90, 10]]);
  await same(fs, f.ino, m, 'across');
  // A write larger than one data record is split into records of at most 64 KiB.
  const big = fill(DATA_RECORD_BYTES_MAX * 2 + 100, 5);
  const g = await fs.create(root, 1, 'big', 0o644);
  await fs.write(root, g.ino, 7, big);
  assert.deepEqual(await extentsOf(fs, g.ino), [[7, DATA_RECORD_BYTES_MAX], [7 + DATA_RECORD_BYTES_MAX, DATA_RECORD_BYTES_MAX], [7 + 2 * DATA_RECORD_BYTES_MAX, 100]]);
  const gm = new Model();
  gm.write(7, big);
  await same(fs, g.ino, gm, 'big');
  // Overwrite straddling a record boundary.
  const mid = fill(1000, 6);
  await fs.write(root, g.ino, 7 + DATA_RECORD_BYTES_MAX - 500, mid);
  gm.write(7 + DATA_RECORD_BYTES_MAX - 500, mid);
  await same(fs, g.ino, gm, 'big overwritten');
  await fs.close();
  const fs2 = (await newFs(store)).fs;
  await same(fs2, f.ino, m, 'after reopen');
  await same(fs2, g.ino, gm, 'big after reopen');
  await fs2.close();
  await fsckClean(store);
});

test('truncate shrink and grow; punch hole; sparse reads are zeros; allocated bytes exact', async () => {
  const { fs, store } = await newFs();
  const f = await fs.create(root, 1, 't', 0o644);
  const m = new Model();
  const step = async (what: string, fn: () => Promise<unknown>, model: () => void) => {
    await fn();
    model();
    await same(fs, f.ino, m, what);
  };
  const a = fill(300, 1);
  await step('write', () => fs.write(root, f.ino, 0, a), () => m.write(0, a));
  await step('shrink inside an extent', () => fs.setattr(root, f.ino, { size: 150 }), () => m.truncate(150));
  await step('grow leaves a hole', () => fs.setattr(root, f.ino, { size: 1000 }), () => m.truncate(1000));
  const b = fill(50, 2);
  await step('write past the hole', () => fs.write(root, f.ino, 2000, b), () => m.write(2000, b));
  await step('punch the middle of an extent', () => fs.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 50, 20), () => m.punch(50, 20));
  await step('punch across extents and a hole', () => fs.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 1920), () => m.punch(100, 1920));
  await step('punch past EOF keeps the size', () => fs.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2040, 5000), () => m.punch(2040, 5000));
  await step('fallocate grows the size without data', () => fs.fallocate(root, f.ino, 0, 0, 4000), () => m.truncate(4000));
  await step('fallocate KEEP_SIZE changes nothing', () => fs.fallocate(root, f.ino, FALLOC_FL_KEEP_SIZE, 0, 9000), () => {});
  await step('shrink to a hole boundary', () => fs.setattr(root, f.ino, { size: 2010 }), () => m.truncate(2010));
  await step('shrink to zero', () => fs.setattr(root, f.ino, { size: 0 }), () => m.truncate(0));
  assert.equal((await fs.inodes.get(f.ino)).allocated, 0);
  // A far sparse file: one byte at 1 GiB reads as zeros before it.
  const s = await fs.create(root, 1, 'sparse', 0o644);
  await fs.write(root, s.ino, 2 ** 30, Buffer.from([7]));
  const at = await fs.getattr(root, s.ino);
  assert.equal(at.size, 2 ** 30 + 1);
  assert.equal(at.blocks, 1);
  assert.ok(Buffer.from(await fs.read(root, s.ino, 2 ** 30 - 4096, 4097)).equals(Buffer.concat([Buffer.alloc(4096), Buffer.from([7])])));
  assert.equal((await fs.read(root, s.ino, 2 ** 30 + 1, 100)).length, 0, 'read at EOF is empty');
  await fs.close();
  await fsckClean(store);
});

test('SEEK_DATA and SEEK_HOLE', async () => {
  const { fs } = await newFs();
  const f = await fs.create(root, 1, 's', 0o644);
  // data [0,4096) hole [4096,8192) data [8192,12288) [12288,12388) hole to 20000
  await fs.write(root, f.ino, 0, fill(4096, 1));
  await fs.write(root, f.ino, 8192, fill(4096, 2));
  await fs.write(root, f.ino, 12288, fill(100, 3));
  await fs.setattr(root, f.ino, { size: 20000 });
  const seek = (off: number, w: number) => fs.lseek(root, f.ino, off, w);
  const cases: Array<[number, number, number | 'ENXIO']> = [
    [0, SEEK_DATA, 0],
    [100, SEEK_DATA, 100],
    [4096, SEEK_DATA, 8192],
    [5000, SEEK_DATA, 8192],
    [12387, SEEK_DATA, 12387],
    [12388, SEEK_DATA, 'ENXIO'],
    [19999, SEEK_DATA, 'ENXIO'],
    [20000, SEEK_DATA, 'ENXIO'],
    [0, SEEK_HOLE, 4096],
    [4096, SEEK_HOLE, 4096],
    [6000, SEEK_HOLE, 6000],
    [8192, SEEK_HOLE, 12388],
    [12300, SEEK_HOLE, 12388],
    [19999, SEEK_HOLE, 19999],
    [20000, SEEK_HOLE, 'ENXIO'],
  ];
  for (const [off, w, want] of cases) {
    const what = `${w === SEEK_DATA ? 'SEEK_DATA' : 'SEEK_HOLE'} ${off}`;
    if (want === 'ENXIO') await assert.rejects(seek(off, w), (e: FsError) => e.errno === 'ENXIO', what);
    else assert.equal(await seek(off, w), want, what);
  }
  // A file with no holes: SEEK_HOLE finds the implicit hole at EOF.
  const g = await fs.create(root, 1, 'dense', 0o644);
  await fs.write(root, g.ino, 0, fill(5000, 4));
  assert.equal(await fs.lseek(root, g.ino, 10, SEEK_HOLE), 5000);
  assert.equal(await fs.lseek(root, g.ino, 10, SEEK_DATA), 10);
  // An empty file and an all-hole file have no data.
  const h = await fs.create(root, 1, 'holes', 0o644);
  await assert.rejects(fs.lseek(root, h.ino, 0, SEEK_DATA), (e: FsError) => e.errno === 'ENXIO');
  await fs.setattr(root, h.ino, { size: 100 });
  await assert.rejects(fs.lseek(root, h.ino, 0, SEEK_DATA), (e: FsError) => e.errno === 'ENXIO');
  assert.equal(await fs.lseek(root, h.ino, 0, SEEK_HOLE), 0);
  await assert.rejects(fs.lseek(root, h.ino, 0, 0), (e: FsError) => e.errno === 'EINVAL');
  await fs.close();
});

test('extent maps match a byte model under random writes, truncates and punches (property)', async () => {
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ k: fc.constant('w' as const), off: fc.nat(3000), len: fc.integer({ min: 1, max: 700 }), v: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('t' as const), size: fc.nat(3500) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('p' as const), off: fc.nat(3000), len: fc.integer({ min: 1, max: 1500 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('c' as const) }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      const { fs, store } = await newFs();
      const f = await fs.create(root, 1, 'p', 0o644);
      const m = new Model();
      for (const o of ops) {
        if (o.k === 'w') {
          const b = fill(o.len, o.v);
          await fs.write(root, f.ino, o.off, b);
          m.write(o.off, b);
        } else if (o.k === 't') {
          await fs.setattr(root, f.ino, { size: o.size });
          m.truncate(o.size);
        } else if (o.k === 'p') {
          await fs.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, o.off, o.len);
          m.punch(o.off, o.len);
        } else await fs.sync();
      }
      await same(fs, f.ino, m, JSON.stringify(ops));
      await fs.close();
      const fs2 = (await newFs(store)).fs;
      await same(fs2, f.ino, m, `reopened ${JSON.stringify(ops)}`);
      await fs2.close();
      await fsckClean(store);
    }),
    { numRuns: 80 },
  );
});

test('directory cookies stay stable while entries are added and removed between readdir pages', async () => {
  const { fs, store } = await newFs();
  const d = await fs.mkdir(root, 1, 'd', 0o755);
  const initial = Array.from({ length: 300 }, (_, i) => `e${i}`);
  for (const n of initial) await fs.create(root, d.ino, n, 0o644);
  const removed = new Set<string>();
  const added: string[] = [];
  const seen = new Map<string, bigint>();
  let cookie = 0n;
  let lastCookie = 0n;
  let page = 0;
  for (;;) {
    const ents = await fs.readdir(root, d.ino, cookie, 17);
    if (ents.length === 0) break;
    for (const e of ents) {
      assert.ok(!seen.has(e.name), `${e.name} listed twice`);
      assert.ok(e.cookie > lastCookie, 'cookies increase');
      assert.ok(!removed.has(e.name), `${e.name} listed after its removal`);
      lastCookie = e.cookie;
      seen.set(e.name, e.cookie);
    }
    cookie = ents[ents.length - 1]!.cookie;
    // Between pages: remove the entry we resume after (its cookie must still work), one listed
    // earlier, one not yet listed; add new names; sometimes commit and reopen the volume.
    const last = ents[ents.length - 1]!.name;
    const victims = [last, initial[(page * 37) % 300]!, initial[(page * 53 + 11) % 300]!];
    for (const v of victims) {
      if (v === '.' || v === '..' || removed.has(v)) continue;
      await fs.unlink(root, d.ino, v);
      removed.add(v);
    }
    for (let k = 0; k < 3; k++) {
      const n = `new${page}-${k}`;
      await fs.create(root, d.ino, n, 0o644);
      added.push(n);
    }
    page++;
  }
  assert.ok(page > 15);
  for (const n of initial) if (!removed.has(n)) assert.ok(seen.has(n), `${n} existed throughout but was skipped`);
  assert.ok(seen.has('.') && seen.has('..'));
  assert.equal(seen.get('.'), 1n);
  assert.equal(seen.get('..'), 2n);
  // Cookies are a property of the name: a fresh listing after reopening gives the same ones.
  await fs.close();
  const fs2 = (await newFs(store)).fs;
  const all = new Map<string, bigint>();
  let c = 0n;
  for (;;) {
    const ents = await fs2.readdir(root, d.ino, c, 50);
    if (!ents.length) break;
    for (const e of ents) all.set(e.name, e.cookie);
    c = ents[ents.length - 1]!.cookie;
  }
  assert.equal(all.size, 2 + 300 - removed.size + added.length);
  for (const [n, ck] of seen) if (all.has(n)) assert.equal(all.get(n), ck, `cookie of ${n} changed across reopen`);
  assert.equal((await fs2.getattr(root, d.ino)).size, all.size - 2, 'directory size counts entries');
  await fs2.close();
  await fsckClean(store);
});

test('sequential reads are read ahead from the extent map, across data segments, in windows; random reads are not', async () => {
  const store = new MemoryStore();
  const MiB = 1024 * 1024;
  const size = 6 * MiB;
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  {
    const { fs } = await newFs(store);
    const a = await fs.create(root, 1, 'big', 0o644);
    for (let off = 0; off < size; off += MiB) await fs.write(root, a.ino, off, data.subarray(off, off + MiB));
    await fs.close();
  }
  const window = 512 * 1024;
  const open = () => openFileSystem({ store, flushIntervalMs: 0, volumeOptions: { readAheadBytes: window, cacheBytesMax: 16 * MiB } });
  const fs = await open();
  const ino = (await fs.lookup(root, 1, 'big')).ino;
  const dataSegments = (await store.list('default/seg/')).objects.length;
  assert.ok(dataSegments >= 10, `the file spans ${dataSegments} data segments of 256 KiB`);
  const g0 = store.stats.gets;
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += 128 * 1024) parts.push(Buffer.from(copyOut(await fs.readv(root, ino, off, 128 * 1024))));
  assert.ok(Buffer.concat(parts).equals(data), 'the bytes read back');
  const gets = store.stats.gets - g0;
  // One GET per read-ahead window and per segment it touches, plus the first read and the
  // extent-map nodes; 48 reads of 128 KiB would be 48 or more GETs without read-ahead.
  assert.ok(gets <= size / window + dataSegments + 4, `${gets} GETs for ${size / (128 * 1024)} sequential reads`);
  await fs.close();
  // Random reads (each more than 2 MiB from the last) fetch only the records they read.
  let segBytes = 0;
  const counting = Object.create(store) as MemoryStore;
  counting.get = async (key, range) => {
    const b = await store.get(key, range);
    if (key.includes('/seg/')) segBytes += b.length;
    return b;
  };
  const fs2 = await openFileSystem({ store: counting, flushIntervalMs: 0, volumeOptions: { readAheadBytes: window, cacheBytesMax: 16 * MiB } });
  const offsets = [5 * MiB, 1.25 * MiB, 3.5 * MiB, 5.75 * MiB];
  for (const off of offsets) assert.ok(Buffer.from(await fs2.read(root, ino, off, 4096)).equals(data.subarray(off, off + 4096)));
  assert.equal(segBytes, offsets.length * (DATA_RECORD_BYTES_MAX + 32), 'one record per read: no read-ahead window');
  await fs2.close();
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems));
});
