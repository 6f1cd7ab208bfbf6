/**
 * S3 backend (AWS S3, and S3 layers such as Swift's s3api, MinIO, Ceph RGW):
 * `s3+http://HOST:PORT/BUCKET` and `s3+https://...`, path-style addressing.
 *
 * - Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or URL user info), region from
 *   AWS_REGION (default us-east-1, or `?region=`); every request is signed with SigV4 (bodies
 *   as UNSIGNED-PAYLOAD, protected by Content-MD5 instead, which the server checks).
 * - The bucket is created on open when it is missing.
 * - put(buffer) is one PUT, retried; putStream buffers parts of `partSizeBytes` (>= 5 MiB) and
 *   becomes a multipart upload once the first part fills (each part is retried from its buffer,
 *   at most `partsInFlight` at a time); a smaller stream becomes one PUT at close.
 * - Conditional create sends `If-None-Match: *` (on the PUT, or on CompleteMultipartUpload). At
 *   open the store probes the server with a throwaway key: AWS S3 (since 2024) honours it; Swift
 *   2.30's s3api answers 501 NotImplemented, and some servers ignore the header. Then
 *   capabilities.conditionalCreate is false and a conditional put throws 'unsupported', unless
 *   the store was opened with `weakConditionalCreate` (URL `?weak-conditional-create=1`): then it
 *   does HEAD, then PUT if absent. That is NOT atomic (two writers can both see "absent" and
 *   both write; the last one wins), so fencing built on it is weaker: see docs/STORES.md.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { StoreError, countStoreRetry, nullLogger, type Logger } from '../util/index.ts';
import type { ByteRange, ChunkedPut, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoreCapabilities } from './types.ts';
import { withRetry } from './retry.ts';
import {
  HttpPools,
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
  statusKind,
  unquoteEtag,
  type HttpRequest,
  type HttpResponse,
  type HttpTimeouts,
  type RetryPolicy,
} from './http.ts';

export interface S3StoreOptions {
  /** http(s)://HOST:PORT (path-style requests go to ENDPOINT/BUCKET/KEY). */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Default us-east-1. */
  region?: string;
  sessionToken?: string;
  /** Sockets per origin (default 16). */
  connections?: number;
  timeouts?: Partial<HttpTimeouts>;
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  /** Multipart part size for putStream, >= 5 MiB (default 8 MiB). */
  partSizeBytes?: number;
  /** Parts uploading at once per stream (default 2). */
  partsInFlight?: number;
  /** 'probe' (default) asks the server at open; true/false skip the probe. */
  conditionalCreate?: 'probe' | boolean;
  /** Without atomic conditional create, emulate it with HEAD then PUT (not atomic). */
  weakConditionalCreate?: boolean;
  /** Check the MD5 of whole single-part GETs against their ETag (default true). */
  verifyReads?: boolean;
}

export interface S3StoreStats {
  requests: number;
  retries: number;
}

const BACKEND = 's3';
const MiB = 1024 * 1024;
/** Puts at least this large hash while sending instead of before. */
const HASH_WHILE_SENDING_BYTES = 1024 * 1024;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function parseS3Url(storeUrl: string, env: Record<string, string | undefined> = process.env): S3StoreOptions {
  const m = /^s3\+(https?):\/\//.exec(storeUrl);
  if (m === null) throw new StoreError('bad_request', `not an s3 store URL: ${storeUrl} (want s3+http://HOST:PORT/BUCKET)`);
  const u = new URL(storeUrl.slice('s3+'.length));
  const bucket = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
  if (bucket === '' || bucket.includes('/')) throw new StoreError('bad_request', `s3 store URL needs exactly one bucket in its path: ${storeUrl}`);
  const accessKeyId = u.username !== '' ? decodeURIComponent(u.username) : env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = u.password !== '' ? decodeURIComponent(u.password) : env['AWS_SECRET_ACCESS_KEY'];
  if (accessKeyId === undefined || accessKeyId === '' || secretAccessKey === undefined) {
    throw new StoreError('auth', `no S3 credentials for ${u.host}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  const region = u.searchParams.get('region') ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
  const weak = u.searchParams.get('weak-conditional-create');
  const opts: S3StoreOptions = { endpoint: `${u.protocol}//${u.host}`, bucket, accessKeyId, secretAccessKey, region };
  const token = env['AWS_SESSION_TOKEN'];
  if (token !== undefined && token !== '' && u.username === '') opts.sessionToken = token;
  if (weak === '1' || weak === 'true') opts.weakConditionalCreate = true;
  return opts;
}

// ------------------------------------------------------------------ SigV4

/** RFC 3986 encoding as SigV4 wants it (everything but unreserved characters). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Build a query string with SigV4's encoding; the same string is sent and signed. */
function queryString(q: Record<string, string>): string {
  return Object.keys(q)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(q[k] as string)}`)
    .join('&');
}

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
}

/**
 * Sign a request in place (AWS Signature Version 4, header form). `url.search` must already be
 * in canonical order and encoding (see queryString); `headers` are lower-case.
 */
export function signV4(method: string, url: URL, headers: Record<string, string>, payloadHash: string, cred: SigV4Credentials, now: Date): void {
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  headers['host'] = url.host;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;
  if (cred.sessionToken !== undefined) headers['x-amz-security-token'] = cred.sessionToken;
  const names = Object.keys(headers)
    .map((h) => h.toLowerCase())
    .sort();
  const canonicalHeaders = names.map((h) => `${h}:${(headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalQuery = url.search.replace(/^\?/, '');
  const canonical = [method, url.pathname, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${cred.region}/${cred.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const kDate = hmac(`AWS4${cred.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, cred.region), cred.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(toSign).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${cred.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

// ------------------------------------------------------------------ XML (the few shapes S3 answers)

function xmlDecode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m?.[1] !== undefined ? xmlDecode(m[1]) : undefined;
}

function xmlBlocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) out.push(m[1] ?? '');
  return out;
}

function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

// ------------------------------------------------------------------ store

export class S3Store implements ObjectStore {
  readonly capabilities: StoreCapabilities;
  readonly stats: S3StoreStats = { requests: 0, retries: 0 };
  readonly bucket: string;
  /** Why conditionalCreate is what it is (the probe's finding). */
  conditionalCreateNote = 'not probed';
  private readonly endpoint: URL;
  private readonly pools: HttpPools;
  private readonly retryPolicy: RetryPolicy;
  private readonly log: Logger;
  private readonly cred: SigV4Credentials;
  private readonly partSize: number;
  private readonly partsInFlight: number;
  private readonly weak: boolean;
  private readonly verifyReads: boolean;

  private constructor(private readonly opts: S3StoreOptions) {
    this.endpoint = new URL(opts.endpoint);
    if (this.endpoint.protocol !== 'http:' && this.endpoint.protocol !== 'https:') {
      throw new StoreError('bad_request', `s3 endpoint must be http(s): ${opts.endpoint}`);
    }
    this.bucket = opts.bucket;
    if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(this.bucket)) throw new StoreError('bad_request', `bad s3 bucket name "${this.bucket}"`);
    this.pools = new HttpPools(opts.connections ?? 16, { ...defaultTimeouts, ...opts.timeouts });
    this.retryPolicy = { ...defaultRetryPolicy, ...opts.retry };
    this.log = opts.logger ?? nullLogger;
    this.cred = {
      accessKeyId: opts.accessKeyId,
      secretAccessKey: opts.secretAccessKey,
      region: opts.region ?? 'us-east-1',
      service: 's3',
      ...(opts.sessionToken !== undefined ? { sessionToken: opts.sessionToken } : {}),
    };
    this.partSize = opts.partSizeBytes ?? 8 * MiB;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < 5 * MiB) throw new StoreError('bad_request', `s3 part size ${this.partSize} is under 5 MiB`);
    this.partsInFlight = Math.max(1, opts.partsInFlight ?? 2);
    this.weak = opts.weakConditionalCreate ?? false;
    this.verifyReads = opts.verifyReads ?? true;
    this.capabilities = { conditionalCreate: opts.conditionalCreate === true, description: '' };
    this.describe();
  }

  private describe(): void {
    const cc = this.capabilities.conditionalCreate ? 'atomic conditional create' : this.weak ? 'weak (HEAD then PUT) conditional create' : 'no conditional create';
    this.capabilities.description = `s3 ${this.endpoint.origin}/${this.bucket} (${this.cred.region}, ${cc})`;
  }

  /** Create the bucket if missing and find out whether conditional create works. */
  static async open(opts: S3StoreOptions): Promise<S3Store> {
    const store = new S3Store(opts);
    try {
      await store.ensureBucket();
      const cc = opts.conditionalCreate ?? 'probe';
      if (cc === 'probe') await store.probeConditionalCreate();
      else store.conditionalCreateNote = `set by option (${cc})`;
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  static async fromUrl(storeUrl: string, options?: Partial<S3StoreOptions>): Promise<S3Store> {
    return S3Store.open({ ...parseS3Url(storeUrl), ...options });
  }

  // ------------------------------------------------------------------ requests

  private url(key: string | undefined, query?: Record<string, string>): URL {
    const u = new URL(this.endpoint.toString());
    const base = this.endpoint.pathname.replace(/\/$/, '');
    u.pathname = `${base}/${uriEncode(this.bucket)}${key !== undefined ? `/${encodeKeyPath(key)}` : ''}`;
    const q = query !== undefined ? queryString(query) : '';
    u.search = q === '' ? '' : `?${q}`;
    return u;
  }

  private async call(
    method: HttpRequest['method'],
    key: string | undefined,
    init: { headers?: Record<string, string>; body?: HttpRequest['body']; query?: Record<string, string>; md5Body?: boolean; chunks?: boolean } = {},
  ): Promise<{ res: HttpResponse; url: URL }> {
    const url = this.url(key, init.query);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
    const bytes = init.body instanceof Uint8Array ? init.body : init.body?.bytes;
    const payloadHash = bytes === undefined || bytes.length === 0 ? EMPTY_SHA256 : 'UNSIGNED-PAYLOAD';
    signV4(method, url, headers, payloadHash, this.cred, new Date());
    this.stats.requests++;
    const res = await send(
      this.pools,
      BACKEND,
      {
        method,
        url,
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        ...(init.md5Body === true ? { md5Body: true } : {}),
        ...(init.chunks === true ? { chunks: true } : {}),
      },
      key,
    );
    return { res, url };
  }

  private error(method: string, url: URL, res: HttpResponse, key?: string): StoreError {
    const xml = res.body.toString('utf8');
    const code = xmlText(xml, 'Code');
    const message = xmlText(xml, 'Message');
    let kind = statusKind(res.status);
    if (code === 'BadDigest' || code === 'RequestTimeout' || code === 'SlowDown' || code === 'InternalError' || code === 'ConditionalRequestConflict') kind = 'unavailable';
    if (code === 'SignatureDoesNotMatch' || code === 'InvalidAccessKeyId' || code === 'AccessDenied' || code === 'ExpiredToken') kind = 'auth';
    if (code === 'NotImplemented') kind = 'unsupported';
    if (code === 'NoSuchKey' || code === 'NoSuchBucket' || code === 'NoSuchUpload') kind = 'not_found';
    return new StoreError(kind, `s3 ${method} ${hostPort(url)}${url.pathname}: HTTP ${res.status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? ` (${message})` : ''}`, {
      status: res.status,
      ...(key !== undefined ? { key } : {}),
    });
  }

  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      ...this.retryPolicy,
      onRetry: (err: unknown) => {
        this.stats.retries++;
        countStoreRetry(what);
        this.log.debug(`s3: retrying ${what}`, { error: err instanceof Error ? err.message : String(err) });
      },
    });
  }

  private async ensureBucket(): Promise<void> {
    await this.retrying('bucket', async () => {
      const head = await this.call('HEAD', undefined);
      if (head.res.status === 200) return;
      if (head.res.status !== 404) throw this.error('HEAD', head.url, head.res);
      const body =
        this.cred.region === 'us-east-1'
          ? undefined
          : Buffer.from(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${xmlEscape(this.cred.region)}</LocationConstraint></CreateBucketConfiguration>`);
      const { res, url } = await this.call('PUT', undefined, body !== undefined ? { body } : {});
      if (res.status === 200 || res.status === 204) return;
      if (res.status === 409 && xmlText(res.body.toString('utf8'), 'Code') === 'BucketAlreadyOwnedByYou') return;
      throw this.error('PUT', url, res);
    });
  }

  /**
   * Is `If-None-Match: *` atomic here? Create a throwaway key conditionally twice: the first must
   * succeed and the second must fail with 412. A 501 / NotImplemented (Swift's s3api) or a
   * second success (header ignored) means no.
   */
  private async probeConditionalCreate(): Promise<void> {
    const key = `.silt-probe/conditional-create-${randomBytes(8).toString('hex')}`;
    const once = async (): Promise<HttpResponse> =>
      this.retrying('conditional-create probe', async () => {
        const { res, url } = await this.call('PUT', key, { headers: { 'if-none-match': '*', 'content-md5': md5(Buffer.from('probe')).toString('base64') }, body: Buffer.from('probe') });
        const kind = res.status >= 400 ? this.error('PUT', url, res, key) : undefined;
        if (kind !== undefined && kind.retryable) throw kind;
        return res;
      });
    let supported = false;
    try {
      const first = await once();
      if (first.status === 501 || (first.status === 400 && xmlText(first.body.toString('utf8'), 'Code') === 'NotImplemented')) {
        this.conditionalCreateNote = `server answers a conditional PUT with HTTP ${first.status} ${xmlText(first.body.toString('utf8'), 'Code') ?? ''}`.trim();
      } else if (first.status !== 200) {
        throw this.error('PUT', this.url(key), first, key);
      } else {
        const second = await once();
        if (second.status === 412) {
          supported = true;
          this.conditionalCreateNote = 'server honours If-None-Match: * (412 on an existing key)';
        } else {
          this.conditionalCreateNote = `server ignores If-None-Match: * (HTTP ${second.status} on an existing key)`;
        }
      }
    } finally {
      await this.delete(key).catch(() => undefined);
    }
    this.capabilities.conditionalCreate = supported;
    this.describe();
    this.log.info(`s3: conditional create ${supported ? 'supported' : 'NOT supported'}`, { store: this.capabilities.description, note: this.conditionalCreateNote });
  }

  /** What a conditional put does on this store: 'atomic', 'weak' (HEAD then PUT) or throw. */
  private conditionalMode(key: string, options: PutOptions | undefined): 'none' | 'atomic' | 'weak' {
    if (options?.ifNoneMatch !== true) return 'none';
    if (this.capabilities.conditionalCreate) return 'atomic';
    if (this.weak) return 'weak';
    throw new StoreError('unsupported', `s3 ${this.endpoint.host}/${this.bucket}: conditional create is not supported (${this.conditionalCreateNote}); open with weak-conditional-create=1 to accept HEAD-then-PUT`, { key });
  }

  /** @internal */
  async _weakCheck(key: string): Promise<void> {
    if ((await this.head(key)) !== null) throw new StoreError('precondition_failed', `s3: ${key} exists (weak conditional create: HEAD then PUT, not atomic)`, { key, status: 412 });
  }

  // ------------------------------------------------------------------ objects

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const mode = this.conditionalMode(key, options);
    if (mode === 'weak') await this._weakCheck(key);
    return this.putBuffer(key, data, mode === 'atomic', options?.beforeAttempt);
  }

  /**
   * Small and conditional puts send Content-MD5 (the server refuses a damaged body); a large one
   * hashes its pieces as they go out and compares the ETag answered (single-part ETag = MD5),
   * and a retry sends the now-known Content-MD5.
   */
  private async putBuffer(key: string, body: Uint8Array, conditional: boolean, beforeAttempt?: () => void): Promise<ObjectInfo> {
    let digest: Buffer | undefined = conditional || body.length < HASH_WHILE_SENDING_BYTES ? md5(body) : undefined;
    let tries = 0;
    return this.retrying(`PUT ${key}`, async () => {
      beforeAttempt?.();
      tries++;
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (digest !== undefined) headers['content-md5'] = digest.toString('base64');
      if (conditional) headers['if-none-match'] = '*';
      const hash = digest === undefined ? createHash('md5') : undefined;
      const { res, url } = await this.call('PUT', key, { headers, body: hash !== undefined ? { bytes: body, hash } : body });
      if (hash !== undefined && res.status === 200) digest = hash.digest();
      const etag = digest?.toString('hex');
      if (res.status === 412 && conditional && tries > 1) {
        const info = await this.head(key);
        if (info !== null && info.etag === etag && info.size === body.length) return { key, size: body.length, etag: etag as string };
      }
      if (res.status !== 200) throw this.error('PUT', url, res, key);
      const got = unquoteEtag(res.headers['etag']);
      if (got !== undefined && got !== etag) throw new StoreError('unavailable', `s3 PUT ${hostPort(url)}${url.pathname}: stored ETag ${got} is not the MD5 ${etag} of what was sent`, { key });
      return { key, size: body.length, etag: etag as string };
    });
  }

  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    checkKey(key);
    const mode = this.conditionalMode(key, options);
    return new S3Upload(this, key, mode, this.partSize, this.partsInFlight);
  }

  /** @internal used by S3Upload */
  async _putWhole(key: string, body: Buffer, mode: 'none' | 'atomic' | 'weak'): Promise<ObjectInfo> {
    if (mode === 'weak') await this._weakCheck(key);
    return this.putBuffer(key, body, mode === 'atomic');
  }

  /** @internal */
  async _createUpload(key: string): Promise<string> {
    return this.retrying(`create upload ${key}`, async () => {
      const { res, url } = await this.call('POST', key, { query: { uploads: '' }, headers: { 'content-type': 'application/octet-stream' } });
      if (res.status !== 200) throw this.error('POST', url, res, key);
      const id = xmlText(res.body.toString('utf8'), 'UploadId');
      if (id === undefined || id === '') throw new StoreError('io', `s3 POST ${hostPort(url)}: CreateMultipartUpload without an UploadId`, { key });
      return id;
    });
  }

  /** @internal */
  async _uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<{ etag: string; digest: Buffer }> {
    const digest = md5(body);
    const etag = digest.toString('hex');
    return this.retrying(`upload part ${partNumber} of ${key}`, async () => {
      const { res, url } = await this.call('PUT', key, {
        query: { partNumber: String(partNumber), uploadId },
        headers: { 'content-md5': digest.toString('base64') },
        body,
      });
      if (res.status !== 200) throw this.error('PUT', url, res, key);
      const got = unquoteEtag(res.headers['etag']);
      if (got !== undefined && got !== etag) throw new StoreError('unavailable', `s3 PUT part ${partNumber} ${hostPort(url)}: ETag ${got} is not the MD5 ${etag} sent`, { key });
      return { etag, digest };
    });
  }

  /** @internal */
  async _completeUpload(key: string, uploadId: string, parts: Array<{ etag: string; digest: Buffer }>, size: number, conditional: boolean): Promise<ObjectInfo> {
    const expected = `${md5(Buffer.concat(parts.map((p) => p.digest))).toString('hex')}-${parts.length}`;
    const xml = `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.map((p, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>"${p.etag}"</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const body = Buffer.from(xml);
    let tries = 0;
    return this.retrying(`complete upload ${key}`, async () => {
      tries++;
      const headers: Record<string, string> = { 'content-type': 'application/xml', 'content-md5': md5(body).toString('base64') };
      if (conditional) headers['if-none-match'] = '*';
      const { res, url } = await this.call('POST', key, { query: { uploadId }, headers, body });
      const text = res.body.toString('utf8');
      // A 200 can still carry an <Error> (the server failed after it started answering).
      if (res.status === 200 && !text.includes('<Error>')) {
        const etag = unquoteEtag(xmlText(text, 'ETag')) ?? expected;
        return { key, size, etag };
      }
      if (tries > 1 && (res.status === 404 || res.status === 412)) {
        // An earlier try completed and lost its answer?
        const info = await this.head(key);
        if (info !== null && info.size === size && (info.etag === expected || info.etag === undefined)) return info;
      }
      if (res.status === 200) {
        const code = xmlText(text, 'Code');
        throw new StoreError(code === 'InternalError' || code === 'SlowDown' ? 'unavailable' : 'io', `s3 POST ${hostPort(url)}${url.pathname}: CompleteMultipartUpload failed: ${code ?? ''} ${xmlText(text, 'Message') ?? ''}`, { key });
      }
      throw this.error('POST', url, res, key);
    });
  }

  /** @internal */
  async _abortUpload(key: string, uploadId: string): Promise<void> {
    await this.retrying(`abort upload ${key}`, async () => {
      const { res, url } = await this.call('DELETE', key, { query: { uploadId } });
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.error('DELETE', url, res, key);
    });
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    checkKey(key);
    checkRange(key, range);
    if (range !== undefined && range.length === 0) {
      if ((await this.head(key)) === null) throw new StoreError('not_found', `s3: no object ${key}`, { key });
      return new Uint8Array(0);
    }
    return this.retrying(`GET ${key}`, async () => {
      const headers: Record<string, string> = {};
      if (range !== undefined) headers['range'] = `bytes=${range.offset}-${range.offset + range.length - 1}`;
      const { res, url } = await this.call('GET', key, { headers, md5Body: range === undefined && this.verifyReads });
      if (res.status === 416 && range !== undefined) return new Uint8Array(0);
      if (res.status !== 200 && res.status !== 206) throw this.error('GET', url, res, key);
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
      if (res.status === 416) return [];
      if (res.status !== 200 && res.status !== 206) throw this.error('GET', url, res, key);
      return rangeChunks(BACKEND, url, res, range.offset, range.length, key).filter((c) => c.length > 0);
    });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    return this.retrying(`HEAD ${key}`, async () => {
      const { res, url } = await this.call('HEAD', key);
      if (res.status === 404) return null;
      if (res.status !== 200) throw this.error('HEAD', url, res, key);
      return objectInfoFromHead(BACKEND, url, res, key);
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.retrying(`DELETE ${key}`, async () => {
      const { res, url } = await this.call('DELETE', key);
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.error('DELETE', url, res, key);
    });
  }

  /** ListObjectsV2: `after` becomes start-after; a short page is filled by following continuation tokens. */
  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const limit = checkLimit(options?.limit);
    const objects: ObjectInfo[] = [];
    let token: string | undefined;
    let truncated = false;
    do {
      const query: Record<string, string> = { 'list-type': '2', 'encoding-type': 'url', 'max-keys': String(Math.min(1000, limit - objects.length)) };
      if (prefix !== '') query['prefix'] = prefix;
      if (token !== undefined) query['continuation-token'] = token;
      else if (options?.after !== undefined) query['start-after'] = options.after;
      const page = await this.retrying(`list ${prefix}`, async () => {
        const { res, url } = await this.call('GET', undefined, { query });
        if (res.status !== 200) throw this.error('GET', url, res);
        return res.body.toString('utf8');
      });
      const urlEncoded = xmlText(page, 'EncodingType') === 'url';
      const dec = (s: string): string => (urlEncoded ? decodeURIComponent(s.replace(/\+/g, ' ')) : s);
      for (const block of xmlBlocks(page, 'Contents')) {
        const k = xmlText(block, 'Key');
        const size = Number(xmlText(block, 'Size'));
        if (k === undefined || !Number.isSafeInteger(size)) continue;
        const etag = unquoteEtag(xmlText(block, 'ETag'));
        objects.push(etag !== undefined ? { key: dec(k), size, etag } : { key: dec(k), size });
      }
      truncated = xmlText(page, 'IsTruncated') === 'true';
      token = xmlText(page, 'NextContinuationToken');
      if (truncated && token === undefined) break; // no way to continue here: the caller pages with `after`
    } while (truncated && objects.length < limit);
    const last = objects[objects.length - 1];
    return truncated && last !== undefined ? { objects, next: last.key } : { objects };
  }

  async close(): Promise<void> {
    await this.pools.close();
  }
}

/** A streamed put: one PUT when it stays under a part, else a multipart upload. */
class S3Upload implements ChunkedPut {
  private cur: Buffer | undefined;
  private fill = 0;
  private size = 0;
  private uploadId: Promise<string> | undefined;
  private readonly parts: Array<Promise<{ etag: string; digest: Buffer }>> = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private failed: unknown;
  private state: 'open' | 'closed' | 'aborted' = 'open';

  constructor(
    private readonly store: S3Store,
    private readonly key: string,
    private readonly mode: 'none' | 'atomic' | 'weak',
    private readonly partSize: number,
    private readonly maxInFlight: number,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new StoreError('bad_request', `s3: write to a ${this.state} stream`, { key: this.key });
    if (this.failed !== undefined) throw this.failed;
    let off = 0;
    while (off < chunk.length) {
      this.cur ??= Buffer.allocUnsafe(this.partSize);
      const n = Math.min(chunk.length - off, this.partSize - this.fill);
      this.cur.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      this.size += n;
      if (this.fill === this.partSize) await this.flushPart();
    }
  }

  private async flushPart(): Promise<void> {
    const body = (this.cur as Buffer).subarray(0, this.fill);
    this.cur = undefined;
    this.fill = 0;
    if (this.mode === 'weak' && this.uploadId === undefined) await this.store._weakCheck(this.key);
    this.uploadId ??= this.store._createUpload(this.key);
    const uploadId = await this.uploadId;
    const n = this.parts.length + 1;
    const p = this.store._uploadPart(this.key, uploadId, n, body);
    this.parts.push(p);
    const tracked: Promise<unknown> = p.then(
      () => this.inFlight.delete(tracked),
      (err: unknown) => {
        this.inFlight.delete(tracked);
        this.failed ??= err;
      },
    );
    this.inFlight.add(tracked);
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    if (this.failed !== undefined) throw this.failed;
  }

  async close(): Promise<ObjectInfo> {
    if (this.state !== 'open') throw new StoreError('bad_request', `s3: close of a ${this.state} stream`, { key: this.key });
    this.state = 'closed';
    try {
      if (this.failed !== undefined) throw this.failed;
      if (this.uploadId === undefined) {
        const body = this.cur !== undefined ? this.cur.subarray(0, this.fill) : Buffer.alloc(0);
        return await this.store._putWhole(this.key, body, this.mode);
      }
      if (this.fill > 0) await this.flushPart();
      const parts = await Promise.all(this.parts);
      return await this.store._completeUpload(this.key, await this.uploadId, parts, this.size, this.mode === 'atomic');
    } catch (err) {
      await this.cleanup();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    this.cur = undefined;
    await Promise.allSettled(this.inFlight);
    if (this.uploadId !== undefined) {
      const id = await this.uploadId.catch(() => undefined);
      if (id !== undefined) await this.store._abortUpload(this.key, id).catch(() => undefined);
    }
  }
}
