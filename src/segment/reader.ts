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
  segmentKey,
  type SummaryEntry,
} from './format.ts';
import type { LogSegmentWriter } from './writer.ts';

export interface SegmentReaderOptions {
  store: ObjectStore;
  volumePrefix: string;
  /** Upper bound on cached record payload bytes. */
  cacheBytesMax: number;
  /** Size of one ranged GET when reads look sequential. */
  readAheadBytes: number;
}

/**
 * Reads records by location: from memory while their segment is open or not yet durable, else by
 * ranged GET. Every record is checksum-verified before it is returned or cached. Sequential reads
 * fetch `readAheadBytes` at a time and cache every whole record in the window; the cache is an
 * LRU bounded in bytes.
 */
export class SegmentReader {
  private readonly cache = new Map<string, CachedRecord>();
  private cacheBytes = 0;
  private readonly lastEnd = new Map<number, number>();
  private readonly inflight = new Map<string, Promise<Map<string, CachedRecord>>>();
  readonly counters = { gets: 0, bytesFetched: 0, cacheHits: 0, cacheMisses: 0 };

  constructor(
    private readonly opts: SegmentReaderOptions,
    private readonly writer: LogSegmentWriter | null,
  ) {}

  /** A verified record payload. `expectType` guards against a stray location. */
  async read(loc: Loc, expectType: RecordType): Promise<Uint8Array> {
    const mem = this.writer?.readInMemory(loc);
    // Copy: the segment's buffer is recycled once it is durable, which may happen before the
    // caller's continuation runs.
    if (mem) return Uint8Array.from(decodeRecord(mem, this.what(loc), expectType).payload);
    const ck = cacheKey(loc);
    const hit = this.cache.get(ck);
    if (hit && hit.type === expectType) {
      this.cache.delete(ck);
      this.cache.set(ck, hit);
      this.counters.cacheHits++;
      metrics.cacheHits.inc();
      this.maybePrefetch(loc);
      return hit.payload;
    }
    this.counters.cacheMisses++;
    metrics.cacheMisses.inc();
    const sequential = this.lastEnd.get(loc.seg) === loc.off;
    const window = sequential ? Math.max(loc.len, this.opts.readAheadBytes) : loc.len;
    // Take the record from the window itself: the cache may already have evicted it (a window
    // larger than the cache, or concurrent windows) before this continuation runs.
    const got = (await this.fetchRetryingShort(loc.seg, loc.off, window)).get(ck) ?? this.cache.get(ck);
    if (!got) throw new CorruptionError(`${this.what(loc)}: no record at this location`, { offset: loc.off });
    if (got.type !== expectType) {
      throw new CorruptionError(`${this.what(loc)}: expected record type ${expectType}, found ${got.type}`, { offset: loc.off });
    }
    this.maybePrefetch(loc);
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
   * record, and a whole read-ahead window when the run continues the previous one. Errors are
   * left to the individual reads that follow.
   */
  async prefetchMany(locs: readonly Loc[]): Promise<void> {
    const bySeg = new Map<number, Loc[]>();
    for (const l of locs) {
      if (this.cache.has(cacheKey(l)) || this.writer?.isInMemory(l.seg)) continue;
      const list = bySeg.get(l.seg);
      if (list) list.push(l);
      else bySeg.set(l.seg, [l]);
    }
    const gap = 64 * 1024;
    const fetches: Promise<unknown>[] = [];
    for (const [seg, ls] of bySeg) {
      if (ls.length < 2 && this.lastEnd.get(seg) !== ls[0]!.off) continue; // a lone record: read() fetches it
      ls.sort((a, b) => a.off - b.off);
      let start = ls[0]!.off;
      let end = start + ls[0]!.len;
      const flush = (): void => {
        const len = this.lastEnd.get(seg) === start ? Math.max(end - start, this.opts.readAheadBytes) : end - start;
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
    this.lastEnd.delete(seg);
  }

  private what(loc: Loc): string {
    return `${segmentKey(this.opts.volumePrefix, loc.seg)}@${loc.off}+${loc.len}`;
  }

  private maybePrefetch(loc: Loc): void {
    const end = loc.off + loc.len;
    this.lastEnd.set(loc.seg, end);
    // Prefetch the next window once a read reaches the last record we hold for this run.
    if (this.opts.readAheadBytes <= 0) return;
    const nextProbe = `${loc.seg}:${end}:`;
    for (const k of this.cache.keys()) if (k.startsWith(nextProbe)) return;
    if (this.writer?.isInMemory(loc.seg)) return;
    this.fetchWindow(loc.seg, end, this.opts.readAheadBytes).catch(() => {});
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
}

function cacheKey(loc: Loc): string {
  return `${loc.seg}:${loc.off}:${loc.len}`;
}
