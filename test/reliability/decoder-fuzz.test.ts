/**
 * Hostile input for the on-store decoders: truncated, bit-flipped, overwritten and extended copies
 * of the objects of a real volume (commit segments, data segments, `head`), thousands of cases.
 *
 * - Segment framing (trailer, summary, every record, the commit record): every mutation is caught
 *   (every byte of a segment is under a CRC) and the error is a CorruptionError, never a RangeError,
 *   TypeError or a hang.
 * - The decoders behind the checksums (commit record, inode record, B+tree nodes of each tree,
 *   summary), fed mutated payloads directly: a value or a CorruptionError, nothing else.
 * - SegmentReader and readCommit over a store holding a mutated object: the right bytes or a
 *   CorruptionError, never wrong data.
 * - fsck over a volume with one damaged object: it reports an error, or the damage is harmless
 *   (every file, directory and symlink reads back exactly as before).
 * SILT_SEED replays a run; the case that failed is named in the message.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { bytesValue, decodeNode, u64Key, type KeyCodec, type NodeLoc, type ValueCodec } from '../../src/btree/index.ts';
import { openFileSystem, rootIdentity as who, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import {
  Volume,
  decodeCommit,
  decodeInode,
  decodeJournal,
  dirKey,
  dirValue,
  extentValue,
  offsetKey,
  readCommit,
  segStatsValue,
} from '../../src/headhunter/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import {
  RecordType,
  SegmentReader,
  TRAILER_BYTES,
  decodeRecord,
  decodeRecordHeader,
  decodeSummary,
  decodeTrailer,
  type SummaryEntry,
} from '../../src/segment/index.ts';
import { CorruptionError, Random, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../src/util/index.ts';

const seed = process.env['SILT_SEED'] !== undefined ? Number(process.env['SILT_SEED']) : Math.floor(Math.random() * 2 ** 31);
const PREFIX = 'default/';
const volumeOptions = { segmentBytesMax: 192 * 1024, headEveryCommits: 1 };
const inode = { largeRunBytes: 64 * 1024 };

/** Counts reported at the end (docs/RELIABILITY.md quotes them). */
const figures: Record<string, number> = {};
const count = (k: string, n = 1): void => void (figures[k] = (figures[k] ?? 0) + n);

type Mutation = { kind: string; apply: (b: Buffer) => Buffer };

/** A random damaging change to an object's bytes. */
function mutation(rnd: Random, len: number): Mutation {
  const kind = rnd.pick(['truncate', 'truncateTail', 'flip1', 'flipN', 'overwrite', 'zero', 'extend', 'empty']);
  switch (kind) {
    case 'truncate': {
      const n = rnd.int(Math.max(1, len));
      return { kind, apply: (b) => b.subarray(0, n) };
    }
    case 'truncateTail': {
      const n = 1 + rnd.int(Math.min(len, 200));
      return { kind, apply: (b) => b.subarray(0, Math.max(0, b.length - n)) };
    }
    case 'flip1':
    case 'flipN': {
      const flips = Array.from({ length: kind === 'flip1' ? 1 : 2 + rnd.int(7) }, () => rnd.int(len * 8));
      return {
        kind,
        apply: (b) => {
          const c = Buffer.from(b);
          for (const bit of flips) c[bit >> 3] = c[bit >> 3]! ^ (1 << (bit & 7));
          return c;
        },
      };
    }
    case 'overwrite':
    case 'zero': {
      const at = rnd.int(len);
      const n = 1 + rnd.int(Math.min(64, len - at));
      const junk = kind === 'zero' ? Buffer.alloc(n) : Buffer.from(rnd.bytes(n));
      return {
        kind,
        apply: (b) => {
          const c = Buffer.from(b);
          junk.copy(c, at);
          return c;
        },
      };
    }
    case 'extend': {
      const junk = Buffer.from(rnd.bytes(1 + rnd.int(100)));
      return { kind, apply: (b) => Buffer.concat([b, junk]) };
    }
    default:
      return { kind, apply: () => Buffer.alloc(0) };
  }
}

/** Only a CorruptionError is an acceptable failure. */
function expectCorruption(e: unknown, what: string): void {
  if (!(e instanceof CorruptionError)) {
    assert.fail(`${what}: expected CorruptionError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} (seed ${seed}, replay: SILT_SEED=${seed})`);
  }
}

/** Parse a whole segment object with the public decoders, as recovery, the reader and fsck do. */
function parseSegment(b: Buffer, key: string): { summary: SummaryEntry[]; commit: boolean } {
  if (b.length < TRAILER_BYTES) throw new CorruptionError(`${key}: too short`);
  const t = decodeTrailer(b.subarray(b.length - TRAILER_BYTES), key);
  if (t.totalLen !== b.length) throw new CorruptionError(`${key}: length`);
  const summary = decodeSummary(decodeRecord(b.subarray(t.summaryOff, t.summaryOff + t.summaryLen), key, RecordType.SUMMARY).payload);
  let covered = t.summaryLen + TRAILER_BYTES;
  for (const e of summary) {
    if (e.off + e.len > b.length - TRAILER_BYTES) throw new CorruptionError(`${key}: summary entry outside the segment`);
    decodeRecord(b.subarray(e.off, e.off + e.len), key, e.type);
    covered += e.len;
  }
  if (t.commitLen > 0) {
    decodeCommit(decodeRecord(b.subarray(t.commitOff, t.commitOff + t.commitLen), key, RecordType.COMMIT).payload, key);
    covered += t.commitLen;
  }
  // Every byte is in a checksummed record (no unprotected gaps).
  if (covered !== b.length) throw new CorruptionError(`${key}: ${b.length - covered} bytes outside any record`);
  return { summary, commit: t.commitLen > 0 };
}

interface Fixture {
  store: MemoryStore;
  objects: Map<string, Buffer>;
  /** Every path with what it reads back as (the oracle for harmless damage). */
  tree: Map<string, string>;
  /** The newest commit, and the tree as of the one before it. */
  newestSeq: number;
  previousTree: Map<string, string>;
  /** Decoder inputs behind the checksums, each with the decoder that reads it. */
  payloads: Array<{ what: string; bytes: Buffer; decode: (b: Uint8Array) => unknown }>;
}

async function snapshotTree(fs: SiltFileSystem): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (ino: number, path: string): Promise<void> => {
    const entries = (await fs.readdir(who, ino, 0n, 10_000)).filter((e) => e.name !== '.' && e.name !== '..');
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = `${path}/${e.name}`;
      const a = await fs.lookup(who, ino, e.name);
      const type = a.mode & S_IFMT;
      const xattrs = (await fs.listxattr(who, a.ino)).sort();
      const xv = await Promise.all(xattrs.map(async (x) => `${x}=${Buffer.from(await fs.getxattr(who, a.ino, x)).toString('hex')}`));
      const meta = `${a.ino} ${a.mode.toString(8)} ${a.nlink} ${a.size} ${xv.join(',')}`;
      if (type === S_IFDIR) {
        out.set(p, `dir ${meta}`);
        await walk(a.ino, p);
      } else if (type === S_IFLNK) {
        out.set(p, `symlink ${meta} ${await fs.readlink(who, a.ino)}`);
      } else if (type === S_IFREG) {
        const data = Buffer.from(await fs.read(who, a.ino, 0, a.size));
        out.set(p, `file ${meta} ${data.toString('base64')}`);
      } else {
        out.set(p, `other ${meta}`);
      }
    }
  };
  await walk(1, '');
  return out;
}

/** The paths whose entries differ (short, for messages); '' when the trees are equal. */
function treeDiff(a: Map<string, string>, b: Map<string, string>): string {
  const paths = new Set([...a.keys(), ...b.keys()]);
  return [...paths].filter((p) => a.get(p) !== b.get(p)).map((p) => `${p}: ${(a.get(p) ?? 'absent').slice(0, 60)} vs ${(b.get(p) ?? 'absent').slice(0, 60)}`).join('; ');
}

/** A volume with several commits, data segments, dead records, every inode kind and xattrs. */
async function buildFixture(): Promise<Fixture> {
  const store = new MemoryStore();
  const rnd = new Random(seed);
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, volumeOptions, inode });
  const d = await fs.mkdir(who, 1, 'dir', 0o755);
  const sub = await fs.mkdir(who, d.ino, 'sub', 0o700);
  const files: number[] = [];
  for (let i = 0; i < 12; i++) {
    const a = await fs.create(who, i % 3 === 0 ? 1 : i % 3 === 1 ? d.ino : sub.ino, `f${i}`, 0o644);
    const size = [10, 3000, 70_000, 200_000][i % 4]!;
    for (let off = 0; off < size; off += 64 * 1024) await fs.write(who, a.ino, off, rnd.bytes(Math.min(64 * 1024, size - off)));
    files.push(a.ino);
    if (i % 4 === 0) await fs.sync();
  }
  await fs.symlink(who, 1, 'link-out', '../../../etc/passwd');
  await fs.symlink(who, d.ino, 'link-in', 'sub/f2');
  await fs.link(who, files[1]!, 1, 'hard');
  await fs.setxattr(who, files[0]!, 'user.color', Buffer.from('blue'));
  await fs.mknod(who, 1, 'fifo', 0o010644, 0);
  await fs.sync();
  const previousTree = await snapshotTree(fs);
  const previousSeq = fs.volume.lastCommit.seq;
  // Overwrites and unlinks leave dead records behind in older segments.
  await fs.write(who, files[2]!, 1000, rnd.bytes(5000));
  await fs.unlink(who, 1, 'f3');
  await fs.rename(who, d.ino, 'f4', 1, 'moved');
  await fs.setattr(who, files[5]!, { size: 1234 });
  await fs.sync();
  const newestSeq = fs.volume.lastCommit.seq;
  assert.equal(newestSeq, previousSeq + 1);
  const tree = await snapshotTree(fs);
  // No close (it would add a checkpoint): the newest commits stay deltas, whose journals the
  // fuzz damages too.
  assert.equal(fs.volume.lastCommit.kind, 'delta');
  fs.inodes.stop();
  const reopened = await Volume.open(store, 'default', {});
  assert.equal(reopened.lastCommit.seq, newestSeq, 'the newest commit is the last sync');

  const objects = new Map<string, Buffer>();
  for (const key of store.keys()) objects.set(key, Buffer.from(await store.get(key)));

  // Payloads behind the checksums, each with its own decoder.
  const payloads: Fixture['payloads'] = [];
  const vol = await Volume.open(store, 'default', {});
  for (const [key, b] of objects) {
    if (!key.startsWith(`${PREFIX}log/`) && !key.startsWith(`${PREFIX}seg/`)) continue;
    const { summary } = parseSegment(b, key);
    const t = decodeTrailer(b.subarray(b.length - TRAILER_BYTES), key);
    payloads.push({ what: `${key} summary`, bytes: Buffer.from(decodeRecord(b.subarray(t.summaryOff, t.summaryOff + t.summaryLen), key).payload), decode: (x) => decodeSummary(x) });
    if (t.commitLen > 0) {
      const commit = Buffer.from(decodeRecord(b.subarray(t.commitOff, t.commitOff + t.commitLen), key).payload);
      payloads.push({ what: `${key} commit`, bytes: commit, decode: (x) => decodeCommit(x, key) });
      const journal = decodeCommit(commit, key).journal;
      if (journal.length > 0) payloads.push({ what: `${key} journal`, bytes: Buffer.from(journal), decode: (x) => decodeJournal(x, key) });
    }
    void summary;
  }
  const addTree = async <K, V>(root: NodeLoc, kc: KeyCodec<K>, vc: ValueCodec<V>, what: string, onEntry?: (k: K, v: V) => void): Promise<void> => {
    const stack = [root];
    while (stack.length) {
      const loc = stack.pop()!;
      const raw = Buffer.from(await vol.nodeStore.readNode(loc));
      payloads.push({ what: `${what} node`, bytes: raw, decode: (x) => decodeNode(x, kc, vc) });
      const node = decodeNode(raw, kc, vc);
      if (node.kind === 'internal') stack.push(...(node.children as NodeLoc[]));
      else node.keys.forEach((k, i) => onEntry?.(k, node.vals[i] as V));
    }
  };
  const inodes: Array<[number, Uint8Array]> = [];
  // The trees as the newest commit has them (its checkpoint's with the journals replayed).
  await addTree(vol.treeRoots.inodeTableRoot, u64Key, bytesValue, 'inode table', (k, v) => void inodes.push([k, v]));
  await addTree(vol.treeRoots.segmentTableRoot, u64Key, segStatsValue, 'segment table');
  for (const [ino, raw] of inodes) {
    payloads.push({ what: `inode ${ino}`, bytes: Buffer.from(raw), decode: (x) => decodeInode(x, ino) });
    const rec = decodeInode(raw, ino);
    if (!rec.treeRoot) continue;
    const type = rec.mode & S_IFMT;
    if (type === S_IFDIR) await addTree(rec.treeRoot, dirKey, dirValue, `directory ${ino}`);
    else if (type === S_IFREG) await addTree(rec.treeRoot, offsetKey, extentValue, `extent map ${ino}`);
  }
  return { store, objects, tree, payloads, newestSeq, previousTree };
}

let fx: Fixture;

before(async () => {
  console.log(`# decoder fuzz seed ${seed} (replay: SILT_SEED=${seed})`);
  fx = await buildFixture();
  const r = await checkVolume(fx.store, 'default');
  assert.ok(r.clean, `the fixture is clean: ${JSON.stringify(r.problems)}`);
});

describe(`decoders under hostile input (seed ${seed})`, () => {
  test('segment framing: every mutation of every segment is a CorruptionError (4,000 cases)', () => {
    const rnd = new Random(seed ^ 0x1111);
    const segs = [...fx.objects].filter(([k]) => k.startsWith(`${PREFIX}log/`) || k.startsWith(`${PREFIX}seg/`));
    assert.ok(segs.length >= 6, `the fixture has ${segs.length} segments`);
    for (let i = 0; i < 4000; i++) {
      const [key, orig] = rnd.pick(segs);
      const m = mutation(rnd, orig.length);
      const bad = m.apply(orig);
      const what = `case ${i}: ${m.kind} of ${key}`;
      if (bad.equals(orig)) continue;
      count(`segment framing (${key.includes('/log/') ? 'commit' : 'data'} segments)`);
      try {
        parseSegment(bad, key);
        assert.fail(`${what}: a damaged segment parsed without complaint`);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        expectCorruption(e, what);
      }
    }
    // Junk that is not a record at all.
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.from(rnd.bytes(rnd.int(80)));
      count('record header (random bytes)');
      try {
        decodeRecordHeader(junk, 'junk');
      } catch (e) {
        expectCorruption(e, `junk header ${junk.toString('hex')}`);
      }
    }
  });

  test('decoders behind the checksums (commit, inode, summary, every tree kind): a value or a CorruptionError', () => {
    const rnd = new Random(seed ^ 0x2222);
    const kinds = new Set(fx.payloads.map((p) => p.what.replace(/[0-9a-f]{16}|\d+/g, 'N')));
    assert.ok(kinds.size >= 7, `decoder kinds covered: ${[...kinds].join(', ')}`);
    for (let i = 0; i < 6000; i++) {
      const p = rnd.pick(fx.payloads);
      const m = mutation(rnd, Math.max(1, p.bytes.length));
      const bad = m.apply(p.bytes);
      count(`payload decoder: ${p.what.replace(/^\S+\/(log|seg)\/[0-9a-f]+ /, '$1 ').replace(/ \d+ node$/, ' node').replace(/^inode \d+$/, 'inode record')}`);
      try {
        p.decode(bad);
      } catch (e) {
        expectCorruption(e, `case ${i}: ${m.kind} of ${p.what}`);
      }
    }
  });

  test('SegmentReader and readCommit over damaged objects: exact bytes or a CorruptionError (1,500 cases)', async () => {
    const rnd = new Random(seed ^ 0x3333);
    const segs = [...fx.objects].filter(([k]) => k.startsWith(`${PREFIX}log/`) || k.startsWith(`${PREFIX}seg/`));
    for (let i = 0; i < 1500; i++) {
      const [key, orig] = rnd.pick(segs);
      const { summary } = parseSegment(orig, key);
      const m = mutation(rnd, orig.length);
      const bad = m.apply(orig);
      const store = new MemoryStore();
      await store.put(key, bad);
      const isLog = key.includes('/log/');
      const n = parseInt(key.slice(key.lastIndexOf('/') + 1), 16);
      const seg = isLog ? n * 2 : n * 2 + 1;
      const what = `case ${i}: ${m.kind} of ${key}`;
      if (isLog) {
        count('readCommit');
        try {
          const c = await readCommit(store, PREFIX, n);
          assert.equal(c.seq, n, what);
        } catch (e) {
          expectCorruption(e, `${what} (readCommit)`);
        }
      }
      const reader = new SegmentReader({ store, volumePrefix: PREFIX, cacheBytesMax: 1 << 20, readAheadBytes: rnd.pick([0, 4096, 65536]) }, null);
      count('SegmentReader.readSummary');
      try {
        assert.deepEqual(await reader.readSummary(seg), summary, what);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        expectCorruption(e, `${what} (readSummary)`);
      }
      for (const e of summary.filter((x) => x.type === RecordType.DATA || x.type === RecordType.NODE).slice(0, 6)) {
        count('SegmentReader.read');
        const want = decodeRecord(orig.subarray(e.off, e.off + e.len), key).payload;
        try {
          const got = await reader.read({ seg, off: e.off, len: e.len }, e.type);
          assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${what}: record @${e.off} read back wrong bytes`);
        } catch (x) {
          if (x instanceof assert.AssertionError) throw x;
          expectCorruption(x, `${what} (read @${e.off})`);
        }
      }
    }
  });

  test('fsck over a volume with one damaged object: reports it, or the damage is harmless (300 cases)', async () => {
    const rnd = new Random(seed ^ 0x4444);
    const keys = [...fx.objects.keys()].filter((k) => k !== `${PREFIX}super`);
    let reported = 0;
    let harmless = 0;
    for (let i = 0; i < 300; i++) {
      const key = rnd.pick(keys);
      const orig = fx.objects.get(key)!;
      const store = new MemoryStore();
      for (const [k, b] of fx.objects) if (k !== key) await store.put(k, b);
      const m = rnd.chance(0.1) ? { kind: 'delete', apply: (): Buffer | undefined => undefined } : mutation(rnd, orig.length);
      const bad = m.apply(orig);
      if (bad !== undefined) await store.put(key, bad);
      const what = `case ${i}: ${m.kind} of ${key}`;
      count(`fsck cases (${key.includes('/log/') ? 'commit segment' : key.includes('/seg/') ? 'data segment' : 'head'})`);
      let errors: string[];
      try {
        const r = await checkVolume(store, 'default');
        errors = r.problems.filter((p) => p.severity === 'error').map((p) => `${p.where}: ${p.message}`);
      } catch (e) {
        expectCorruption(e, `${what} (fsck threw)`);
        errors = [`fsck could not run: ${(e as Error).message}`];
      }
      if (errors.length > 0) {
        reported++;
        continue;
      }
      // fsck says clean: then the volume must read back exactly as before. One exception, by
      // design: when the newest commit object is gone altogether, recovery cannot tell it from a
      // head hint that runs ahead (the hint is only a hint) and opens the previous commit, whole
      // and consistent (docs/RELIABILITY.md, limits).
      const fs = await openFileSystem({ store, flushIntervalMs: 0, volumeOptions, inode });
      try {
        const lostNewest = m.kind === 'delete' && key === `${PREFIX}log/${fx.newestSeq.toString(16).padStart(16, '0')}`;
        const tree = await snapshotTree(fs);
        if (lostNewest) {
          assert.equal(fs.volume.lastCommit.seq, fx.newestSeq - 1, what);
          assert.equal(treeDiff(tree, fx.previousTree), '', `${what}: not the previous commit's tree`);
          count('fsck: newest commit deleted, previous commit opened');
          continue;
        }
        assert.equal(treeDiff(tree, fx.tree), '', `${what}: fsck clean but the volume reads back differently (seed ${seed})`);
      } finally {
        await fs.close();
      }
      harmless++;
    }
    count('fsck: damage reported', reported);
    count('fsck: damage harmless (volume reads back identical)', harmless);
    assert.ok(reported > 150, `fsck reported only ${reported} of 300 damaged volumes`);
  });

  test('figures', () => {
    console.log(`# decoder fuzz figures: ${JSON.stringify(figures)}`);
    assert.ok(Object.values(figures).reduce((a, b) => a + b, 0) > 10_000);
  });
});
