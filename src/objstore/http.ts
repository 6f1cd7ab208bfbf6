/**
 * HTTP plumbing shared by the remote backends (Swift, S3): bounded keep-alive pools, timeouts,
 * whole-body reads that refuse short data, a streaming (chunked) request, and the one place where
 * HTTP statuses and socket errors become StoreErrors.
 *
 * Invariants:
 * - A response body is returned only whole: a body shorter (or longer) than its Content-Length,
 *   or cut by a reset, is an 'unavailable' StoreError, never short data.
 * - Every error names the backend, method, host:port and what failed; the original error is the
 *   `cause`.
 * - At most `connections` sockets per origin; idle sockets are kept alive and reused.
 * - Nothing here retries: callers wrap idempotent requests in withRetry.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { Pool } from 'undici';
import { StoreError, type StoreErrorKind } from '../util/index.ts';
import type { ObjectInfo } from './types.ts';

export interface HttpTimeouts {
  /** TCP (+TLS) connect. */
  connectMs: number;
  /** From sending the request (or, for a stream, from its end) to the response headers. */
  headersMs: number;
  /** Longest pause between two pieces of a response body, or of a stalled request body. */
  bodyIdleMs: number;
}

export const defaultTimeouts: Readonly<HttpTimeouts> = { connectMs: 5_000, headersMs: 60_000, bodyIdleMs: 30_000 };

/** Retry policy for idempotent calls (passed to withRetry). */
export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** About 6 s of backoff in total before an error surfaces (50, 100, 200, ... capped, full jitter). */
export const defaultRetryPolicy: Readonly<RetryPolicy> = { attempts: 8, baseDelayMs: 50, maxDelayMs: 2_000 };

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** A 2xx body as the pieces that arrived, when the request asked for them (`body` is then empty). */
  chunks?: Buffer[];
  /** Hex MD5 of the body, when the request asked for it. */
  bodyMd5?: string;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** Absolute URL; its origin picks the pool. The path must already be percent-encoded. */
  url: URL;
  headers: Record<string, string>;
  /**
   * A buffer (sent with Content-Length), or a buffer sent in 1 MiB pieces that are fed to `hash`
   * as they go out (so hashing overlaps the upload instead of delaying it).
   */
  body?: Uint8Array | { bytes: Uint8Array; hash: Hash };
  /** MD5 the response body as it arrives (HttpResponse.bodyMd5). */
  md5Body?: boolean;
  /** Keep a 2xx body as the pieces that arrived (HttpResponse.chunks), not gathered into one buffer. */
  chunks?: boolean;
}

/** Who is talking, for error messages: "swift", "s3". */
export type BackendName = string;

/** A set of bounded keep-alive pools, one per origin. */
export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  private closed = false;
  constructor(
    readonly connections: number,
    readonly timeouts: HttpTimeouts,
  ) {
    if (!Number.isSafeInteger(connections) || connections < 1) throw new RangeError(`bad connection bound ${connections}`);
  }

  get(origin: string): Pool {
    if (this.closed) throw new StoreError('io', `store closed (request to ${origin})`);
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: this.connections,
        pipelining: 1,
        connect: { timeout: this.timeouts.connectMs },
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        // Idle sockets are dropped after 4 s: safe under load balancers with short keep-alive
        // timeouts (a streamed put on a socket the server just closed is not retried).
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 30_000,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

export function hostPort(url: URL): string {
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return `${url.hostname}:${port}`;
}

/** What kind of StoreError an HTTP status is (for statuses that are errors). */
export function statusKind(status: number): StoreErrorKind {
  if (status === 404) return 'not_found';
  if (status === 412) return 'precondition_failed';
  if (status === 401 || status === 403) return 'auth';
  if (status === 408 || status === 429 || status === 499) return 'unavailable';
  if (status === 501) return 'unsupported';
  if (status >= 500) return 'unavailable';
  if (status >= 400) return 'bad_request';
  return 'io';
}

const NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_CLOSED',
  'UND_ERR_INFO',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_INVALID_CONSTANT',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_EOF_STATE',
]);

function errCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** Turn a thrown socket / undici error into a StoreError naming the peer. */
export function networkError(backend: BackendName, method: string, url: URL, err: unknown, key?: string): StoreError {
  if (err instanceof StoreError) return err;
  let code = errCode(err);
  // undici wraps a refused or reset connection in a generic error with the errno in its cause.
  const inner = typeof err === 'object' && err !== null && 'cause' in err ? errCode(err.cause) : undefined;
  if (inner !== undefined && (code === undefined || code === 'UND_ERR_SOCKET')) code = inner;
  const msg = err instanceof Error ? err.message : String(err);
  const where = hostPort(url);
  let kind: StoreErrorKind;
  let what: string;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    kind = 'unavailable';
    what = `cannot reach ${where}`;
  } else if (code !== undefined && (NET_CODES.has(code) || code.startsWith('HPE_'))) {
    kind = 'unavailable';
    what = `connection to ${where} failed`;
  } else if (code !== undefined && (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('UNABLE_TO'))) {
    kind = 'io';
    what = `TLS with ${where} failed`;
  } else {
    kind = 'io';
    what = `request to ${where} failed`;
  }
  return new StoreError(kind, `${backend} ${method} ${url.pathname}: ${what} (${code ?? 'error'}: ${msg})`, {
    ...(key !== undefined ? { key } : {}),
    cause: err,
  });
}

/** A StoreError for an HTTP error status; `detail` is a short excerpt of the response body. */
export function statusError(backend: BackendName, method: string, url: URL, res: HttpResponse, key?: string, kind?: StoreErrorKind): StoreError {
  const detail = res.body.subarray(0, 300).toString('utf8').replace(/\s+/g, ' ').trim();
  return new StoreError(
    kind ?? statusKind(res.status),
    `${backend} ${method} ${hostPort(url)}${url.pathname}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`,
    { ...(key !== undefined ? { key } : {}), status: res.status },
  );
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** Read a whole response body; the length must match Content-Length when the server sent one. */
async function readBody(body: AsyncIterable<Buffer>, contentLength: number | undefined, hash?: Hash): Promise<Buffer> {
  if (contentLength !== undefined) {
    // Its own ArrayBuffer (not Node's shared pool): callers get it as a plain Uint8Array.
    const out = Buffer.allocUnsafeSlow(contentLength);
    let n = 0;
    for await (const chunk of body) {
      if (n + chunk.length > contentLength) throw new StoreError('unavailable', `response body longer than its Content-Length ${contentLength}`);
      chunk.copy(out, n);
      hash?.update(chunk);
      n += chunk.length;
    }
    if (n !== contentLength) throw new StoreError('unavailable', `response body truncated: ${n} of ${contentLength} bytes`);
    return out;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    hash?.update(chunk);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * A bodiless request whose 2xx answer is kept as the pieces that arrived, through undici's
 * dispatch handler: each piece is handed over by a plain callback, without the stream and
 * promise per piece that `request` costs (measured: about a third less CPU per GiB for ranged
 * GETs of 4 MiB). Pool timeouts apply as for `request`; errors reject as `request`'s do.
 */
function collect(pool: Pool, req: HttpRequest): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    let status = 0;
    let headers: Record<string, string> = {};
    let chunks: Buffer[] = [];
    let received = 0;
    pool.dispatch(
      { origin: req.url.origin, path: req.url.pathname + req.url.search, method: req.method, headers: req.headers },
      {
        onRequestStart() {},
        onResponseStart(_c, statusCode, h) {
          status = statusCode;
          headers = flatHeaders(h);
          chunks = [];
          received = 0;
        },
        onResponseData(_c, chunk) {
          chunks.push(chunk);
          received += chunk.length;
        },
        onResponseEnd() {
          if (status < 200 || status >= 300) {
            resolve({ status, headers, body: Buffer.concat(chunks, received) });
            return;
          }
          const length = parseLength(headers['content-length']);
          if (length !== undefined && received !== length) {
            reject(new StoreError('unavailable', `response body ${received > length ? 'longer than' : 'truncated below'} its Content-Length ${length} (${received} bytes)`));
            return;
          }
          resolve({ status, headers, body: Buffer.alloc(0), chunks });
        },
        onResponseError(_c, err) {
          reject(err);
        },
      },
    );
  });
}

function parseLength(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * One request, body read whole. HTTP error statuses are returned, not thrown (the caller knows
 * which are fine); socket errors, timeouts and short bodies throw an 'unavailable' StoreError.
 */
export async function send(pools: HttpPools, backend: BackendName, req: HttpRequest, key?: string): Promise<HttpResponse> {
  const pool = pools.get(req.url.origin);
  let sendBody: Uint8Array | Readable | null = null;
  const headersOut = req.headers;
  if (req.body instanceof Uint8Array) {
    sendBody = req.body;
  } else if (req.body !== undefined) {
    const { bytes, hash } = req.body;
    headersOut['content-length'] = String(bytes.length);
    sendBody = Readable.from(
      (function* pieces(): Generator<Uint8Array> {
        for (let off = 0; off < bytes.length; off += 1024 * 1024) {
          const piece = bytes.subarray(off, off + 1024 * 1024);
          hash.update(piece);
          yield piece;
        }
      })(),
      { objectMode: false },
    );
  }
  try {
    if (req.chunks === true && sendBody === null) return await collect(pool, req);
    const res = await pool.request({
      origin: req.url.origin,
      path: req.url.pathname + req.url.search,
      method: req.method,
      headers: headersOut,
      body: sendBody,
    });
    const headers = flatHeaders(res.headers);
    const length = req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304 ? 0 : parseLength(headers['content-length']);
    let body: Buffer;
    let bodyMd5: string | undefined;
    if (req.method === 'HEAD') {
      await res.body.dump();
      body = Buffer.alloc(0);
    } else {
      const hash = req.md5Body === true ? createHash('md5') : undefined;
      body = await readBody(res.body, length, hash);
      bodyMd5 = hash?.digest('hex');
    }
    return bodyMd5 !== undefined ? { status: res.statusCode, headers, body, bodyMd5 } : { status: res.statusCode, headers, body };
  } catch (err) {
    if (err instanceof StoreError && err.status === undefined && err.kind === 'unavailable') {
      throw new StoreError('unavailable', `${backend} ${req.method} ${hostPort(req.url)}${req.url.pathname}: ${err.message}`, {
        ...(key !== undefined ? { key } : {}),
        cause: err,
      });
    }
    throw networkError(backend, req.method, req.url, err, key);
  }
}

/**
 * A request whose body is written piece by piece (Transfer-Encoding: chunked). `write` copies the
 * chunk and resolves once it is queued under the high-water mark, so the caller may reuse its
 * buffer; `end` finishes the body and resolves with the response; `abort` cuts the connection so
 * the server discards what it got. If the server answers early (say 412 before the body is
 * done), pending and later writes reject with that answer's error via `onEarly`.
 */
export class StreamingRequest {
  private readonly body: PassThrough;
  private readonly controller = new AbortController();
  private readonly response: Promise<HttpResponse>;
  private settled: { ok: true; res: HttpResponse } | { ok: false; err: unknown } | undefined;
  private ended = false;
  private aborted = false;
  private headersTimer: NodeJS.Timeout | undefined;
  bytesWritten = 0;

  constructor(
    private readonly pools: HttpPools,
    private readonly backend: BackendName,
    private readonly req: Omit<HttpRequest, 'body'>,
    private readonly key: string | undefined,
    highWaterMarkBytes = 1024 * 1024,
  ) {
    const bodyStream = new PassThrough({ highWaterMark: highWaterMarkBytes });
    this.body = bodyStream;
    // undici destroys the body when the request fails; a write racing that must not become an
    // unhandled 'error' event (the failure surfaces through the response promise instead).
    bodyStream.on('error', () => undefined);
    const pool = pools.get(req.url.origin);
    this.response = (async (): Promise<HttpResponse> => {
      try {
        const res = await pool.request({
          origin: req.url.origin,
          path: req.url.pathname + req.url.search,
          method: req.method,
          headers: req.headers,
          body: bodyStream,
          signal: this.controller.signal,
          // The headers timer would otherwise run from the first byte while the caller is still
          // filling the segment; `end` arms our own timer instead.
          headersTimeout: 0,
        });
        const headers = flatHeaders(res.headers);
        const body = await readBody(res.body, res.statusCode === 204 ? 0 : parseLength(headers['content-length']));
        return { status: res.statusCode, headers, body };
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw networkError(backend, req.method, req.url, this.aborted ? new Error('aborted') : err, key);
      } finally {
        if (this.headersTimer !== undefined) clearTimeout(this.headersTimer);
      }
    })();
    this.response.then(
      (res) => {
        this.settled = { ok: true, res };
      },
      (err: unknown) => {
        this.settled = { ok: false, err };
      },
    );
  }

  /** The response arrived (or failed) before `end`: what `write` should throw. */
  private earlyError(): unknown {
    const s = this.settled;
    if (s === undefined) return undefined;
    if (!s.ok) return s.err;
    return statusError(this.backend, this.req.method, this.req.url, s.res, this.key, s.res.status < 400 ? 'io' : undefined);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.ended || this.aborted) throw new StoreError('bad_request', 'write after close or abort', this.keyOpt());
    const early = this.earlyError();
    if (early !== undefined) throw early;
    if (chunk.length === 0) return;
    this.bytesWritten += chunk.length;
    if (this.body.write(Buffer.from(chunk))) return;
    // Backpressure: wait for the socket to take it, the response to arrive, or the idle timeout.
    const idleMs = this.pools.timeouts.bodyIdleMs;
    let timer: NodeJS.Timeout | undefined;
    let onDrain: (() => void) | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          onDrain = resolve;
          this.body.once('drain', resolve);
        }),
        this.response.then(
          () => undefined,
          () => undefined,
        ),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => {
            reject(new StoreError('unavailable', `${this.backend} ${this.req.method} ${hostPort(this.req.url)}: request body stalled for ${idleMs} ms`, this.keyOpt()));
          }, idleMs);
        }),
      ]);
    } catch (err) {
      this.abortNow();
      throw err;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (onDrain !== undefined) this.body.off('drain', onDrain);
    }
    const late = this.earlyError();
    if (late !== undefined) throw late;
  }

  /** Finish the body; resolves with the server's response (any status). */
  async end(): Promise<HttpResponse> {
    if (this.aborted) throw new StoreError('bad_request', 'close after abort', this.keyOpt());
    if (!this.ended) {
      this.ended = true;
      this.body.end();
      const ms = this.pools.timeouts.headersMs;
      this.headersTimer = setTimeout(() => {
        this.aborted = true;
        this.controller.abort(new StoreError('unavailable', `${this.backend} ${this.req.method} ${hostPort(this.req.url)}: no response ${ms} ms after the body`, this.keyOpt()));
      }, ms);
    }
    return this.response;
  }

  abortNow(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.controller.abort();
    this.body.destroy();
  }

  /** Cut the request; resolves once the request is gone (its outcome is ignored). */
  async abort(): Promise<void> {
    const wasSettled = this.settled !== undefined;
    this.abortNow();
    if (!wasSettled) await this.response.then(
      () => undefined,
      () => undefined,
    );
  }

  private keyOpt(): { key?: string } {
    return this.key !== undefined ? { key: this.key } : {};
  }
}

/** A plain Uint8Array view of a Buffer (what ObjectStore.get returns; no copy). */
export function plainBytes(b: Buffer | Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** Percent-encode an object key for a URL path, keeping '/' (RFC 3986 unreserved stay as is). */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** Checks every remote backend shares: a non-empty, well-formed key without a leading slash. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new StoreError('bad_request', 'empty object key');
  if (/\p{Cs}/u.test(key)) throw new StoreError('bad_request', 'object key is not valid Unicode', { key });
  if (Buffer.byteLength(key, 'utf8') > 1024) throw new StoreError('bad_request', 'object key longer than 1024 bytes', { key });
}

export function checkRange(key: string, range: { offset: number; length: number } | undefined): void {
  if (range === undefined) return;
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new StoreError('bad_request', `bad range offset=${offset} length=${length}`, { key });
  }
}

export function checkLimit(limit: number | undefined): number {
  const n = limit ?? 1000;
  if (!Number.isSafeInteger(n) || n < 1) throw new StoreError('bad_request', `bad list limit ${n}`);
  return n;
}

/** Strip quotes (and a W/ prefix) from an ETag header value. */
export function unquoteEtag(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Parse "bytes START-END/TOTAL" of a 206 response. */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = v !== undefined ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim()) : null;
  if (m === null) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/**
 * Turn a GET answer to a Range request into exactly the requested bytes: 206 checked against
 * Content-Range, 200 (server ignored the range) sliced, anything else is the caller's business.
 */
export function rangeBody(backend: BackendName, url: URL, res: HttpResponse, offset: number, length: number, key: string): Uint8Array {
  if (res.status === 200) return plainBytes(res.body.subarray(Math.min(offset, res.body.length), Math.min(res.body.length, offset + length)));
  checkContentRange(backend, url, res, offset, length, key, res.body.length);
  return plainBytes(res.body);
}

/** rangeBody for a response kept as pieces (HttpRequest.chunks): the same checks, no gathering. */
export function rangeChunks(backend: BackendName, url: URL, res: HttpResponse, offset: number, length: number, key: string): Uint8Array[] {
  const chunks = res.chunks ?? [res.body];
  const received = chunks.reduce((n, c) => n + c.length, 0);
  if (res.status === 200) return sliceChunks(chunks, Math.min(offset, received), Math.min(received, offset + length));
  checkContentRange(backend, url, res, offset, length, key, received);
  return chunks.map(plainBytes);
}

/** Bytes [from, to) of the concatenation of `chunks`, as views. */
export function sliceChunks(chunks: readonly Uint8Array[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const c of chunks) {
    const a = Math.max(from, pos);
    const b = Math.min(to, pos + c.length);
    if (a < b) out.push(plainBytes(c.subarray(a - pos, b - pos)));
    pos += c.length;
    if (pos >= to) break;
  }
  return out;
}

function checkContentRange(backend: BackendName, url: URL, res: HttpResponse, offset: number, length: number, key: string, received: number): void {
  const cr = parseContentRange(res.headers['content-range']);
  if (cr === undefined || cr.start !== offset || cr.end - cr.start + 1 !== received) {
    throw new StoreError('unavailable', `${backend} GET ${hostPort(url)}${url.pathname}: Content-Range ${res.headers['content-range'] ?? '(none)'} does not match the ${received} bytes received for offset ${offset}`, { key });
  }
  if (cr.total !== undefined && cr.end !== Math.min(cr.total, offset + length) - 1) {
    throw new StoreError('unavailable', `${backend} GET ${hostPort(url)}${url.pathname}: Content-Range ${res.headers['content-range'] ?? ''} is short of the requested ${offset}+${length}`, { key });
  }
  if (received > length) throw new StoreError('io', `${backend} GET ${hostPort(url)}: server sent ${received} bytes for a range of ${length}`, { key });
}

/**
 * A whole-object GET whose body is not the MD5 its ETag names was damaged on the way: retryable.
 * Only plain objects are checked (multipart and large-object manifests carry non-MD5 ETags).
 */
export function checkBodyMd5(backend: BackendName, url: URL, res: HttpResponse, key: string): void {
  const etag = unquoteEtag(res.headers['etag']);
  if (etag === undefined || !/^[0-9a-f]{32}$/.test(etag)) return;
  if (res.headers['x-static-large-object'] !== undefined || res.headers['x-object-manifest'] !== undefined) return;
  const got = res.bodyMd5 ?? createHash('md5').update(res.body).digest('hex');
  if (got !== etag) throw new StoreError('unavailable', `${backend} GET ${hostPort(url)}${url.pathname}: body MD5 ${got} is not its ETag ${etag}`, { key });
}

/** The ObjectInfo a HEAD answer describes (size from Content-Length, ETag unquoted). */
export function objectInfoFromHead(backend: BackendName, url: URL, res: HttpResponse, key: string): ObjectInfo {
  const size = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('io', `${backend} HEAD ${hostPort(url)}: bad Content-Length`, { key });
  const etag = unquoteEtag(res.headers['etag']);
  return etag !== undefined ? { key, size, etag } : { key, size };
}
