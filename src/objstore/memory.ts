import { createHash } from 'node:crypto';
import { StoreError } from '../util/index.ts';
import type {
  ByteRange,
  ChunkedPut,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreCapabilities,
} from './types.ts';

/**
 * Order keys by the bytes of their UTF-8 encoding, which is the order Swift (sqlite BINARY
 * collation) and S3 list in. JavaScript's `<` compares UTF-16 code units instead, and the two
 * disagree when a character above U+FFFF (a surrogate pair) meets one in U+E000..U+FFFF.
 * Code-point order equals UTF-8 byte order, so only that case needs care.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate starts a code point >= U+10000, above every BMP character.
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Checks every backend shares: a key is non-empty, well-formed UTF-16 (so it has a UTF-8 form). */
export function checkKeyCommon(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new StoreError('bad_request', 'empty object key');
  // In a /u regex a surrogate pair is one code point, so \p{Cs} matches only lone surrogates.
  if (/\p{Cs}/u.test(key)) throw new StoreError('bad_request', 'object key is not valid Unicode', { key });
}

/** Validate a range and clip it to an object of `size` bytes, HTTP-style: [start, end). */
export function clipRange(key: string, size: number, range: ByteRange | undefined): [number, number] {
  if (range === undefined) return [0, size];
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new StoreError('bad_request', `bad range offset=${offset} length=${length}`, { key });
  }
  const start = Math.min(offset, size);
  return [start, Math.min(size, start + length)];
}

/** Validate a list page size (default 1000). */
export function pageLimit(options: ListOptions | undefined): number {
  const limit = options?.limit ?? 1000;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreError('bad_request', `bad list limit ${limit}`);
  return limit;
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

interface StoredObject {
  /** Never handed out: callers get copies, so nothing outside can mutate a stored object. */
  readonly data: Uint8Array;
  readonly etag: string;
}

/** Operation counters, for tests that assert how much traffic a layer generates. */
export interface MemoryStoreStats {
  puts: number;
  gets: number;
  heads: number;
  deletes: number;
  lists: number;
  bytesPut: number;
  bytesGot: number;
}

function zeroStats(): MemoryStoreStats {
  return { puts: 0, gets: 0, heads: 0, deletes: 0, lists: 0, bytesPut: 0, bytesGot: 0 };
}

/**
 * An ObjectStore in a Map, byte-exact, for tests and simulations. Every mutation is applied
 * synchronously inside the call, so a put is atomic: a concurrent reader sees the old state or the
 * new one, never part of it. Bytes are copied in and out, so callers may reuse their buffers.
 * `close()` keeps the contents: a named store reopened through `memory:NAME` finds them again.
 */
export class MemoryStore implements ObjectStore {
  readonly capabilities: StoreCapabilities;
  /** Counters since construction (or the last `resetStats()`). */
  readonly stats: MemoryStoreStats = zeroStats();
  private readonly objects = new Map<string, StoredObject>();
  /** Keys in compareKeys order, kept sorted so listing is a binary search and a slice. */
  private readonly sorted: string[] = [];

  constructor(name = 'anonymous') {
    this.capabilities = { conditionalCreate: true, description: `memory store ${name}` };
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKeyCommon(key);
    const before = options?.beforeAttempt; // called as a plain function, as every backend calls it
    before?.();
    return this.commit(key, new Uint8Array(data), options);
  }

  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    checkKeyCommon(key);
    // Fail fast so a caller does not stream a whole segment into a doomed put; close() re-checks,
    // and that check is the atomic one.
    if (options?.ifNoneMatch && this.objects.has(key)) throw preconditionFailed(key);
    const chunks: Uint8Array[] = [];
    let state: 'open' | 'closed' | 'aborted' = 'open';
    const requireOpen = (what: string): void => {
      if (state !== 'open') throw new StoreError('bad_request', `${what} on a ${state} stream`, { key });
    };
    return {
      write: async (chunk) => {
        requireOpen('write');
        chunks.push(new Uint8Array(chunk));
      },
      close: async () => {
        requireOpen('close');
        state = 'closed';
        return this.commit(key, concat(chunks), options);
      },
      abort: async () => {
        if (state === 'open') state = 'aborted';
        chunks.length = 0;
      },
    };
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    checkKeyCommon(key);
    this.stats.gets++;
    const obj = this.objects.get(key);
    if (obj === undefined) throw new StoreError('not_found', `no object ${key}`, { key });
    const [start, end] = clipRange(key, obj.data.length, range);
    this.stats.bytesGot += end - start;
    return obj.data.slice(start, end);
  }

  async getv(key: string, range?: ByteRange): Promise<Uint8Array[]> {
    const b = await this.get(key, range);
    return b.length > 0 ? [b] : [];
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKeyCommon(key);
    this.stats.heads++;
    const obj = this.objects.get(key);
    return obj === undefined ? null : { key, size: obj.data.length, etag: obj.etag };
  }

  async delete(key: string): Promise<void> {
    checkKeyCommon(key);
    this.stats.deletes++;
    if (!this.objects.delete(key)) return;
    const i = this.lowerBound(key);
    this.sorted.splice(i, 1);
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const limit = pageLimit(options);
    this.stats.lists++;
    const after = options?.after;
    let i = this.lowerBound(after !== undefined && compareKeys(after, prefix) >= 0 ? after : prefix);
    if (after !== undefined && this.sorted[i] === after) i++;
    const objects: ObjectInfo[] = [];
    for (; i < this.sorted.length && objects.length < limit; i++) {
      const key = this.sorted[i] as string;
      if (!key.startsWith(prefix)) break;
      const obj = this.objects.get(key) as StoredObject;
      objects.push({ key, size: obj.data.length, etag: obj.etag });
    }
    const last = objects[objects.length - 1];
    const more = last !== undefined && i < this.sorted.length && (this.sorted[i] as string).startsWith(prefix);
    return more ? { objects, next: last.key } : { objects };
  }

  async close(): Promise<void> {}

  /** Every key, in listing order. */
  keys(): string[] {
    return [...this.sorted];
  }

  /** A copy of the contents, e.g. the "disk" a crash test restarts from. */
  snapshot(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const key of this.sorted) out.set(key, (this.objects.get(key) as StoredObject).data.slice());
    return out;
  }

  /** A new store with the same contents and fresh counters. */
  clone(name = 'clone'): MemoryStore {
    const copy = new MemoryStore(name);
    // Stored arrays are never mutated or handed out, so the copy may share them.
    for (const key of this.sorted) copy.insert(key, this.objects.get(key) as StoredObject);
    return copy;
  }

  resetStats(): void {
    Object.assign(this.stats, zeroStats());
  }

  /** Install an object; synchronous, which is what makes put and close atomic. */
  private commit(key: string, data: Uint8Array, options: PutOptions | undefined): ObjectInfo {
    if (options?.ifNoneMatch && this.objects.has(key)) throw preconditionFailed(key);
    const etag = md5Hex(data);
    this.insert(key, { data, etag });
    this.stats.puts++;
    this.stats.bytesPut += data.length;
    return { key, size: data.length, etag };
  }

  private insert(key: string, obj: StoredObject): void {
    if (!this.objects.has(key)) this.sorted.splice(this.lowerBound(key), 0, key);
    this.objects.set(key, obj);
  }

  /** Index of the first key >= `key`. */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.sorted[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function preconditionFailed(key: string): StoreError {
  return new StoreError('precondition_failed', `object ${key} already exists`, { key, status: 412 });
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}
