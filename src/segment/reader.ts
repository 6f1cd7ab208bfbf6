import type { ObjectStore } from '../objstore/index.ts';
import { CorruptionError, StoreError, metrics } from '../util/index.ts';
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
import type { LogSegmentWriter } from './writer.ts';

export interface SegmentReaderOptions {
  store: ObjectStore;
  volumePrefix: string;
  /** Upper bound on cached record payload bytes. */
  cacheBytesMax: number;
  /** Size of one read-ahead window (one ranged GET) when reads look sequential; 0 disables read-ahead. */
  readAheadBytes: number;
  /**
   * Read-ahead windows kept in flight ahead of a sequential reader (default 3, clamped to 1..8).
   * All windows in flight, over every stream, stay within half the cache (`cacheBytesMax / 2`).
   */
  readAheadWindows?: number;
}

/** Default and bounds of `readAheadWindows`. */
export const READ_AHEAD_WINDOWS_DEFAULT = 3;
export const READ_AHEAD_WINDOWS_MAX = 8;
/** Segments followed at once by the sequential detector (least recently used dropped first). */
const STREAMS_MAX = 16;
/**
 * How far (bytes) a read may start from the furthest point read so far in its segment and still
 * count as sequential: the kernel sends several FUSE reads at once, which arrive out of order.
 */
const SEQUENTIAL_SLACK_BYTES = 2 * 1024 * 1024;

/**
 * Reads records by location: from memory while their segment is open or not yet durable, else by
 * ranged GET. Every record is checksum-verified before it is returned or cached; the cache is an
 * LRU bounded in bytes.
 *
 * Read-ahead is per segment (a file written sequentially lies in consecutive records of
 * consecutive data segments). A segment's reads count as sequential when they start at the
 * segment's first record or near the furthest point read so far (out-of-order, overlapping
 * concurrent reads included); then a pipeline keeps `readAheadWindows` ranged GETs of
 * `readAheadBytes` in flight ahead of the reader. Windows are fetched concurrently but parsed in
 * order, a record cut by a window edge being joined with the next window, so every record of the
 * run is cached whole and CRC-checked. Read-ahead never guesses at another segment: only a
 * segment some caller already reads from is known to be committed (an id not yet referenced may
 * be an orphan of a crashed writer that is about to be written again).
 */
export class SegmentReader {
  private readonly cache = new Map<string, CachedRecord>();
  private cacheBytes = 0;
  private readonly inflight = new Map<string, Promise<Map<string, CachedRecord>>>();
  /** Commit segments: where the last node read ended. */
  private readonly lastEnd = new Map<number, number>();
  /** Sequential detection and read-ahead pipeline per segment, in least-recently-used order. */
  private readonly streams = new Map<number, Stream>();
  /** Bytes of read-ahead windows requested and not yet parsed, over every stream. */
  private aheadBytes = 0;
  private readonly windowBytes: number;
  private readonly windowsAhead: number;
  private readonly aheadBytesMax: number;
  readonly counters = { gets: 0, bytesFetched: 0, cacheHits: 0, cacheMisses: 0, readAheadGets: 0, aheadBytesPeak: 0 };

  constructor(
    private readonly opts: SegmentReaderOptions,
    private readonly writer: LogSegmentWriter | null,
  ) {
    const windows = opts.readAheadWindows ?? READ_AHEAD_WINDOWS_DEFAULT;
    this.windowsAhead = Math.max(1, Math.min(READ_AHEAD_WINDOWS_MAX, Math.floor(windows)));
    // In-flight windows stay within half the cache, so read-ahead never evicts what it fetched
    // before the reader gets to it and memory stays bounded by the cache setting.
    this.aheadBytesMax = Math.floor(opts.cacheBytesMax / 2);
    this.windowBytes = Math.max(0, Math.min(Math.floor(opts.readAheadBytes), this.aheadBytesMax));
  }

  /** A verified record payload. `expectType` guards against a stray location. */
  async read(loc: Loc, expectType: RecordType): Promise<Uint8Array> {
    const mem = this.writer?.readInMemory(loc);
    // Copy: the segment's buffer is recycled once it is durable, which may happen before the
    // caller's continuation runs.
    if (mem) return Uint8Array.from(decodeRecord(mem, this.what(loc), expectType).payload);
    const ck = cacheKey(loc);
    const hit = this.cache.get(ck);
    if (hit && hit.type === expectType) {
      // A record read ahead keeps its place on its first use: read-ahead inserts in file order, so
      // the records a scan has consumed are evicted before the ones it has yet to reach.
      if (hit.readAhead) hit.readAhead = false;
      else {
        this.cache.delete(ck);
        this.cache.set(ck, hit);
      }
      this.counters.cacheHits++;
      metrics.cacheHits.inc();
      if (isCommitSegment(loc.seg)) this.nodeReadAhead(loc);
      else this.observe(loc.seg, loc.off, loc.off + loc.len);
      return hit.payload;
    }
    this.observe(loc.seg, loc.off, loc.off + loc.len);
    // A read-ahead window already on its way holds it: wait for that rather than a GET of its own.
    const ahead = await this.awaitReadAhead(loc);
    if (ahead && ahead.type === expectType) {
      this.counters.cacheHits++;
      metrics.cacheHits.inc();
      return ahead.payload;
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
    if (node) this.nodeReadAhead(loc);
    return got.payload;
  }

  /**
   * A store may cut a response short (a transient fault the caller must detect): a window that
   * does not hold even its first record is fetched again. A segment that is really truncated stays
   * short every time and is reported as corrupt.
   */
  private async fetchRetryingShort(seg: number, off: number, len: number): Promise<Map<string, CachedRecord>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchWindow(seg, off, len);
      } catch (err) {
        if (!(err instanceof ShortReadError) || attempt >= 4) throw err;
      }
    }
  }

  /**
   * Warm the cache for records a caller is about to read together (one file read spans many
   * records): one ranged GET per run of nearby records in a segment, instead of one GET per
   * record; runs a read-ahead pipeline already covers are left to it. Errors are left to the
   * individual reads that follow.
   */
  async prefetchMany(locs: readonly Loc[]): Promise<void> {
    // Feed the sequential detector once per segment span of this call (one file read).
    const spans = new Map<number, { off: number; end: number }>();
    for (const l of locs) {
      const sp = spans.get(l.seg);
      if (sp) {
        sp.off = Math.min(sp.off, l.off);
        sp.end = Math.max(sp.end, l.off + l.len);
      } else spans.set(l.seg, { off: l.off, end: l.off + l.len });
    }
    for (const [seg, sp] of spans) if (!this.writer?.isInMemory(seg)) this.observe(seg, sp.off, sp.end);
    const bySeg = new Map<number, Loc[]>();
    for (const l of locs) {
      if (this.cache.has(cacheKey(l)) || this.writer?.isInMemory(l.seg) || this.coveredByReadAhead(l)) continue;
      const list = bySeg.get(l.seg);
      if (list) list.push(l);
      else bySeg.set(l.seg, [l]);
    }
    const gap = 64 * 1024;
    const fetches: Promise<unknown>[] = [];
    for (const [seg, ls] of bySeg) {
      const node = isCommitSegment(seg);
      if (ls.length < 2 && !(node && this.lastEnd.get(seg) === ls[0]!.off)) continue; // a lone record: read() fetches it
      ls.sort((a, b) => a.off - b.off);
      let start = ls[0]!.off;
      let end = start + ls[0]!.len;
      const flush = (): void => {
        const len = node && this.lastEnd.get(seg) === start ? Math.max(end - start, this.opts.readAheadBytes) : end - start;
        fetches.push(this.fetchRetryingShort(seg, start, len).catch(() => {}));
      };
      for (const l of ls.slice(1)) {
        if (l.off <= end + gap) end = Math.max(end, l.off + l.len);
        else {
          flush();
          start = l.off;
          end = l.off + l.len;
        }
      }
      flush();
    }
    await Promise.all(fetches);
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
    for (const k of [...this.cache.keys()]) {
      if (k.startsWith(`${seg}:`)) {
        this.cacheBytes -= this.cache.get(k)?.payload.length ?? 0;
        this.cache.delete(k);
      }
    }
    const st = this.streams.get(seg);
    if (st) this.stopPipeline(st);
    this.streams.delete(seg);
    this.lastEnd.delete(seg);
  }

  private what(loc: Loc): string {
    return `${segmentKey(this.opts.volumePrefix, loc.seg)}@${loc.off}+${loc.len}`;
  }

  /**
   * Commit segments (B-tree nodes): after a read, fetch the window that follows it unless its
   * first record is cached already. Nodes written together are read together; the segment is
   * small. (Data segments use the pipeline below.)
   */
  private nodeReadAhead(loc: Loc): void {
    const end = loc.off + loc.len;
    this.lastEnd.set(loc.seg, end);
    if (this.opts.readAheadBytes <= 0 || this.writer?.isInMemory(loc.seg)) return;
    const nextProbe = `${loc.seg}:${end}:`;
    for (const k of this.cache.keys()) if (k.startsWith(nextProbe)) return;
    this.fetchWindow(loc.seg, end, this.opts.readAheadBytes).catch(() => {});
  }

  /**
   * Sequential detection: a read of [off, end) in a segment. It continues the segment's run when it
   * starts at the segment's first record or within SEQUENTIAL_SLACK_BYTES of the furthest byte read
   * so far (or inside the read-ahead already requested); anything else starts a new run. The
   * second read of a run (or a run that starts at the segment's first record) starts read-ahead.
   */
  private observe(seg: number, off: number, end: number): void {
    // Data segments only: a commit segment's id can be written again after a crash (the commit
    // sequence is dense), so its bytes are never read beyond what a caller asks for.
    if (this.windowBytes <= 0 || isCommitSegment(seg) || this.writer?.isInMemory(seg)) return;
    let st = this.streams.get(seg);
    if (st) {
      this.streams.delete(seg); // most recently used last
      this.streams.set(seg, st);
    } else {
      st = newStream(seg);
      this.streams.set(seg, st);
      while (this.streams.size > STREAMS_MAX) {
        const oldest = this.streams.values().next().value as Stream;
        this.stopPipeline(oldest);
        this.streams.delete(oldest.seg);
      }
    }
    const p = st.pipe;
    const near =
      st.maxEnd >= 0 &&
      ((off >= st.maxEnd - SEQUENTIAL_SLACK_BYTES && off <= st.maxEnd + SEQUENTIAL_SLACK_BYTES) ||
        (p !== null && off >= p.start && off <= p.nextOff));
    if (off === 0 && !near) {
      // The segment's first record, outside any run here: a scan of the segment starting.
      this.stopPipeline(st);
      st.ended = false;
      st.runReads = 2;
      st.maxEnd = end;
    } else if (near) {
      if (off === 0) st.runReads = Math.max(st.runReads, 1);
      if (end > st.maxEnd) st.runReads++;
      st.maxEnd = Math.max(st.maxEnd, end);
    } else {
      st.runReads = 1;
      st.maxEnd = end;
      st.ended = false;
      this.stopPipeline(st);
    }
    if (st.runReads >= 2) this.topUp(st, this.windowsAhead);
  }

  /** Keep `depth` windows requested ahead of the reader's furthest point, within the memory bound. */
  private topUp(st: Stream, depth: number): void {
    if (st.ended) return;
    let p = st.pipe;
    // Start (or restart, when the reader has overtaken it) at the furthest record end read.
    // Never further ahead than the memory bound: records read ahead wait in the (bounded) cache.
    const span = Math.min(this.windowBytes * depth, this.aheadBytesMax);
    if (!p || p.dead || p.parsedTo < st.maxEnd - span) {
      if (p) this.stopPipeline(st);
      p = st.pipe = { start: st.maxEnd, nextOff: st.maxEnd, parsedTo: st.maxEnd, carry: new Uint8Array(0), chain: Promise.resolve(), windows: [], dead: false };
    }
    const pipe = p;
    while (pipe.nextOff < st.maxEnd + span && this.aheadBytes + this.windowBytes <= this.aheadBytesMax) {
      const off = pipe.nextOff;
      const len = this.windowBytes;
      pipe.nextOff += len;
      this.aheadBytes += len;
      this.counters.aheadBytesPeak = Math.max(this.counters.aheadBytesPeak, this.aheadBytes);
      const key = segmentKey(this.opts.volumePrefix, st.seg);
      const body = this.opts.store.get(key, { offset: off, length: len });
      body.catch(() => {}); // its failure is handled in order, below
      const w: Window = { off, end: off + len, parsed: Promise.resolve(new Map()) };
      w.parsed = pipe.chain.then(async () => {
        let found = new Map<string, CachedRecord>();
        try {
          if (pipe.dead) return found;
          let bytes: Uint8Array;
          try {
            bytes = await body;
          } catch {
            pipe.dead = true; // the reads that follow fetch their own records (and report errors)
            return found;
          }
          this.counters.gets++;
          this.counters.readAheadGets++;
          this.counters.bytesFetched += bytes.length;
          if (pipe.dead) return found;
          found = this.parseWindow(st, pipe, bytes, bytes.length < len);
          return found;
        } finally {
          this.aheadBytes -= len;
          const i = pipe.windows.indexOf(w);
          if (i >= 0) pipe.windows.splice(i, 1);
        }
      });
      pipe.chain = w.parsed.then(() => {});
      pipe.windows.push(w);
    }
  }

  /**
   * Parse one window's bytes after the carried tail of the previous one: cache every whole record
   * (CRC-checked), keep the tail of a record cut by the window's end. The end of the segment's
   * records (summary, trailer, or the end of the object) ends the run. Bytes that do not decode stop the pipeline: the reads themselves then
   * fetch, verify and report.
   */
  private parseWindow(st: Stream, pipe: Pipeline, bytes: Uint8Array, lastOfObject: boolean): Map<string, CachedRecord> {
    const found = new Map<string, CachedRecord>();
    const buf = pipe.carry.length === 0 ? bytes : Buffer.concat([pipe.carry, bytes]);
    const key = segmentKey(this.opts.volumePrefix, st.seg);
    let pos = 0;
    let endOfRecords = false;
    while (pos + RECORD_HEADER_BYTES <= buf.length) {
      let recLen: number;
      let type: number;
      try {
        const h = decodeRecordHeader(buf.subarray(pos, pos + RECORD_HEADER_BYTES), key);
        recLen = RECORD_HEADER_BYTES + h.payloadLength;
        type = h.type;
      } catch {
        endOfRecords = true; // the trailer (or not a record: either way, this run is over)
        break;
      }
      if (type === RecordType.SUMMARY || type === RecordType.COMMIT) {
        endOfRecords = true; // data and node records all come before the summary
        break;
      }
      if (pos + recLen > buf.length) break;
      const loc = { seg: st.seg, off: pipe.parsedTo + pos, len: recLen };
      let payload: Uint8Array;
      try {
        payload = decodeRecord(buf.subarray(pos, pos + recLen), this.what(loc)).payload;
      } catch {
        pipe.dead = true;
        return found;
      }
      const cached: CachedRecord = { type, payload: Uint8Array.from(payload), readAhead: true };
      found.set(cacheKey(loc), cached);
      this.put(cacheKey(loc), cached);
      pos += recLen;
    }
    pipe.parsedTo += pos;
    pipe.carry = Uint8Array.from(buf.subarray(pos));
    if (endOfRecords || lastOfObject) {
      pipe.dead = true;
      st.ended = true;
    } else if (pipe.carry.length > 2 * this.aheadBytesMax) {
      pipe.dead = true; // a record larger than read-ahead may hold: leave it to its read
    }
    return found;
  }

  /** Whether a read-ahead window already requested will hold this record. */
  private coveredByReadAhead(loc: Loc): boolean {
    const p = this.streams.get(loc.seg)?.pipe;
    return !!p && !p.dead && loc.off >= p.parsedTo && loc.off + loc.len <= p.nextOff;
  }

  /** Wait for the read-ahead window that completes this record, if one is in flight; the record or null. */
  private async awaitReadAhead(loc: Loc): Promise<CachedRecord | null> {
    const p = this.streams.get(loc.seg)?.pipe;
    if (!p || p.dead || loc.off < p.parsedTo) return null;
    const end = loc.off + loc.len;
    const w = p.windows.find((x) => x.off < end && end <= x.end);
    if (!w) return null;
    const found = await w.parsed;
    return found.get(cacheKey(loc)) ?? this.cache.get(cacheKey(loc)) ?? null;
  }

  private stopPipeline(st: Stream): void {
    // Windows in flight still finish (their bytes are accounted until then) but cache nothing.
    if (st.pipe) st.pipe.dead = true;
    st.pipe = null;
  }

  /** GET [off, off+len) of a segment and cache every complete record in it; resolves to those records. */
  private fetchWindow(seg: number, off: number, len: number): Promise<Map<string, CachedRecord>> {
    const fk = `${seg}:${off}`;
    const existing = this.inflight.get(fk);
    if (existing) return existing;
    const p = (async () => {
      const key = segmentKey(this.opts.volumePrefix, seg);
      const found = new Map<string, CachedRecord>();
      let bytes: Uint8Array;
      try {
        bytes = await this.opts.store.get(key, { offset: off, length: len });
      } catch (err) {
        if (err instanceof StoreError && err.kind === 'not_found') {
          throw new CorruptionError(`segment ${key} is missing from the store`, { key, cause: err });
        }
        throw err;
      }
      this.counters.gets++;
      this.counters.bytesFetched += bytes.length;
      let pos = 0;
      while (pos + RECORD_HEADER_BYTES <= bytes.length) {
        let recLen: number;
        let type: number;
        try {
          const h = decodeRecordHeader(bytes.subarray(pos, pos + RECORD_HEADER_BYTES), key);
          recLen = RECORD_HEADER_BYTES + h.payloadLength;
          type = h.type;
        } catch {
          break; // past the last record (trailer) or not a record boundary
        }
        if (pos + recLen > bytes.length) break;
        if (type === RecordType.DATA || type === RecordType.NODE) {
          const rec = bytes.subarray(pos, pos + recLen);
          const loc = { seg, off: off + pos, len: recLen };
          const { payload } = decodeRecord(rec, this.what(loc));
          // Copy out of the window so one cached record does not pin the whole window.
          const cached: CachedRecord = { type, payload: pos === 0 && recLen === bytes.length ? payload : Uint8Array.from(payload) };
          found.set(cacheKey(loc), cached);
          this.put(cacheKey(loc), cached);
        }
        pos += recLen;
      }
      if (pos === 0 && bytes.length < len) {
        throw new ShortReadError(`${key}: short read at ${off} (got ${bytes.length} of ${len} bytes)`, { key, offset: off });
      }
      return found;
    })().finally(() => this.inflight.delete(fk));
    this.inflight.set(fk, p);
    return p;
  }

  private put(k: string, rec: CachedRecord): void {
    const old = this.cache.get(k);
    if (old) {
      this.cacheBytes -= old.payload.length;
      this.cache.delete(k);
    }
    this.cache.set(k, rec);
    this.cacheBytes += rec.payload.length;
    while (this.cacheBytes > this.opts.cacheBytesMax && this.cache.size > 1) {
      const first = this.cache.keys().next();
      if (first.done) break;
      this.cacheBytes -= this.cache.get(first.value)?.payload.length ?? 0;
      this.cache.delete(first.value);
    }
  }
}

/** A response that does not hold a whole record: a cut-short body, or a truncated segment. */
class ShortReadError extends CorruptionError {}

/** A verified record payload and its type (checked against what each reader expects). */
interface CachedRecord {
  type: number;
  payload: Uint8Array;
  /** Cached by read-ahead and not used yet. */
  readAhead?: boolean;
}

/** One read-ahead ranged GET: [off, end) of the segment; resolves to the records it completed. */
interface Window {
  off: number;
  end: number;
  parsed: Promise<Map<string, CachedRecord>>;
}

/** Read-ahead in one segment: windows requested from `start` up to `nextOff`, parsed up to `parsedTo`. */
interface Pipeline {
  start: number;
  nextOff: number;
  /** A record boundary: everything before it has been parsed. */
  parsedTo: number;
  /** Bytes from `parsedTo` to the end of the last window parsed (a record cut by that window's end). */
  carry: Uint8Array;
  /** Parsing happens in window order. */
  chain: Promise<void>;
  windows: Window[];
  /** Stopped: windows still in flight cache nothing. */
  dead: boolean;
}

/** The sequential detector's state for one segment. */
interface Stream {
  seg: number;
  /** Furthest byte read so far in the current run (a record end); -1 before the first read. */
  maxEnd: number;
  /** Reads in the current run that advanced it. */
  runReads: number;
  pipe: Pipeline | null;
  /** Read-ahead reached the end of the segment's records. */
  ended: boolean;
}

function newStream(seg: number): Stream {
  return { seg, maxEnd: -1, runReads: 0, pipe: null, ended: false };
}

function cacheKey(loc: Loc): string {
  return `${loc.seg}:${loc.off}:${loc.len}`;
}
