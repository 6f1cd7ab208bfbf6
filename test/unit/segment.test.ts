import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore } from '../../src/objstore/index.ts';
import {
  DATA_RECORD_BYTES_MAX,
  FORMAT_VERSION,
  LogSegmentWriter,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  RecordType,
  SegmentBuilder,
  SegmentKind,
  SegmentReader,
  TRAILER_BYTES,
  TRAILER_MAGIC,
  commitKey,
  commitSegmentId,
  dataSegmentId,
  decodeRecord,
  decodeRecordHeader,
  decodeSummary,
  decodeTrailer,
  encodeRecord,
  encodeSummary,
  encodeTrailer,
  isCommitSegment,
  segmentKey,
  type Loc,
} from '../../src/segment/index.ts';
import { CorruptionError, StoreError, crc32 } from '../../src/util/index.ts';

const bytes = (n: number, seed = 1): Uint8Array => {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
};

/** Only CorruptionError is an acceptable failure for malformed input. */
function mustCorrupt(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CorruptionError, `${what}: expected CorruptionError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return;
  }
  assert.fail(`${what}: decoded without error`);
}

async function mustCorruptAsync(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CorruptionError, `${what}: expected CorruptionError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return;
  }
  assert.fail(`${what}: read without error`);
}

/** A finished segment with `n` data records of varied sizes; returns bytes and record locations. */
function buildSegment(id: number, sizes: number[], kind: SegmentKind = SegmentKind.DATA) {
  const b = new SegmentBuilder(id, 256);
  const locs: Loc[] = [];
  const payloads: Uint8Array[] = [];
  let fileOff = 0;
  for (const [i, n] of sizes.entries()) {
    const p = bytes(n, id * 1000 + i + 1);
    payloads.push(p);
    locs.push(b.append(RecordType.DATA, 42, fileOff, p));
    fileOff += n;
  }
  const commit = kind === SegmentKind.COMMIT ? bytes(40, 99) : undefined;
  const out = Uint8Array.from(b.finish(kind, commit));
  return { bytes: out, locs, payloads, commit };
}

// ------------------------------------------------------------------ record framing

test('record framing: header layout and round trip', () => {
  const payload = bytes(100, 3);
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  const n = encodeRecord(out, 0, RecordType.NODE, 12345, 7, payload);
  assert.equal(n, 132);
  const v = new DataView(out.buffer);
  assert.equal(v.getUint32(0, true), RECORD_MAGIC);
  assert.equal(Buffer.from(out.subarray(0, 4)).toString('latin1'), 'SLR1');
  assert.equal(v.getUint8(4), RecordType.NODE);
  assert.equal(v.getUint8(5), 0);
  assert.equal(v.getUint16(6, true), 0);
  assert.equal(v.getBigUint64(8, true), 12345n);
  assert.equal(v.getBigUint64(16, true), 7n);
  assert.equal(v.getUint32(24, true), 100);
  assert.equal(v.getUint32(28, true), crc32(payload, crc32(out.subarray(0, 28))));
  const { header, payload: got } = decodeRecord(out, 't', RecordType.NODE);
  assert.deepEqual(header, { type: RecordType.NODE, owner: 12345, key: 7, payloadLength: 100, crc: v.getUint32(28, true) });
  assert.deepEqual(got, payload);
  mustCorrupt(() => decodeRecord(out, 't', RecordType.DATA), 'wrong expected type');
});

test('record framing: property round trip for every type, owner, key and payload', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(RecordType.DATA, RecordType.NODE, RecordType.SUMMARY, RecordType.COMMIT),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(16),
      (type, owner, key, payload, pad) => {
        const out = new Uint8Array(pad + RECORD_HEADER_BYTES + payload.length);
        encodeRecord(out, pad, type, owner, key, payload);
        const d = decodeRecord(out.subarray(pad), 'p', type);
        assert.equal(d.header.type, type);
        assert.equal(d.header.owner, owner);
        assert.equal(d.header.key, key);
        assert.deepEqual(d.payload, payload);
      },
    ),
    { numRuns: 200 },
  );
});

test('record CRC detects a flipped bit anywhere in header or payload', () => {
  const payload = bytes(61, 5);
  const rec = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  encodeRecord(rec, 0, RecordType.DATA, 9, 4096, payload);
  for (let bit = 0; bit < rec.length * 8; bit++) {
    const bad = Uint8Array.from(rec);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    mustCorrupt(() => decodeRecord(bad, 'flip', RecordType.DATA), `bit ${bit}`);
  }
});

test('record decode: truncation and garbage give CorruptionError, never RangeError', () => {
  const payload = bytes(50, 8);
  const rec = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  encodeRecord(rec, 0, RecordType.DATA, 1, 0, payload);
  for (let n = 0; n < rec.length; n++) {
    mustCorrupt(() => decodeRecord(rec.subarray(0, n), 'trunc'), `truncated to ${n}`);
    if (n < RECORD_HEADER_BYTES) mustCorrupt(() => decodeRecordHeader(rec.subarray(0, n), 'trunc'), `header truncated to ${n}`);
  }
  // owner and key above 2^53 are refused, not silently rounded
  const big = Uint8Array.from(rec);
  new DataView(big.buffer).setBigUint64(8, 1n << 60n, true);
  mustCorrupt(() => decodeRecordHeader(big, 'big owner'), 'huge owner');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      try {
        decodeRecord(junk, 'junk');
      } catch (e) {
        assert.ok(e instanceof CorruptionError, String(e));
      }
    }),
    { numRuns: 300 },
  );
});

// ------------------------------------------------------------------ summary and trailer

test('summary round trip and truncation', () => {
  const entries = [
    { type: RecordType.DATA, owner: 5, key: 0, off: 0, len: 100 },
    { type: RecordType.NODE, owner: 0, key: 0, off: 100, len: 77 },
    { type: RecordType.DATA, owner: Number.MAX_SAFE_INTEGER, key: 2 ** 52, off: 177, len: 65568 },
  ];
  const enc = encodeSummary(entries);
  assert.equal(enc.length, 4 + 25 * entries.length);
  assert.deepEqual(decodeSummary(enc), entries);
  assert.deepEqual(decodeSummary(encodeSummary([])), []);
  for (let n = 0; n < enc.length; n++) mustCorrupt(() => decodeSummary(enc.subarray(0, n)), `summary truncated to ${n}`);
  const extra = new Uint8Array(enc.length + 1);
  extra.set(enc);
  mustCorrupt(() => decodeSummary(extra), 'trailing byte');
  const huge = Uint8Array.from(enc);
  new DataView(huge.buffer).setUint32(0, 0xffffffff, true);
  mustCorrupt(() => decodeSummary(huge), 'huge count');
});

test('trailer: layout, round trip, every flipped bit, truncation', () => {
  const t = {
    version: FORMAT_VERSION,
    kind: SegmentKind.COMMIT,
    segmentId: commitSegmentId(77),
    summaryOff: 1000,
    summaryLen: 57,
    commitOff: 1057,
    commitLen: 150,
    totalLen: 1057 + 150 + TRAILER_BYTES,
  };
  const enc = encodeTrailer(t);
  assert.equal(enc.length, TRAILER_BYTES);
  const v = new DataView(enc.buffer);
  assert.equal(v.getBigUint64(0, true), TRAILER_MAGIC);
  assert.equal(Buffer.from(enc.subarray(0, 8)).toString('latin1'), 'SILTSEG1');
  assert.equal(v.getUint16(8, true), 1);
  assert.equal(v.getUint8(10), SegmentKind.COMMIT);
  assert.equal(v.getBigUint64(16, true), 154n);
  assert.deepEqual([...enc.subarray(48, 60)], new Array(12).fill(0));
  assert.deepEqual(decodeTrailer(enc, 't'), t);
  for (let bit = 0; bit < TRAILER_BYTES * 8; bit++) {
    const bad = Uint8Array.from(enc);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    mustCorrupt(() => decodeTrailer(bad, 'flip'), `trailer bit ${bit}`);
  }
  for (let n = 0; n < TRAILER_BYTES; n++) mustCorrupt(() => decodeTrailer(enc.subarray(0, n), 't'), `trailer truncated to ${n}`);
});

test('trailer: well-checksummed but impossible fields are CorruptionError', () => {
  const good = {
    version: FORMAT_VERSION,
    kind: SegmentKind.DATA,
    segmentId: 3,
    summaryOff: 10,
    summaryLen: 10,
    commitOff: 0,
    commitLen: 0,
    totalLen: 20 + TRAILER_BYTES,
  };
  const cases: Array<[string, (v: DataView) => void]> = [
    ['version 2', (v) => v.setUint16(8, 2, true)],
    ['kind 3', (v) => v.setUint8(10, 3)],
    ['summary past the end', (v) => v.setUint32(28, 1000, true)],
    ['commit past the end', (v) => v.setUint32(36, 1000, true)],
    ['totalLen below the trailer size', (v) => v.setBigUint64(40, 10n, true)],
    ['segment id beyond 2^53', (v) => v.setBigUint64(16, 1n << 62n, true)],
    ['totalLen beyond 2^53', (v) => v.setBigUint64(40, 1n << 62n, true)],
  ];
  for (const [what, mutate] of cases) {
    const enc = encodeTrailer(good);
    const v = new DataView(enc.buffer);
    mutate(v);
    v.setUint32(60, crc32(enc.subarray(0, 60)), true);
    mustCorrupt(() => decodeTrailer(enc, what), what);
  }
});

test('builder: finished segment decodes; summary lists every record; commit record located', () => {
  const sizes = [1, 100, DATA_RECORD_BYTES_MAX, 3000, 0];
  const s = buildSegment(commitSegmentId(5), sizes, SegmentKind.COMMIT);
  const t = decodeTrailer(s.bytes.subarray(s.bytes.length - TRAILER_BYTES), 'seg');
  assert.equal(t.totalLen, s.bytes.length);
  assert.equal(t.kind, SegmentKind.COMMIT);
  assert.equal(t.segmentId, 10);
  const sum = decodeRecord(s.bytes.subarray(t.summaryOff, t.summaryOff + t.summaryLen), 'summary', RecordType.SUMMARY);
  const entries = decodeSummary(sum.payload);
  assert.equal(entries.length, sizes.length, 'summary holds the data records only, not itself or the commit');
  for (const [i, e] of entries.entries()) {
    assert.deepEqual({ off: e.off, len: e.len }, { off: s.locs[i]!.off, len: s.locs[i]!.len });
    assert.equal(e.owner, 42);
    assert.equal(e.type, RecordType.DATA);
    const rec = decodeRecord(s.bytes.subarray(e.off, e.off + e.len), 'rec', RecordType.DATA);
    assert.deepEqual(rec.payload, s.payloads[i]);
    assert.equal(rec.header.key, sizes.slice(0, i).reduce((a, b) => a + b, 0));
  }
  const c = decodeRecord(s.bytes.subarray(t.commitOff, t.commitOff + t.commitLen), 'commit', RecordType.COMMIT);
  assert.deepEqual(c.payload, s.commit);
  assert.equal(t.commitOff, t.summaryOff + t.summaryLen, 'commit record follows the summary');
  assert.equal(t.commitOff + t.commitLen, s.bytes.length - TRAILER_BYTES, 'trailer follows the commit record');
  // Data segments have no commit record.
  const d = buildSegment(dataSegmentId(9), [10, 20]);
  const dt = decodeTrailer(d.bytes.subarray(d.bytes.length - TRAILER_BYTES), 'd');
  assert.equal(dt.kind, SegmentKind.DATA);
  assert.equal(dt.commitLen, 0);
  assert.equal(dt.commitOff, 0);
  assert.equal(dt.summaryOff + dt.summaryLen, d.bytes.length - TRAILER_BYTES);
  assert.throws(() => new SegmentBuilder(1).finish(SegmentKind.COMMIT), /commit payload/);
});

test('segment naming: even ids are commits under log/, odd ids data under seg/', () => {
  assert.equal(commitSegmentId(1), 2);
  assert.equal(dataSegmentId(1), 3);
  assert.ok(isCommitSegment(commitSegmentId(123)));
  assert.ok(!isCommitSegment(dataSegmentId(123)));
  assert.equal(segmentKey('v/', commitSegmentId(0x1f)), 'v/log/000000000000001f');
  assert.equal(segmentKey('v/', dataSegmentId(0xabc)), 'v/seg/0000000000000abc');
  assert.equal(commitKey('v/', 0x1f), 'v/log/000000000000001f');
});

// ------------------------------------------------------------------ reader

function reader(store: MemoryStore, opts: Partial<{ cacheBytesMax: number; readAheadBytes: number }> = {}, writer: LogSegmentWriter | null = null) {
  return new SegmentReader({ store, volumePrefix: 'v/', cacheBytesMax: opts.cacheBytesMax ?? 1 << 20, readAheadBytes: opts.readAheadBytes ?? 0 }, writer);
}

/** Let background prefetches finish. */
const settle = () => new Promise<void>((r) => setTimeout(r, 5));

test('reader: truncated and corrupted objects give CorruptionError, never RangeError', async () => {
  const s = buildSegment(dataSegmentId(4), [100, 200, 300]);
  const key = segmentKey('v/', dataSegmentId(4));
  for (const ra of [0, 4096]) {
    for (const cut of [0, 1, 31, 32, 100, s.locs[1]!.off + 40, s.locs[2]!.off, s.locs[2]!.off + 31]) {
      const store = new MemoryStore();
      await store.put(key, s.bytes.subarray(0, cut));
      const r = reader(store, { readAheadBytes: ra });
      const victim = s.locs.find((l) => l.off + l.len > cut)!;
      await mustCorruptAsync(r.read(victim, RecordType.DATA), `cut at ${cut}, readAhead ${ra}`);
    }
  }
  // Missing object
  await mustCorruptAsync(reader(new MemoryStore()).read(s.locs[0]!, RecordType.DATA), 'missing segment');
  // A location that does not start at a record boundary, or runs past the end
  const store = new MemoryStore();
  await store.put(key, s.bytes);
  await mustCorruptAsync(reader(store).read({ ...s.locs[1]!, off: s.locs[1]!.off + 1 }, RecordType.DATA), 'misaligned');
  await mustCorruptAsync(reader(store).read({ ...s.locs[1]!, len: s.locs[1]!.len + 5 }, RecordType.DATA), 'wrong length');
  await mustCorruptAsync(reader(store).read({ seg: dataSegmentId(4), off: s.bytes.length + 10, len: 50 }, RecordType.DATA), 'past the end');
  await mustCorruptAsync(reader(store).read(s.locs[0]!, RecordType.NODE), 'wrong type');
  // Every flipped bit inside a record is caught on read.
  const loc = s.locs[1]!;
  for (let bit = 0; bit < loc.len * 8; bit += 7) {
    const bad = Uint8Array.from(s.bytes);
    bad[loc.off + (bit >> 3)]! ^= 1 << (bit & 7);
    const st = new MemoryStore();
    await st.put(key, bad);
    await mustCorruptAsync(reader(st).read(loc, RecordType.DATA), `flipped bit ${bit}`);
  }
});

test('reader: a corrupt object never surfaces a RangeError (property)', async () => {
  const s = buildSegment(dataSegmentId(6), [64, 64, 64, 64]);
  const key = segmentKey('v/', dataSegmentId(6));
  await fc.assert(
    fc.asyncProperty(
      fc.nat(s.bytes.length),
      fc.array(fc.record({ at: fc.nat(s.bytes.length - 1), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 3 }),
      fc.nat(3),
      fc.constantFrom(0, 100, 4096),
      async (cut, flips, which, ra) => {
        const bad = Uint8Array.from(s.bytes);
        for (const f of flips) bad[f.at]! ^= f.xor;
        const store = new MemoryStore();
        await store.put(key, bad.subarray(0, cut));
        const loc = s.locs[which]!;
        try {
          const got = await reader(store, { readAheadBytes: ra }).read(loc, RecordType.DATA);
          assert.deepEqual(got, s.payloads[which], 'a read that succeeds returns the right bytes');
        } catch (e) {
          assert.ok(e instanceof CorruptionError, `${(e as Error).constructor.name}: ${(e as Error).message}`);
        }
        await settle();
      },
    ),
    { numRuns: 150 },
  );
});

test('reader: records from memory while open, from the store once durable, byte-identical', async () => {
  const store = new MemoryStore();
  let nextData = 10;
  const w = new LogSegmentWriter({
    store,
    volumePrefix: 'v/',
    nextSeq: 1,
    segmentBytesMax: 1 << 20,
    inflightSegmentsMax: 2,
    allocDataSegmentNumber: () => nextData++,
  });
  const mem = reader(store, {}, w);
  const small = bytes(500, 1);
  const big = bytes(DATA_RECORD_BYTES_MAX, 2);
  const node = bytes(300, 3);
  const l1 = w.appendData(7, 0, small, false);
  const l2 = w.appendData(7, 500, big, true);
  const l3 = w.appendNode(node, 7, 0);
  assert.ok(isCommitSegment(l1.seg));
  assert.ok(!isCommitSegment(l2.seg));
  assert.equal(l2.seg, dataSegmentId(10));
  assert.ok(w.isInMemory(l1.seg) && w.isInMemory(l2.seg));
  assert.deepEqual(await mem.read(l1, RecordType.DATA), small);
  assert.deepEqual(await mem.read(l2, RecordType.DATA), big);
  assert.deepEqual(await mem.read(l3, RecordType.NODE), node);
  assert.equal(store.stats.gets, 0, 'open segments are read from memory');
  assert.equal(store.keys().length, 0);
  const sealed = w.sealCommit(() => bytes(30, 4));
  assert.equal(sealed.seq, 1);
  assert.equal(sealed.dataDeps.length, 1, 'the commit waits for the data segment it references');
  assert.deepEqual(await mem.read(l2, RecordType.DATA), big, 'sealed but not durable: still memory');
  assert.equal(store.stats.gets, 0);
  await w.putCommit(sealed);
  assert.deepEqual(store.keys(), ['v/log/0000000000000001', 'v/seg/000000000000000a']);
  assert.equal(w.counters.commitSegmentsPut, 1);
  assert.equal(w.counters.dataSegmentsPut, 1);
  assert.ok(!w.isInMemory(l1.seg) && !w.isInMemory(l2.seg));
  const cold = reader(store);
  assert.deepEqual(await cold.read(l1, RecordType.DATA), small);
  assert.deepEqual(await cold.read(l2, RecordType.DATA), big);
  assert.deepEqual(await cold.read(l3, RecordType.NODE), node);
  assert.equal(cold.counters.gets, 3);
  // The same reader (with the writer) now goes to the store too.
  assert.deepEqual(await mem.read(l1, RecordType.DATA), small);
  assert.ok(mem.counters.gets >= 1);
  // A commit key that already holds other bytes fences the writer.
  const w2 = new LogSegmentWriter({ store, volumePrefix: 'v/', nextSeq: 1, segmentBytesMax: 1 << 20, inflightSegmentsMax: 2, allocDataSegmentNumber: () => 99 });
  w2.appendNode(node, 1, 0);
  const c2 = w2.sealCommit(() => bytes(31, 5));
  await assert.rejects(w2.putCommit(c2), (e: Error & { kind?: string }) => e.kind === 'precondition_failed' && /fenced/.test(e.message));
  // Retrying our own commit with identical bytes (a lost acknowledgement) is success.
  const again = new MemoryStore();
  const w3 = new LogSegmentWriter({ store: again, volumePrefix: 'v/', nextSeq: 1, segmentBytesMax: 1 << 20, inflightSegmentsMax: 2, allocDataSegmentNumber: () => 99 });
  w3.appendNode(node, 1, 0);
  const c3 = w3.sealCommit(() => bytes(31, 5));
  await again.put('v/log/0000000000000001', c3.segment.bytes);
  await w3.putCommit(c3);
  assert.equal(w3.counters.commitSegmentsPut, 1);
});

test('writer under an owner: renews before each create, skips the read-back, and no attempt starts once the owner may not write', async () => {
  const store = new MemoryStore();
  const seen: Array<{ key: string; verifyCreate: boolean | undefined }> = [];
  let attempts = 0;
  const inner = store.put.bind(store);
  // As the remote backends do: call beforeAttempt (a plain function) before every attempt.
  store.put = async (key, data, options) => {
    seen.push({ key, verifyCreate: options?.verifyCreate });
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = options?.beforeAttempt;
      before?.();
      attempts++;
      if (attempt < 1) continue; // the first attempt "fails" and is retried
      return inner(key, data, options);
    }
    throw new Error('unreachable');
  };
  let allowed = true;
  let renewals = 0;
  const owner = {
    mayWrite: () => {
      if (!allowed) throw new StoreError('unavailable', 'lease not renewed');
    },
    ensureHeld: async () => {
      renewals++;
    },
  };
  const w = new LogSegmentWriter({ store, volumePrefix: 'v/', nextSeq: 1, segmentBytesMax: 1 << 20, inflightSegmentsMax: 2, allocDataSegmentNumber: () => 7 });
  w.setOwner(owner);
  w.appendNode(bytes(100, 1), 1, 0);
  await w.putCommit(w.sealCommit(() => bytes(31, 2)));
  assert.deepEqual(seen, [{ key: 'v/log/0000000000000001', verifyCreate: false }]);
  assert.equal(renewals, 1, 'the lease is confirmed before the create');
  assert.equal(attempts, 2);
  // The owner may no longer write: the retry is refused before it starts, and so is the next commit.
  w.appendNode(bytes(100, 3), 1, 0);
  const c = w.sealCommit(() => bytes(31, 4));
  allowed = false;
  await assert.rejects(w.putCommit(c), /lease not renewed/);
  assert.equal(attempts, 2, 'no attempt started');
  allowed = true;
  await w.putCommit(c);
  assert.deepEqual(store.keys(), ['v/log/0000000000000001', 'v/log/0000000000000002']);
  // Without an owner the writer asks for the read-back (the default).
  w.setOwner(null);
  w.appendNode(bytes(100, 5), 1, 0);
  await w.putCommit(w.sealCommit(() => bytes(31, 6)));
  assert.equal(seen.at(-1)?.verifyCreate, undefined);
});

test('reader: readAhead fetches the named records in windows; the reads that follow come from the cache', async () => {
  const n = 40;
  const s = buildSegment(dataSegmentId(2), new Array(n).fill(1000));
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(2)), s.bytes);
  const recLen = 1000 + RECORD_HEADER_BYTES;
  const r = reader(store, { readAheadBytes: 10 * recLen }); // exactly ten records per GET
  assert.equal(r.readAhead(s.locs), n, 'every record accepted');
  await settle();
  assert.equal(r.counters.gets, 4);
  assert.equal(r.counters.readAheadGets, 4);
  for (let i = 0; i < n; i++) assert.deepEqual(await r.read(s.locs[i]!, RecordType.DATA), s.payloads[i]);
  assert.equal(r.counters.gets, 4, 'no GET of its own');
  assert.equal(r.counters.cacheHits, n);
  // Asking again for what is cached (drop-behind keeps the last two windows used) fetches
  // nothing; read-ahead off fetches nothing.
  assert.equal(r.readAhead(s.locs.slice(n - 20)), 20);
  await settle();
  assert.equal(r.counters.gets, 4);
  const off = reader(store, { readAheadBytes: 0 });
  assert.equal(off.readAhead(s.locs), 0);
  await settle();
  assert.equal(store.stats.gets, 4);
});

test('reader: drop-behind reuses read-ahead slabs; a borrowed record is never overwritten', async () => {
  const n = 1200;
  const s = buildSegment(dataSegmentId(3), new Array(n).fill(1000));
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(3)), s.bytes);
  const perWindow = 60;
  const r = reader(store, { readAheadBytes: perWindow * 1000, cacheBytesMax: 512 * 1024 });
  // As the inode layer reads a file: keep a few windows asked for ahead of the reader, then read.
  let next = 0;
  const advance = (i: number): void => {
    if (next < n && i + 2 * perWindow >= next) next += r.readAhead(s.locs.slice(next, i + 3 * perWindow));
  };
  advance(0);
  // Borrow a record of the first window and keep it across the whole scan.
  const loan = await r.readParts(s.locs[5]!, RecordType.DATA);
  assert.deepEqual(Buffer.concat(loan.parts as Uint8Array[]), Buffer.from(s.payloads[5]!));
  for (let i = 0; i < n; i++) {
    advance(i);
    const got = await r.readParts(s.locs[i]!, RecordType.DATA);
    assert.deepEqual(Buffer.concat(got.parts as Uint8Array[]), Buffer.from(s.payloads[i]!), `record ${i}`);
    got.release();
    got.release(); // idempotent
  }
  await settle();
  const st = r.slabStats;
  assert.equal(r.counters.gets, r.counters.readAheadGets, 'every GET was a read-ahead window');
  const windows = r.counters.gets;
  assert.ok(st.reused > 0, 'slabs were reused');
  // Windows in flight (half the cache), two used windows kept behind, the borrowed one: far fewer
  // slabs than windows, and never more than the pool's bound.
  assert.ok(st.size < windows, `${st.size} slabs for ${windows} windows`);
  // The borrowed record's window was dropped behind long ago, yet its bytes are intact.
  assert.deepEqual(Buffer.concat(loan.parts as Uint8Array[]), Buffer.from(s.payloads[5]!));
  const inUse = st.inUse;
  loan.release();
  assert.equal(r.slabStats.inUse, inUse - 1, 'the borrowed slab went back to the pool');
  // read() hands out a copy of its own: it stays intact after the cache moves on.
  const copy = await r.read(s.locs[n - 1]!, RecordType.DATA);
  assert.deepEqual(Buffer.from(copy), Buffer.from(s.payloads[n - 1]!));
});

test('reader: readAhead follows the given records across segments and skips what lies between', async () => {
  const a = buildSegment(dataSegmentId(20), new Array(30).fill(1000));
  const b = buildSegment(dataSegmentId(21), new Array(30).fill(1000));
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(20)), a.bytes);
  await store.put(segmentKey('v/', dataSegmentId(21)), b.bytes);
  const r = reader(store, { readAheadBytes: 1 << 20 });
  // A file whose data is the second half of a, then the first half of b: two GETs, one per segment.
  const locs = [...a.locs.slice(15), ...b.locs.slice(0, 15)];
  assert.equal(r.readAhead(locs), 30);
  await settle();
  assert.equal(r.counters.gets, 2);
  const recLen = 1000 + RECORD_HEADER_BYTES;
  assert.equal(r.counters.bytesFetched, 30 * recLen, 'only the named records were fetched');
  for (let i = 0; i < 15; i++) assert.deepEqual(await r.read(locs[i]!, RecordType.DATA), a.payloads[15 + i]);
  for (let i = 0; i < 15; i++) assert.deepEqual(await r.read(locs[15 + i]!, RecordType.DATA), b.payloads[i]);
  assert.equal(r.counters.gets, 2);
  // Records more than 64 KiB apart in one segment are not bridged by one GET; closer ones are.
  const c = buildSegment(dataSegmentId(22), new Array(30).fill(4096));
  await store.put(segmentKey('v/', dataSegmentId(22)), c.bytes);
  const far = reader(store, { readAheadBytes: 1 << 20 });
  assert.equal(far.readAhead([c.locs[0]!, c.locs[29]!]), 2);
  await settle();
  assert.equal(far.counters.gets, 2);
  assert.equal(far.counters.bytesFetched, 2 * (4096 + RECORD_HEADER_BYTES));
  const near = reader(store, { readAheadBytes: 1 << 20 });
  assert.equal(near.readAhead([c.locs[0]!, c.locs[10]!]), 2);
  await settle();
  assert.equal(near.counters.gets, 1);
  assert.equal(near.counters.bytesFetched, 11 * (4096 + RECORD_HEADER_BYTES), 'the records between are fetched (and cached) too');
});

test('reader: a read of a record whose window is in flight waits for it instead of a GET of its own', async () => {
  const s = buildSegment(dataSegmentId(7), new Array(20).fill(1000));
  const base = new MemoryStore();
  await base.put(segmentKey('v/', dataSegmentId(7)), s.bytes);
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let gets = 0;
  const slow = Object.create(base) as MemoryStore;
  slow.get = async (key, range) => {
    gets++;
    await gate;
    return base.get(key, range);
  };
  const r = new SegmentReader({ store: slow, volumePrefix: 'v/', cacheBytesMax: 1 << 20, readAheadBytes: 1 << 20 }, null);
  assert.equal(r.readAhead(s.locs), 20);
  const reads = [5, 0, 19, 12].map((i) => r.read(s.locs[i]!, RecordType.DATA));
  await settle();
  assert.equal(gets, 1, 'the reads wait for the read-ahead window');
  release();
  const got = await Promise.all(reads);
  [5, 0, 19, 12].forEach((i, k) => assert.deepEqual(got[k], s.payloads[i]));
  assert.equal(gets, 1);
});

test('reader: read-ahead memory stays within half the cache; the cache bound holds', async () => {
  const n = 100;
  const s = buildSegment(dataSegmentId(9), new Array(n).fill(16 * 1024));
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(9)), s.bytes);
  const cacheMax = 256 * 1024;
  const r = new SegmentReader({ store, volumePrefix: 'v/', cacheBytesMax: cacheMax, readAheadBytes: 64 * 1024 }, null);
  const cacheBytes = () => (r as unknown as { cacheBytes: number }).cacheBytes;
  // Asked for all 1.6 MiB at once: only what fits half the cache is accepted.
  const accepted = r.readAhead(s.locs);
  assert.ok(accepted > 0 && accepted * 16 * 1024 <= cacheMax / 2, `accepted ${accepted}`);
  assert.ok(r.counters.aheadBytesPeak > 0 && r.counters.aheadBytesPeak <= cacheMax / 2, `peak in flight ${r.counters.aheadBytesPeak}`);
  let next = accepted;
  for (let i = 0; i < n; i++) {
    assert.deepEqual(await r.read(s.locs[i]!, RecordType.DATA), s.payloads[i]);
    assert.ok(cacheBytes() <= cacheMax, `cache holds ${cacheBytes()}`);
    // A reader keeps asking, as the inode layer does.
    if (next < n && i + 4 >= next) next += r.readAhead(s.locs.slice(next));
  }
  await settle();
  assert.ok(r.counters.aheadBytesPeak <= cacheMax / 2);
  assert.ok(cacheBytes() <= cacheMax);
  assert.ok(r.counters.cacheMisses < n / 4, `${r.counters.cacheMisses} misses of ${n}`);
});

test('reader: a damaged record in a read-ahead window is reported by the read of it; the others read fine', async () => {
  const s = buildSegment(dataSegmentId(11), new Array(10).fill(1000));
  const damaged = Uint8Array.from(s.bytes);
  damaged[s.locs[4]!.off + RECORD_HEADER_BYTES + 10]! ^= 0x40;
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(11)), damaged);
  const r = reader(store, { readAheadBytes: 1 << 20 });
  assert.equal(r.readAhead(s.locs), 10);
  await settle(); // the window failed quietly
  for (const i of [0, 1, 2, 3, 5, 9]) assert.deepEqual(await r.read(s.locs[i]!, RecordType.DATA), s.payloads[i]);
  await mustCorruptAsync(r.read(s.locs[4]!, RecordType.DATA), 'record 4');
});

test('reader: the cache is bounded in bytes and evicts least recently used first', async () => {
  const n = 30;
  const s = buildSegment(dataSegmentId(3), new Array(n).fill(1000));
  const store = new MemoryStore();
  await store.put(segmentKey('v/', dataSegmentId(3)), s.bytes);
  const r = reader(store, { cacheBytesMax: 5000, readAheadBytes: 0 });
  const cacheBytes = () => (r as unknown as { cacheBytes: number }).cacheBytes;
  for (let i = 0; i < n; i++) {
    await r.read(s.locs[i]!, RecordType.DATA);
    assert.ok(cacheBytes() <= 5000, `cache holds ${cacheBytes()} bytes`);
  }
  assert.equal(cacheBytes(), 5000);
  const gets = r.counters.gets;
  await r.read(s.locs[n - 1]!, RecordType.DATA);
  assert.equal(r.counters.gets, gets, 'recent record is cached');
  await r.read(s.locs[0]!, RecordType.DATA);
  assert.equal(r.counters.gets, gets + 1, 'old record was evicted');
  // Touching a record keeps it: read 25, then 5 new ones; 25 must survive, 26 must not.
  await r.read(s.locs[25]!, RecordType.DATA);
  for (const i of [1, 2, 3, 4]) await r.read(s.locs[i]!, RecordType.DATA);
  const g2 = r.counters.gets;
  await r.read(s.locs[25]!, RecordType.DATA);
  assert.equal(r.counters.gets, g2, 'recently used record survived');
  await r.read(s.locs[26]!, RecordType.DATA);
  assert.equal(r.counters.gets, g2 + 1, 'least recently used record went first');
  // With a read-ahead window far larger than the cache, the bound still holds.
  const big = reader(store, { cacheBytesMax: 3000, readAheadBytes: 1 << 20 });
  for (let i = 0; i < n; i++) {
    big.readAhead(s.locs.slice(i));
    assert.deepEqual(await big.read(s.locs[i]!, RecordType.DATA), s.payloads[i]);
    assert.ok((big as unknown as { cacheBytes: number }).cacheBytes <= 3000);
  }
  await settle();
  assert.ok((big as unknown as { cacheBytes: number }).cacheBytes <= 3000);
  // forgetSegment drops everything it held.
  r.forgetSegment(dataSegmentId(3));
  assert.equal(cacheBytes(), 0);
});
