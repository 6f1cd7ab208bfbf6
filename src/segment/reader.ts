import type { ObjectStore } from '../objstore/index.ts';
import { CorruptionError, StoreError, crc32, metrics, type Borrowed } from '../util/index.ts';
import type { Loc } from './builder.ts';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  TRAILER_BYTES,
  decodeRecord,
  decodeRecordHeader,
  decodeSummary,
  decodeTrailer,
  isCommitSegment,
  segmentKey,
  type SummaryEntry,
} from './format.ts';
import { SlabPool, type Slab } from './slabs.ts';
import type { LogSegmentWriter } from './writer.ts';

export interface SegmentReaderOptions {
  store: ObjectStore;
  volumePrefix: string;
  /** Upper bound on cached record payload bytes. */
  cacheBytesMax: number;
  /**
   * Largest ranged GET of a read-ahead window (bytes); 0 disables read-ahead. Read-ahead of file
   * data is asked for by the inode layer (`readAhead`), which knows the records a sequential
   * reader will want next; after a B-tree node read, the window that follows it is fetched too.
   */
  readAheadBytes: number;
}

/** Records this close together (bytes) in one segment share a GET; what lies between is cached too. */
const COALESCE_GAP_BYTES = 64 * 1024;
/** Slabs come in multiples of this. */
const SLAB_ALIGN = 64 * 1024;

/**
 * Reads records by location: from memory while their segment is open or not yet durable, else by
 * ranged GET. Every record is checksum-verified once, when the bytes arrive, before it is returned
 * or cached; the cache is an LRU bounded in (payload) bytes.
 *
 * A GET covers a *window*: a run of whole records of one segment. A read-ahead window is copied
 * into a reused slab (slabs.ts: why) and its data records are cached as views of it; other
 * windows' records are views of the chunks they arrived in. Callers borrow records (`readParts`)
 * and give them back, so a slab is reused only when no cached record and no borrower sees it; a
 * record whose slab went back to the pool before a waiting reader could borrow it is fetched
 * again, never read from reused memory (a slab's generation tells).
 * Records of commit segments (tree nodes) are copied out, so that a small node never pins a large
 * window.
 *
 * Read-ahead: `readAhead(locs)` fetches the records a caller will want next (the inode layer walks
 * a file's extent map ahead of a sequential reader, across segment boundaries) in windows of up to
 * `readAheadBytes`, within a memory bound of half the cache for windows in flight. A demand read of
 * a record whose window is in flight waits for that window rather than issuing its own GET.
 * Read-ahead never reads a segment no extent or node references: only those are known committed.
 *
 * Drop-behind: a record that read-ahead fetched and a reader has then used stays cached only until
 * readers have used `behindBytesMax` more such bytes (two windows): a sequential reader never
 * comes back (the kernel's page cache answers re-reads), so its windows' slabs are reused at
 * once instead of filling the whole cache first.
 */
export class SegmentReader {
  private readonly cache = new Map<string, CachedRecord>();
  private cacheBytes = 0;
  /** GETs in flight, by segment. */
  private readonly inflight = new Map<number, Window[]>();
  /** Commit segments: where the last node read ended. */
  private readonly lastEnd = new Map<number, number>();
  /** Bytes of read-ahead windows requested and not yet arrived. */
  private aheadBytes = 0;
  /** Bound on `aheadBytes`: half the cache, so read-ahead never evicts what it fetched before use. */
  readonly aheadBytesMax: number;
  private readonly windowBytes: number;
  /** Read-ahead windows' slabs (null: read-ahead is off). */
  private readonly slabs: SlabPool | null;
  /** Used read-ahead records, oldest first (drop-behind), and their payload bytes. */
  private readonly behind: Array<{ key: string; rec: CachedRecord }> = [];
  private behindHead = 0;
  private behindBytes = 0;
  readonly behindBytesMax: number;
  readonly counters = { gets: 0, bytesFetched: 0, cacheHits: 0, cacheMisses: 0, readAheadGets: 0, aheadBytesPeak: 0 };

  constructor(
    private readonly opts: SegmentReaderOptions,
    private readonly writer: LogSegmentWriter | null,
  ) {
    this.aheadBytesMax = Math.floor(opts.cacheBytesMax / 2);
    this.windowBytes = Math.max(0, Math.min(Math.floor(opts.readAheadBytes), this.aheadBytesMax));
    this.behindBytesMax = 2 * this.windowBytes;
    if (this.windowBytes > 0) {
      // A read-ahead window holds up to windowBytes of payload plus record headers (see readAhead).
      const slabBytes = Math.ceil((this.windowBytes + Math.ceil(this.windowBytes / 32) + RECORD_HEADER_BYTES) / SLAB_ALIGN) * SLAB_ALIGN;
      this.slabs = new SlabPool(slabBytes, Math.ceil(opts.cacheBytesMax / slabBytes) + 4);
    } else this.slabs = null;
  }

  /** Slab pool figures (tests, stats): slabs allocated, reused, in use now, and windows that found none free. */
  get slabStats(): { slabBytes: number; size: number; inUse: number; allocated: number; reused: number; exhausted: number } {
    const p = this.slabs;
    if (!p) return { slabBytes: 0, size: 0, inUse: 0, allocated: 0, reused: 0, exhausted: 0 };
    return { slabBytes: p.slabBytes, size: p.size, inUse: p.inUse, ...p.stats };
  }

  /** Largest read-ahead window (0: read-ahead is off). */
  get readAheadWindowBytes(): number {
    return this.windowBytes;
  }

  /** A verified record payload, one buffer of the caller's own. `expectType` guards against a stray location. */
  async read(loc: Loc, expectType: RecordType): Promise<Uint8Array> {
    const rec = await this.lookup(loc, expectType);
    if (!rec.slab) return rec.parts.length === 1 ? rec.parts[0]! : Buffer.concat(rec.parts, rec.length);
    try {
      return rec.parts.length === 1 ? Uint8Array.from(rec.parts[0]!) : Buffer.concat(rec.parts, rec.length);
    } finally {
      rec.slab.unref();
    }
  }

  /**
   * A verified record payload, borrowed: views of the cache (nothing copied), what a read reply is
   * written from. Do not modify them; call `release` once they are written out.
   */
  async readParts(loc: Loc, expectType: RecordType): Promise<Borrowed> {
    const rec = await this.lookup(loc, expectType);
    const slab = rec.slab;
    if (!slab) return { parts: rec.parts, release: noRelease };
    let released = false;
    return {
      parts: rec.parts,
      release: () => {
        if (released) return;
        released = true;
        slab.unref();
      },
    };
  }

  /**
   * The record at `loc`. A slab-backed one comes with a reference the caller must drop
   * (`slab.unref`), taken in the same turn as the record is found and only while the slab still
   * holds that record's bytes (see pin).
   */
  private async lookup(loc: Loc, expectType: RecordType): Promise<CachedRecord> {
    const mem = this.writer?.readInMemory(loc);
    // Copy: the segment's buffer is recycled once it is durable, which may happen before the
    // caller's continuation runs.
    if (mem) {
      const payload = Uint8Array.from(decodeRecord(mem, this.what(loc), expectType).payload);
      return { type: expectType, parts: [payload], length: payload.length };
    }
    const ck = cacheKey(loc);
    const hit = this.take(ck, expectType);
    if (hit) {
      if (isCommitSegment(loc.seg)) this.nodeReadAhead(loc);
      return hit;
    }
    // A window already on its way holds it: wait for that rather than a GET of its own.
    const w = this.windowFor(loc);
    if (w) {
      const found = await w.records.catch(() => undefined);
      const got = found?.get(ck) ?? this.cache.get(ck);
      // Evicted and its slab reused before this continuation ran: fetch it (below).
      if (got && got.type === expectType && pin(got)) {
        if (got.readAhead) this.firstUse(ck, got);
        this.counters.cacheHits++;
        metrics.cacheHits.inc();
        return got;
      }
    }
    this.counters.cacheMisses++;
    metrics.cacheMisses.inc();
    // Take the record from the window itself: the cache may already have evicted it (a window
    // larger than the cache, or concurrent windows) before this continuation runs.
    const node = isCommitSegment(loc.seg);
    const len = node && this.lastEnd.get(loc.seg) === loc.off ? Math.max(loc.len, this.opts.readAheadBytes) : loc.len;
    const got = (await this.fetchRetryingShort(loc.seg, loc.off, len)).get(ck) ?? this.cache.get(ck);
    if (!got) throw new CorruptionError(`${this.what(loc)}: no record at this location`, { offset: loc.off });
    if (got.type !== expectType) {
      throw new CorruptionError(`${this.what(loc)}: expected record type ${expectType}, found ${got.type}`, { offset: loc.off });
    }
    // A demand fetch keeps the chunks it arrived in (no slab: see fetchWindow); a record that
    // was cached by a read-ahead window meanwhile is pinned like any cached one.
    if (!pin(got)) throw new Error(`${this.what(loc)}: a cached record's slab was reused while it was cached`);
    if (node) this.nodeReadAhead(loc);
    return got;
  }

  /** A cached record of the right type (counted as a hit, with a reference on its slab), or undefined. */
  private take(ck: string, expectType: RecordType): CachedRecord | undefined {
    const hit = this.cache.get(ck);
    if (!hit || hit.type !== expectType) return undefined;
    // Before drop-behind, which may evict it. The cache holds a reference: the slab is its own.
    if (!pin(hit)) throw new Error(`record ${ck}: a cached record's slab was reused while it was cached`);
    // A record read ahead keeps its place on its first use: read-ahead inserts in file order, so
    // the records a scan has consumed are evicted before the ones it has yet to reach.
    if (hit.readAhead) this.firstUse(ck, hit);
    else {
      this.cache.delete(ck);
      this.cache.set(ck, hit);
    }
    this.counters.cacheHits++;
    metrics.cacheHits.inc();
    return hit;
  }

  /**
   * A store may cut a response short (a transient fault the caller must detect): a window that
   * does not hold even its first record is fetched again. A segment that is really truncated stays
   * short every time and is reported as corrupt.
   */
  private async fetchRetryingShort(seg: number, off: number, len: number): Promise<Map<string, CachedRecord>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchWindow(seg, off, len, false).records;
      } catch (err) {
        if (!(err instanceof ShortReadError) || attempt >= 4) throw err;
      }
    }
  }

  /**
   * Read-ahead: start fetching the records at `locs` (in the order the caller will read them) in
   * windows of up to `readAheadBytes`, and return at once. Returns how many leading entries of
   * `locs` are now cached, in memory or on their way; the rest did not fit the read-ahead memory
   * bound (ask again later). Fetch errors are left to the reads that follow.
   */
  readAhead(locs: readonly Loc[]): number {
    if (this.windowBytes <= 0) return 0;
    let accepted = 0;
    // A window of file data holds a little more than its payload (record headers): allow for
    // them, so that a window's worth of file bytes is one GET, not one and a sliver.
    for (const run of this.runs(locs, this.windowBytes + Math.ceil(this.windowBytes / 32))) {
      if (run.len > 0) {
        if (this.aheadBytes + run.len > this.aheadBytesMax) break;
        this.aheadBytes += run.len;
        this.counters.aheadBytesPeak = Math.max(this.counters.aheadBytesPeak, this.aheadBytes);
        this.counters.readAheadGets++;
        const len = run.len;
        const w = this.fetchWindow(run.seg, run.off, len, true);
        w.records.then(
          () => (this.aheadBytes -= len),
          () => (this.aheadBytes -= len),
        );
      }
      accepted = run.through;
    }
    return accepted;
  }

  /**
   * Warm the cache for records a caller is about to read together (one file read spans many
   * records): one ranged GET per run of nearby records in a segment, instead of one GET per
   * record; records already cached or on their way are not fetched again. Errors are left to the
   * individual reads that follow.
   */
  async prefetchMany(locs: readonly Loc[]): Promise<void> {
    const fetches: Promise<unknown>[] = [];
    for (const run of this.runs(locs, Number.MAX_SAFE_INTEGER)) {
      // A lone record (not a node run): read() fetches it.
      if (run.len === 0 || (run.count < 2 && !(isCommitSegment(run.seg) && this.lastEnd.get(run.seg) === run.off))) continue;
      const len = isCommitSegment(run.seg) && this.lastEnd.get(run.seg) === run.off ? Math.max(run.len, this.opts.readAheadBytes) : run.len;
      fetches.push(this.fetchRetryingShort(run.seg, run.off, len).catch(() => {}));
    }
    await Promise.all(fetches);
  }

  /**
   * Split `locs` into windows to fetch: runs of records of one segment, each within `maxBytes`,
   * gaps of at most COALESCE_GAP_BYTES bridged. Records cached, in memory or in a window already
   * in flight need no fetch (a run of length 0 carries them). `through` counts the entries of
   * `locs` handled up to the end of each run.
   */
  private *runs(locs: readonly Loc[], maxBytes: number): Generator<{ seg: number; off: number; len: number; count: number; through: number }> {
    let cur: { seg: number; off: number; len: number; count: number; through: number } | null = null;
    let skipped = 0;
    for (let i = 0; i < locs.length; i++) {
      const l = locs[i]!;
      if (this.cache.has(cacheKey(l)) || this.writer?.isInMemory(l.seg) || this.windowFor(l)) {
        if (cur) cur.through = i + 1;
        else skipped = i + 1;
        continue;
      }
      const end = l.off + l.len;
      if (cur && cur.seg === l.seg && l.off >= cur.off + cur.len && l.off <= cur.off + cur.len + COALESCE_GAP_BYTES && end - cur.off <= maxBytes) {
        cur.len = end - cur.off;
        cur.count++;
        cur.through = i + 1;
        continue;
      }
      if (cur) yield cur;
      else if (skipped > 0) yield { seg: l.seg, off: 0, len: 0, count: 0, through: skipped };
      cur = { seg: l.seg, off: l.off, len: l.len, count: 1, through: i + 1 };
    }
    if (cur) yield cur;
    else if (skipped > 0) yield { seg: 0, off: 0, len: 0, count: 0, through: skipped };
  }

  /** The summary of a durable segment: every record's type, owner, key and place (cleaner, tools). */
  async readSummary(seg: number): Promise<SummaryEntry[]> {
    const key = segmentKey(this.opts.volumePrefix, seg);
    const info = await this.opts.store.head(key);
    if (!info) throw new CorruptionError(`segment ${key} is missing from the store`, { key });
    if (info.size < TRAILER_BYTES) throw new CorruptionError(`${key}: too short to be a segment`, { key });
    const t = decodeTrailer(await this.opts.store.get(key, { offset: info.size - TRAILER_BYTES, length: TRAILER_BYTES }), key);
    if (t.segmentId !== seg || t.totalLen !== info.size) throw new CorruptionError(`${key}: trailer does not match the object`, { key });
    const rec = await this.opts.store.get(key, { offset: t.summaryOff, length: t.summaryLen });
    return decodeSummary(decodeRecord(rec, `${key} summary`, RecordType.SUMMARY).payload);
  }

  /** Drop everything cached for a segment (it was deleted). */
  forgetSegment(seg: number): void {
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${seg}:`)) this.evict(k);
    this.lastEnd.delete(seg);
  }

  /**
   * The first use of a read-ahead record: it keeps its place in the LRU (read-ahead inserts in
   * file order, so a scan's used records go before the ones it has yet to reach) and joins the
   * drop-behind queue; the oldest beyond the bound leave the cache.
   */
  private firstUse(key: string, rec: CachedRecord): void {
    rec.readAhead = false;
    if (this.behindBytesMax <= 0 || this.cache.get(key) !== rec) return;
    this.behind.push({ key, rec });
    this.behindBytes += rec.length;
    while (this.behindBytes > this.behindBytesMax && this.behindHead < this.behind.length) {
      const old = this.behind[this.behindHead++]!;
      this.behindBytes -= old.rec.length;
      // Only if the cache still holds that very record (it may have been evicted and fetched again).
      if (this.cache.get(old.key) === old.rec) this.evict(old.key);
    }
    if (this.behindHead > 1024 && this.behindHead * 2 > this.behind.length) {
      this.behind.splice(0, this.behindHead);
      this.behindHead = 0;
    }
  }

  private evict(k: string): void {
    const rec = this.cache.get(k);
    if (!rec) return;
    this.cache.delete(k);
    this.cacheBytes -= rec.length;
    rec.slab?.unref();
  }

  private what(loc: Loc): string {
    return `${segmentKey(this.opts.volumePrefix, loc.seg)}@${loc.off}+${loc.len}`;
  }

  /**
   * Commit segments (B-tree nodes): after a read, fetch the window that follows it unless its
   * first record is cached already. Nodes written together are read together; the segment is
   * small.
   */
  private nodeReadAhead(loc: Loc): void {
    const end = loc.off + loc.len;
    this.lastEnd.set(loc.seg, end);
    if (this.opts.readAheadBytes <= 0 || this.writer?.isInMemory(loc.seg)) return;
    const nextProbe = `${loc.seg}:${end}:`;
    for (const k of this.cache.keys()) if (k.startsWith(nextProbe)) return;
    if (this.windowFor({ seg: loc.seg, off: end, len: 1 })) return;
    this.fetchWindow(loc.seg, end, this.opts.readAheadBytes, false).records.catch(() => {});
  }

  /** A window in flight that holds all of `loc`, if any. */
  private windowFor(loc: Loc): Window | undefined {
    const ws = this.inflight.get(loc.seg);
    if (!ws) return undefined;
    const end = loc.off + loc.len;
    for (const w of ws) if (w.off <= loc.off && end <= w.end) return w;
    return undefined;
  }

  /**
   * GET [off, off+len) of a segment and cache every complete record in it (CRC-checked); resolves to
   * those records. `off` must be a record boundary. Data records are cached as views into the
   * window's bytes; node records are copied out.
   */
  private fetchWindow(seg: number, off: number, len: number, readAhead: boolean): Window {
    const key = segmentKey(this.opts.volumePrefix, seg);
    const w: Window = { off, end: off + len, records: Promise.resolve(new Map()) };
    let slab: Slab | null = null;
    w.records = (async () => {
      const found = new Map<string, CachedRecord>();
      let parts: Uint8Array[];
      try {
        const store = this.opts.store;
        const range = { offset: off, length: len };
        parts = store.getv ? await store.getv(key, range) : [await store.get(key, range)];
      } catch (err) {
        if (err instanceof StoreError && err.kind === 'not_found') {
          throw new CorruptionError(`segment ${key} is missing from the store`, { key, cause: err });
        }
        throw err;
      }
      // Only read-ahead windows go into slabs: a reader waiting for a demand fetch takes its
      // record from the window itself, which must stay valid however the cache moves meanwhile.
      if (readAhead && !isCommitSegment(seg)) slab = this.intoSlab(parts);
      if (slab) parts = [slab.buf.subarray(0, slab.used)];
      const bytes = new Pieces(parts);
      this.counters.gets++;
      this.counters.bytesFetched += bytes.length;
      const copy = isCommitSegment(seg);
      let pos = 0;
      while (pos + RECORD_HEADER_BYTES <= bytes.length) {
        let recLen: number;
        let type: number;
        try {
          const h = decodeRecordHeader(bytes.range(pos, RECORD_HEADER_BYTES), key);
          recLen = RECORD_HEADER_BYTES + h.payloadLength;
          type = h.type;
        } catch {
          break; // past the last record (trailer) or not a record boundary
        }
        if (pos + recLen > bytes.length) break;
        if (type !== RecordType.DATA && type !== RecordType.NODE) break; // the summary: records end here
        const loc = { seg, off: off + pos, len: recLen };
        const parts = bytes.verifiedPayload(pos, recLen, this.what(loc));
        let cached: CachedRecord;
        if (copy) {
          // Node records are copied out (a node must not pin its window).
          const payload = Buffer.concat(parts, recLen - RECORD_HEADER_BYTES);
          cached = { type, parts: [new Uint8Array(payload.buffer, payload.byteOffset, payload.length)], length: payload.length };
        } else cached = { type, parts, length: recLen - RECORD_HEADER_BYTES, ...(slab ? { slab, gen: slab.gen } : {}) };
        if (readAhead) cached.readAhead = true;
        found.set(cacheKey(loc), cached);
        this.put(cacheKey(loc), cached);
        pos += recLen;
      }
      if (pos === 0 && bytes.length < len) {
        throw new ShortReadError(`${key}: short read at ${off} (got ${bytes.length} of ${len} bytes)`, { key, offset: off });
      }
      return found;
    })().finally(() => {
      // The window's own reference (from take): its cached records hold theirs now.
      slab?.unref();
      const ws = this.inflight.get(seg);
      const i = ws?.indexOf(w) ?? -1;
      if (ws && i >= 0) {
        ws.splice(i, 1);
        if (ws.length === 0) this.inflight.delete(seg);
      }
    });
    const ws = this.inflight.get(seg);
    if (ws) ws.push(w);
    else this.inflight.set(seg, [w]);
    return w;
  }

  /**
   * A window's bytes copied into a slab (one reference: the caller's), or null to keep the chunks
   * they arrived in: a window too small to be worth a slab or too large for one, a commit segment
   * (its records are copied out anyway), or no slab free.
   */
  private intoSlab(parts: readonly Uint8Array[]): Slab | null {
    const pool = this.slabs;
    if (!pool) return null;
    let n = 0;
    for (const p of parts) n += p.length;
    if (n < pool.slabBytes / 4 || n > pool.slabBytes) return null;
    const slab = pool.take();
    if (!slab) return null;
    let at = 0;
    for (const p of parts) {
      slab.buf.set(p, at);
      at += p.length;
    }
    slab.used = n;
    return slab;
  }

  private put(k: string, rec: CachedRecord): void {
    this.evict(k);
    rec.slab?.ref();
    this.cache.set(k, rec);
    this.cacheBytes += rec.length;
    while (this.cacheBytes > this.opts.cacheBytesMax && this.cache.size > 1) {
      const first = this.cache.keys().next();
      if (first.done) break;
      this.evict(first.value);
    }
  }
}

/**
 * A GET's bytes as the pieces they arrived in, read front to back: a range that lies in one piece
 * is a view of it; one that straddles pieces is copied into a buffer of its own (small: a record).
 */
class Pieces {
  readonly length: number;
  /** Index and start offset of the piece the last range began in (ranges move forward). */
  private i = 0;
  private at = 0;
  constructor(private readonly parts: readonly Uint8Array[]) {
    let n = 0;
    for (const p of parts) n += p.length;
    this.length = n;
  }

  /**
   * The payload of the record at [from, from + recLen) as views, after checking its CRC (which
   * covers the header's first 28 bytes and the payload, however the pieces cut them).
   */
  verifiedPayload(from: number, recLen: number, what: string): Uint8Array[] {
    const header = decodeRecordHeader(this.range(from, RECORD_HEADER_BYTES), what);
    if (RECORD_HEADER_BYTES + header.payloadLength !== recLen) throw new CorruptionError(`${what}: record length does not match its header`);
    const parts = this.views(from + RECORD_HEADER_BYTES, header.payloadLength);
    let crc = crc32(this.range(from, 28));
    for (const p of parts) crc = crc32(p, crc);
    if (crc !== header.crc) throw new CorruptionError(`${what}: record checksum mismatch`);
    return parts;
  }

  /** [from, from + n) as views of the pieces that hold it. */
  views(from: number, n: number): Uint8Array[] {
    this.seek(from);
    const out: Uint8Array[] = [];
    let done = 0;
    for (let k = this.i, off = from - this.at; k < this.parts.length && done < n; k++, off = 0) {
      const p = this.parts[k]!;
      const take = Math.min(p.length - off, n - done);
      if (take > 0) out.push(p.subarray(off, off + take));
      done += take;
    }
    return out;
  }

  private seek(from: number): void {
    if (from < this.at) {
      this.i = 0;
      this.at = 0;
    }
    while (this.i < this.parts.length && this.at + this.parts[this.i]!.length <= from) this.at += this.parts[this.i++]!.length;
  }

  range(from: number, n: number): Uint8Array {
    this.seek(from);
    const first = this.parts[this.i];
    if (first === undefined) return new Uint8Array(0);
    const start = from - this.at;
    if (start + n <= first.length) return first.subarray(start, start + n);
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    for (let k = this.i, off = start; k < this.parts.length && done < n; k++, off = 0) {
      const p = this.parts[k]!;
      const take = Math.min(p.length - off, n - done);
      out.set(p.subarray(off, off + take), done);
      done += take;
    }
    return new Uint8Array(out.buffer, out.byteOffset, done);
  }
}

/** A response that does not hold a whole record: a cut-short body, or a truncated segment. */
class ShortReadError extends CorruptionError {}

/** A verified record payload (as the pieces it arrived in) and its type (checked against what each reader expects). */
interface CachedRecord {
  type: number;
  parts: Uint8Array[];
  /** Payload bytes (the sum of the parts). */
  length: number;
  /** Cached by read-ahead and not used yet. */
  readAhead?: boolean;
  /** The slab the parts are views of (referenced while cached and while borrowed)... */
  slab?: Slab;
  /** ... and its generation when they were made: another one means the bytes were overwritten. */
  gen?: number;
}

/** Borrow a record: a reference on its slab, if it still holds the record's bytes (false: it does not). */
function pin(rec: CachedRecord): boolean {
  const slab = rec.slab;
  if (!slab) return true;
  if (slab.refs === 0 || slab.gen !== rec.gen) return false;
  slab.ref();
  return true;
}

const noRelease = (): void => {};

/** One ranged GET in flight: [off, end) of a segment; resolves to the records it held. */
interface Window {
  off: number;
  end: number;
  records: Promise<Map<string, CachedRecord>>;
}

function cacheKey(loc: Loc): string {
  return `${loc.seg}:${loc.off}:${loc.len}`;
}
