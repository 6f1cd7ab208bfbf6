/**
 * OpenStack Swift backend: `swift+http://HOST:PORT/auth/v1.0[?container=NAME]` (and swift+https).
 *
 * - Auth: v1 (tempauth, swauth, most Swift deployments' /auth/v1.0): X-Auth-User / X-Auth-Key in,
 *   X-Storage-Url / X-Auth-Token out. The token is reused until the cluster answers 401; then the
 *   store authenticates again (one request at a time does it) and repeats the call once.
 * - Objects live in one container (default `silt`), created when the store opens.
 * - put(buffer) sends Content-Length and ETag (MD5): Swift refuses a body that arrived damaged
 *   (422) and the ETag it answers is checked too. It is idempotent and retried.
 * - putStream is one chunked PUT (Transfer-Encoding: chunked). It is NOT retried: a consumed
 *   stream cannot be replayed; a failed close() means the caller re-puts from the buffer it
 *   still holds. The MD5 of what was sent is compared with the ETag Swift answers.
 * - ifNoneMatch sends `If-None-Match: *`; Swift answers 412 when the object exists. Swift checks
 *   for an existing object when a PUT starts, not when it commits, so creates that run at the
 *   same time can all get 201 (measured: 8 of 8 concurrent creates "won"; the newest timestamp
 *   is what stays). The store therefore reads the object back (HEAD, X-Newest) after a 201 and
 *   reports 'precondition_failed' when another writer's bytes are there, unless the caller says
 *   racing writers are ruled out otherwise (verifyCreate: false: an owner holding its lease). What
 *   is left is a window as long as one racing PUT: a create that started before ours committed
 *   and commits after our read-back. conditionalCreate is true; docs/STORES.md spells the window out.
 * - Retries (idempotent calls only): 5xx, 408, 429, resets, timeouts, short bodies; capped
 *   exponential backoff with full jitter.
 */
import { createHash } from 'node:crypto';
import { StoreError, countStoreRetry, nullLogger, type Logger } from '../util/index.ts';
import type { ByteRange, ChunkedPut, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoreCapabilities } from './types.ts';
import { withRetry } from './retry.ts';
import {
  HttpPools,
  StreamingRequest,
  checkBodyMd5,
  checkKey,
  checkLimit,
  checkRange,
  defaultRetryPolicy,
  defaultTimeouts,
  encodeKeyPath,
  hostPort,
  objectInfoFromHead,
  plainBytes,
  rangeBody,
  rangeChunks,
  send,
  statusError,
  unquoteEtag,
  type HttpRequest,
  type HttpResponse,
  type HttpTimeouts,
  type RetryPolicy,
} from './http.ts';

export interface SwiftStoreOptions {
  /** The v1 auth endpoint, http(s)://HOST:PORT/auth/v1.0. */
  authUrl: string;
  /** "account:user" (tempauth). */
  user: string;
  key: string;
  /** Default "silt". */
  container?: string;
  /** Sockets per origin (default 16). */
  connections?: number;
  timeouts?: Partial<HttpTimeouts>;
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  /** Check the MD5 of every whole-object GET against its ETag (default true). */
  verifyReads?: boolean;
  /**
   * Talk to the storage URL through the auth URL's scheme, host and port, whatever host the
   * cluster put in X-Storage-Url (for clusters behind a proxy that advertise an internal name).
   * Default false.
   */
  storageViaAuthHost?: boolean;
}

/** Counters, for tests and diagnostics. */
export interface SwiftStoreStats {
  requests: number;
  retries: number;
  auths: number;
}

const BACKEND = 'swift';
const LIST_LIMIT_MAX = 10_000;
/** Puts at least this large hash while sending instead of before. */
const HASH_WHILE_SENDING_BYTES = 1024 * 1024;

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * Parse a store URL into options. Credentials: the URL's user info (`swift+http://USER:KEY@...`,
 * percent-encoded) or else SILT_SWIFT_USER / SILT_SWIFT_KEY from `env`. Query: `container`.
 */
export function parseSwiftUrl(storeUrl: string, env: Record<string, string | undefined> = process.env): SwiftStoreOptions {
  const m = /^swift\+(https?):\/\//.exec(storeUrl);
  if (m === null) throw new StoreError('bad_request', `not a swift store URL: ${storeUrl} (want swift+http://HOST:PORT/auth/v1.0)`);
  const u = new URL(storeUrl.slice('swift+'.length));
  const user = u.username !== '' ? decodeURIComponent(u.username) : env['SILT_SWIFT_USER'];
  const key = u.password !== '' ? decodeURIComponent(u.password) : env['SILT_SWIFT_KEY'];
  if (user === undefined || user === '' || key === undefined) {
    throw new StoreError('auth', `no Swift credentials for ${u.host}: set SILT_SWIFT_USER and SILT_SWIFT_KEY (or put USER:KEY@ in the URL)`);
  }
  const container = u.searchParams.get('container') ?? 'silt';
  u.username = '';
  u.password = '';
  u.search = '';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/auth/v1.0';
  return { authUrl: u.toString(), user, key, container };
}

export class SwiftStore implements ObjectStore {
  readonly capabilities: StoreCapabilities;
  readonly stats: SwiftStoreStats = { requests: 0, retries: 0, auths: 0 };
  readonly container: string;
  private readonly authUrl: URL;
  private readonly pools: HttpPools;
  private readonly retryPolicy: RetryPolicy;
  private readonly log: Logger;
  private readonly verifyReads: boolean;
  private token: string | undefined;
  private storageUrl: URL | undefined;
  private authing: Promise<void> | undefined;

  private constructor(private readonly opts: SwiftStoreOptions) {
    this.authUrl = new URL(opts.authUrl);
    if (this.authUrl.protocol !== 'http:' && this.authUrl.protocol !== 'https:') {
      throw new StoreError('bad_request', `swift auth URL must be http(s): ${opts.authUrl}`);
    }
    this.container = opts.container ?? 'silt';
    if (this.container === '' || this.container.includes('/') || Buffer.byteLength(this.container) > 256) {
      throw new StoreError('bad_request', `bad swift container name "${this.container}"`);
    }
    this.pools = new HttpPools(opts.connections ?? 16, { ...defaultTimeouts, ...opts.timeouts });
    this.retryPolicy = { ...defaultRetryPolicy, ...opts.retry };
    this.log = opts.logger ?? nullLogger;
    this.verifyReads = opts.verifyReads ?? true;
    this.capabilities = {
      conditionalCreate: true,
      description: `swift ${this.authUrl.origin}${this.authUrl.pathname} container ${this.container}`,
    };
  }

  /** Authenticate and create the container (idempotent). */
  static async open(opts: SwiftStoreOptions): Promise<SwiftStore> {
    const store = new SwiftStore(opts);
    try {
      await store.retrying('PUT container', () => store.ensureContainer());
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** Open from a store URL (see parseSwiftUrl); `options` override what the URL says. */
  static async fromUrl(storeUrl: string, options?: Partial<SwiftStoreOptions>): Promise<SwiftStore> {
    return SwiftStore.open({ ...parseSwiftUrl(storeUrl), ...options });
  }

  /** Tests only: replace the cached token (e.g. with a stale one) to exercise re-authentication. */
  replaceTokenForTest(token: string): void {
    this.token = token;
  }

  // ------------------------------------------------------------------ auth

  private async authenticate(): Promise<void> {
    const url = this.authUrl;
    this.stats.auths++;
    this.stats.requests++;
    const res = await send(this.pools, BACKEND, {
      method: 'GET',
      url,
      headers: { 'x-auth-user': this.opts.user, 'x-auth-key': this.opts.key },
    });
    if (res.status === 401 || res.status === 403) {
      throw new StoreError('auth', `swift auth at ${hostPort(url)}${url.pathname} refused user "${this.opts.user}" (HTTP ${res.status})`, { status: res.status });
    }
    if (res.status >= 300) throw statusError(BACKEND, 'GET', url, res);
    const token = res.headers['x-auth-token'] ?? res.headers['x-storage-token'];
    const storage = res.headers['x-storage-url'];
    if (token === undefined || storage === undefined) {
      throw new StoreError('io', `swift auth at ${hostPort(url)} answered ${res.status} without X-Auth-Token / X-Storage-Url`);
    }
    let su: URL;
    try {
      su = new URL(storage);
    } catch (err) {
      throw new StoreError('io', `swift auth at ${hostPort(url)} answered a bad X-Storage-Url "${storage}"`, { cause: err });
    }
    if (this.opts.storageViaAuthHost === true) {
      su.protocol = url.protocol;
      su.host = url.host;
    }
    this.token = token;
    this.storageUrl = su;
    this.log.debug('swift: authenticated', { storageUrl: su.toString(), user: this.opts.user });
  }

  /** Authenticate unless a token newer than `stale` is already there; one auth at a time. */
  private async refreshAuth(stale: string | undefined): Promise<void> {
    if (this.token !== undefined && this.token !== stale) return;
    if (this.authing === undefined) {
      this.authing = this.authenticate().finally(() => {
        this.authing = undefined;
      });
    }
    await this.authing;
  }

  private objectUrl(key: string | undefined, query?: Record<string, string>): URL {
    const base = this.storageUrl;
    if (base === undefined) throw new StoreError('io', 'swift: not authenticated');
    const u = new URL(base.toString());
    u.pathname = `${base.pathname.replace(/\/$/, '')}/${encodeURIComponent(this.container)}${key !== undefined ? `/${encodeKeyPath(key)}` : ''}`;
    if (query !== undefined) {
      // URLSearchParams encodes a space as '+', which Swift reads as a space too.
      const q = new URLSearchParams(query).toString().replace(/\+/g, '%20');
      u.search = q === '' ? '' : `?${q}`;
    }
    return u;
  }

  /**
   * One authenticated request against the container or an object, with a single re-auth and
   * repeat on 401 (token expired or revoked).
   */
  private async call(
    method: HttpRequest['method'],
    key: string | undefined,
    init: { headers?: Record<string, string>; body?: HttpRequest['body']; query?: Record<string, string>; md5Body?: boolean; chunks?: boolean } = {},
  ): Promise<{ res: HttpResponse; url: URL }> {
    for (let attempt = 0; ; attempt++) {
      if (this.token === undefined) await this.refreshAuth(undefined);
      const token = this.token as string;
      const url = this.objectUrl(key, init.query);
      this.stats.requests++;
      const res = await send(
        this.pools,
        BACKEND,
        {
          method,
          url,
          headers: { ...init.headers, 'x-auth-token': token },
          ...(init.body !== undefined ? { body: init.body } : {}),
          ...(init.md5Body === true ? { md5Body: true } : {}),
          ...(init.chunks === true ? { chunks: true } : {}),
        },
        key,
      );
      if (res.status === 401 && attempt === 0) {
        this.log.info('swift: token refused, authenticating again', { host: hostPort(url) });
        await this.refreshAuth(token);
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        throw new StoreError('auth', `swift ${method} ${hostPort(url)}${url.pathname}: HTTP ${res.status} for user "${this.opts.user}"`, {
          status: res.status,
          ...(key !== undefined ? { key } : {}),
        });
      }
      return { res, url };
    }
  }

  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      ...this.retryPolicy,
      onRetry: (err: unknown) => {
        this.stats.retries++;
        countStoreRetry(what);
        this.log.debug(`swift: retrying ${what}`, { error: err instanceof Error ? err.message : String(err) });
      },
    });
  }

  private async ensureContainer(): Promise<void> {
    const { res, url } = await this.call('PUT', undefined);
    if (res.status !== 201 && res.status !== 202 && res.status !== 204) throw statusError(BACKEND, 'PUT', url, res);
  }

  // ------------------------------------------------------------------ objects

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const conditional = options?.ifNoneMatch === true;
    const size = data.length;
    // Small and conditional puts send their MD5 up front (Swift refuses a damaged body with 422).
    // A large put hashes its pieces as they go out, so hashing overlaps the upload; the ETag
    // Swift answers is compared afterwards, and a retry sends the now-known MD5 up front.
    let etag: string | undefined = conditional || size < HASH_WHILE_SENDING_BYTES ? md5Hex(data) : undefined;
    let tries = 0;
    return this.retrying(`PUT ${key}`, async () => {
      const before = options?.beforeAttempt; // a plain function call: it must not rely on this
      before?.();
      tries++;
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (etag !== undefined) headers['etag'] = etag;
      if (conditional) headers['if-none-match'] = '*';
      const hash = etag === undefined ? createHash('md5') : undefined;
      const { res, url } = await this.call('PUT', key, { headers, body: hash !== undefined ? { bytes: data, hash } : data });
      // A 201 means Swift read every byte, so the hash saw them all.
      if (hash !== undefined && res.status === 201) etag = hash.digest('hex');
      if (res.status === 412 && conditional && tries > 1) {
        // An earlier try may have created the object and lost its answer: it is ours if the
        // bytes are.
        const info = await this.head(key);
        if (info !== null && info.etag === etag && info.size === size) return { key, size, etag };
      }
      if (res.status === 422) {
        throw new StoreError('unavailable', `swift PUT ${hostPort(url)}${url.pathname}: the cluster got a body whose MD5 is not ${etag} (HTTP 422)`, { key, status: 422 });
      }
      if (res.status !== 201) throw statusError(BACKEND, 'PUT', url, res, key);
      const sent = etag as string;
      const got = unquoteEtag(res.headers['etag']);
      if (got !== undefined && got !== sent) {
        throw new StoreError('unavailable', `swift PUT ${hostPort(url)}${url.pathname}: stored ETag ${got} is not the MD5 ${sent} of what was sent`, { key });
      }
      if (conditional && options?.verifyCreate !== false) await this.retrying(`HEAD ${key}`, () => this.confirmCreate(key, sent));
      return { key, size, etag: sent };
    });
  }

  /**
   * After a conditional create answered 201: did a concurrent create overwrite it? (Swift checks
   * If-None-Match when a PUT starts, so racing creates can all succeed; the newest stays.)
   */
  private async confirmCreate(key: string, etag: string): Promise<void> {
    const { res, url } = await this.call('HEAD', key, { headers: { 'x-newest': 'true' } });
    if (res.status !== 200 && res.status !== 404) throw statusError(BACKEND, 'HEAD', url, res, key);
    const now = res.status === 200 ? unquoteEtag(res.headers['etag']) : undefined;
    if (now !== etag) {
      throw new StoreError('precondition_failed', `swift PUT ${hostPort(url)}${url.pathname}: a concurrent create won (object now ${now ?? `HTTP ${res.status}`}, ours ${etag})`, { key, status: 412 });
    }
  }

  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    checkKey(key);
    if (this.token === undefined) await this.retrying('auth', () => this.refreshAuth(undefined));
    const conditional = options?.ifNoneMatch === true;
    const headers: Record<string, string> = {
      'x-auth-token': this.token as string,
      'content-type': 'application/octet-stream',
      // no Content-Length: undici sends the stream with Transfer-Encoding: chunked
    };
    if (conditional) headers['if-none-match'] = '*';
    const url = this.objectUrl(key);
    this.stats.requests++;
    const req = new StreamingRequest(this.pools, BACKEND, { method: 'PUT', url, headers }, key);
    const md5 = createHash('md5');
    let state: 'open' | 'closed' | 'aborted' = 'open';
    const store = this;
    /** A 401 means the token expired while the segment was open: refresh it for the caller's re-put. */
    const expired = async (err: unknown): Promise<unknown> => {
      if (!(err instanceof StoreError) || err.status !== 401) return err;
      await store.refreshAuth(headers['x-auth-token']).catch(() => undefined);
      return new StoreError('unavailable', `swift PUT ${hostPort(url)}${url.pathname}: token expired during a streamed put (HTTP 401); re-put`, { key, status: 401, cause: err });
    };
    return {
      async write(chunk: Uint8Array): Promise<void> {
        if (state !== 'open') throw new StoreError('bad_request', `swift: write to a ${state} stream`, { key });
        md5.update(chunk);
        try {
          await req.write(chunk);
        } catch (err) {
          throw await expired(err);
        }
      },
      async close(): Promise<ObjectInfo> {
        if (state !== 'open') throw new StoreError('bad_request', `swift: close of a ${state} stream`, { key });
        state = 'closed';
        const res = await req.end();
        const etag = md5.digest('hex');
        if (res.status !== 201) throw await expired(statusError(BACKEND, 'PUT', url, res, key));
        const got = unquoteEtag(res.headers['etag']);
        if (got !== etag) {
          // What Swift stored is not what we sent: do not leave it behind.
          await store.delete(key).catch(() => undefined);
          throw new StoreError('unavailable', `swift PUT ${hostPort(url)}${url.pathname}: stored ETag ${got ?? '(none)'} is not the MD5 ${etag} of the ${req.bytesWritten} bytes sent`, { key });
        }
        if (conditional) await store.retrying(`HEAD ${key}`, () => store.confirmCreate(key, etag));
        return { key, size: req.bytesWritten, etag };
      },
      async abort(): Promise<void> {
        if (state !== 'open') return;
        state = 'aborted';
        await req.abort();
      },
    };
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    checkKey(key);
    checkRange(key, range);
    if (range !== undefined && range.length === 0) {
      if ((await this.head(key)) === null) throw new StoreError('not_found', `swift: no object ${key}`, { key });
      return new Uint8Array(0);
    }
    return this.retrying(`GET ${key}`, async () => {
      const headers: Record<string, string> = {};
      if (range !== undefined) headers['range'] = `bytes=${range.offset}-${range.offset + range.length - 1}`;
      const { res, url } = await this.call('GET', key, { headers, md5Body: range === undefined && this.verifyReads });
      if (res.status === 404) throw new StoreError('not_found', `swift: no object ${key} in ${this.container}`, { key, status: 404 });
      if (res.status === 416 && range !== undefined) return new Uint8Array(0);
      if (res.status !== 200 && res.status !== 206) throw statusError(BACKEND, 'GET', url, res, key);
      if (range !== undefined) return rangeBody(BACKEND, url, res, range.offset, range.length, key);
      if (this.verifyReads) checkBodyMd5(BACKEND, url, res, key);
      return plainBytes(res.body);
    });
  }

  async getv(key: string, range?: ByteRange): Promise<Uint8Array[]> {
    if (range === undefined || range.length === 0) {
      const b = await this.get(key, range);
      return b.length > 0 ? [b] : [];
    }
    checkKey(key);
    checkRange(key, range);
    return this.retrying(`GET ${key}`, async () => {
      const headers = { range: `bytes=${range.offset}-${range.offset + range.length - 1}` };
      const { res, url } = await this.call('GET', key, { headers, chunks: true });
      if (res.status === 404) throw new StoreError('not_found', `swift: no object ${key} in ${this.container}`, { key, status: 404 });
      if (res.status === 416) return [];
      if (res.status !== 200 && res.status !== 206) throw statusError(BACKEND, 'GET', url, res, key);
      return rangeChunks(BACKEND, url, res, range.offset, range.length, key).filter((c) => c.length > 0);
    });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    return this.retrying(`HEAD ${key}`, async () => {
      const { res, url } = await this.call('HEAD', key);
      if (res.status === 404) return null;
      if (res.status !== 200 && res.status !== 204) throw statusError(BACKEND, 'HEAD', url, res, key);
      return objectInfoFromHead(BACKEND, url, res, key);
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.retrying(`DELETE ${key}`, async () => {
      const { res, url } = await this.call('DELETE', key);
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw statusError(BACKEND, 'DELETE', url, res, key);
    });
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const limit = Math.min(checkLimit(options?.limit), LIST_LIMIT_MAX);
    const query: Record<string, string> = { format: 'json', limit: String(limit) };
    if (prefix !== '') query['prefix'] = prefix;
    if (options?.after !== undefined) query['marker'] = options.after;
    return this.retrying(`list ${prefix}`, async () => {
      const { res, url } = await this.call('GET', undefined, { query });
      if (res.status === 204) return { objects: [] };
      if (res.status !== 200) throw statusError(BACKEND, 'GET', url, res);
      let rows: unknown;
      try {
        rows = JSON.parse(res.body.toString('utf8'));
      } catch (err) {
        throw new StoreError('unavailable', `swift GET ${hostPort(url)}${url.pathname}: listing is not JSON`, { cause: err });
      }
      if (!Array.isArray(rows)) throw new StoreError('io', `swift GET ${hostPort(url)}: listing is not a JSON array`);
      const objects: ObjectInfo[] = [];
      for (const row of rows as unknown[]) {
        if (typeof row !== 'object' || row === null) continue;
        const r = row as { name?: unknown; bytes?: unknown; hash?: unknown };
        if (typeof r.name !== 'string' || typeof r.bytes !== 'number') continue;
        objects.push(typeof r.hash === 'string' ? { key: r.name, size: r.bytes, etag: r.hash } : { key: r.name, size: r.bytes });
      }
      const last = objects[objects.length - 1];
      return rows.length >= limit && last !== undefined ? { objects, next: last.key } : { objects };
    });
  }

  async close(): Promise<void> {
    await this.pools.close();
  }
}
