/**
 * The object-store contract every backend implements (DESIGN.md section 2).
 *
 * Keys are UTF-8 strings without a leading slash ("vol/log/0000000000000001"). Objects are
 * write-once in practice: Silt never rewrites a key it has referenced, so a repeated put of the
 * same key with the same bytes is idempotent and safe to retry.
 */

export interface ByteRange {
  /** First byte. */
  offset: number;
  /** Number of bytes; a range past the end is cut at the end (like HTTP Range). */
  length: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Backend's entity tag if it has one (MD5 hex for Swift/S3 single-part objects). */
  etag?: string;
}

export interface PutOptions {
  /**
   * Conditional create (If-None-Match: *): fail with StoreError kind 'precondition_failed' if the key
   * already exists. Backends whose `capabilities.conditionalCreate` is false throw kind
   * 'unsupported' rather than silently overwriting.
   */
  ifNoneMatch?: boolean;
  /**
   * Swift: after a conditional create answered 201, read the object back (HEAD, X-Newest) to catch
   * a racing create that also got 201 (Swift checks If-None-Match when a PUT starts, not when it
   * lands). Default true. A writer whose owner lease rules out racing writers passes false.
   */
  verifyCreate?: boolean;
  /**
   * Called before each attempt (retries included) of a put of a whole buffer; throwing stops it.
   * An owner uses it to never start writing once it cannot be sure it still owns the volume.
   */
  beforeAttempt?: () => void;
}

export interface ListOptions {
  /** Only keys strictly greater than this (marker paging). */
  after?: string;
  /** Page size; backends may return fewer. Default 1000. */
  limit?: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Present when more keys may follow: pass as `after` to get the next page. */
  next?: string;
}

/**
 * A streaming PUT (Swift chunked transfer, S3 multipart, local temp file). The object becomes
 * visible, atomically and whole, only when `close()` resolves; after `abort()` or a failed close
 * it does not exist (or an earlier version stays). A consumed stream cannot be retried: callers
 * that need retries keep the bytes and fall back to `put`.
 */
export interface ChunkedPut {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<ObjectInfo>;
  abort(): Promise<void>;
}

export interface StoreCapabilities {
  /** put(..., {ifNoneMatch: true}) is atomic on this store. */
  conditionalCreate: boolean;
  /** A short human description ("local directory /srv/silt", "swift http://..."). */
  description: string;
}

export interface ObjectStore {
  readonly capabilities: StoreCapabilities;
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo>;
  putStream(key: string, options?: PutOptions): Promise<ChunkedPut>;
  /** Whole object or a byte range. Throws StoreError kind 'not_found' when the key is absent. */
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /**
   * The same bytes as `get`, as a list of pieces in order, without gathering them into one
   * buffer: what bulk readers (the segment reader's windows) use. Large fresh buffers cost a page
   * fault per 4 KiB on first touch; pieces of the size the socket or file delivers them do not.
   * Never an empty piece (an empty range is an empty list). Optional: callers fall back to `get`.
   */
  getv?(key: string, range?: ByteRange): Promise<Uint8Array[]>;
  /** Object metadata, or null when the key is absent. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Delete; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys with this prefix in ascending byte order, one page at a time. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Release connections, timers, file handles. */
  close(): Promise<void>;
}

/** Iterate every object under a prefix, page by page. */
export async function* listAll(store: ObjectStore, prefix: string, pageSize = 1000): AsyncGenerator<ObjectInfo> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list(prefix, after !== undefined ? { after, limit: pageSize } : { limit: pageSize });
    for (const o of page.objects) yield o;
    // A store may return an empty page that still has a marker (Swift and S3 can): follow it,
    // but stop if the marker does not advance, so a misbehaving store cannot loop us forever.
    if (page.next === undefined || page.next === after) return;
    after = page.next;
  }
}
