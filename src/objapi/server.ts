/**
 * The HTTP server: one node:http server, each request parsed, sent to the Swift or S3 dialect, and
 * every failure turned into a response through toApiError (errors.ts). A request that fails after
 * its response head went out has its connection cut. No request can throw out of `handle`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { FileSystem } from '../fs/index.ts';
import { nullLogger, systemClock, type Clock, type Logger } from '../util/index.ts';
import { Authenticator, type Credential } from './auth.ts';
import { rawBody, type Call, type Ctx, type ObjectApiLimits, type ObjectApiStats } from './context.ts';
import { toApiError, type ApiError } from './errors.ts';
import { EtagCache } from './etag.ts';
import { Gate } from './gate.ts';
import { Namespace } from './namespace.ts';
import { notifying, type ChangeSink } from './notify.ts';
import { parseTarget } from './paths.ts';
import { s3Request, s3Error } from './s3.ts';
import { swiftRequest, swiftError } from './swift.ts';

export interface ObjectApiOptions {
  fs: FileSystem;
  /** Where to listen (default 127.0.0.1:8090; port 0 picks a free port). */
  listen?: { host?: string; port?: number };
  /** Users and keys; both dialects use the same pairs. Empty means no request can authenticate. */
  credentials: readonly Credential[];
  logger?: Logger;
  clock?: Clock;
  /** The volume's name: the Swift account is AUTH_<volume> (default 'default'). */
  volume?: string;
  /** SigV4 region (default us-east-1). */
  region?: string;
  /** Swift token lifetime (default 24 h). */
  tokenTtlMs?: number;
  /** HMAC secret for Swift tokens (default: random per server, so a restart invalidates tokens). */
  tokenSecret?: Uint8Array;
  limits?: Partial<ObjectApiLimits>;
  /** Sorted directory listings kept for paging (entries in all). */
  dirCacheEntriesMax?: number;
  /** Concurrent connections (default 1024). */
  connectionsMax?: number;
  /**
   * A FUSE mount of the same volume in this process (FuseServer fits): told of every change the
   * API makes, so the kernel's caches never hide a completed PUT or DELETE from the mount.
   */
  notify?: ChangeSink;
}

export interface ObjectApi {
  /** Where the server listens. */
  readonly address: { host: string; port: number };
  /** The base URL, e.g. http://127.0.0.1:8090. */
  readonly url: string;
  stats(): ObjectApiStats & { md5Computed: number };
  /** Start (or stop, with undefined) telling a FUSE mount of the same volume of every change (ObjectApiOptions.notify). */
  notifyChanges(sink: ChangeSink | undefined): void;
  /** Stop accepting, end idle connections, wait for requests in flight (cut after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

export const defaultLimits: ObjectApiLimits = {
  objectBytesMax: 5 * 1024 ** 3,
  multipartBytesMax: 5 * 1024 ** 4,
  xmlBodyBytesMax: 2 * 1024 * 1024,
  swiftListingMax: 10_000,
  listingEtagConcurrency: 4,
  streamsMax: 128,
  md5ComputesMax: 8,
};

const noop = (): void => {};

export async function startObjectApi(o: ObjectApiOptions): Promise<ObjectApi> {
  const log = o.logger ?? nullLogger;
  const limits = { ...defaultLimits, ...o.limits };
  let sink = o.notify;
  const fs = notifying(o.fs, () => sink, log);
  const etags = new EtagCache(fs, log, new Gate(limits.md5ComputesMax));
  const streams = new Gate(limits.streamsMax);
  const stats: ObjectApiStats = { requests: 0, status2xx: 0, status3xx: 0, status4xx: 0, status5xx: 0, bytesIn: 0, bytesOut: 0 };
  const ctx: Ctx = {
    fs,
    ns: new Namespace(fs, etags, log, { dirCacheEntriesMax: o.dirCacheEntriesMax ?? 1_000_000, streams }),
    etags,
    auth: new Authenticator(o.credentials, o.tokenTtlMs ?? 24 * 3600 * 1000, o.tokenSecret),
    log,
    clock: o.clock ?? systemClock,
    region: o.region ?? 'us-east-1',
    account: `AUTH_${o.volume ?? 'default'}`,
    limits,
    stats,
    streams,
  };
  if (ctx.auth.empty) log.warn('objapi: no credentials configured; every request will be refused');

  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
  server.maxHeadersCount = 200;
  server.maxConnections = o.connectionsMax ?? 1024;
  server.timeout = 120_000; // idle sockets
  const sockets = new Set<Socket>();
  const inflight = new Set<Promise<void>>();
  const serve = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
    const p = handle(ctx, req, res, expectContinue).catch((err: unknown) => {
      log.error('objapi: request handler failed', { err: String(err) });
      res.destroy();
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => serve(req, res, false));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => serve(req, res, true));
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(417, { connection: 'close', 'content-length': 0 }).end();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('error', noop);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Malformed HTTP (bad request line, header overflow, bad chunking): answer and hang up.
    stats.status4xx++;
    const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const host = o.listen?.host ?? '127.0.0.1';
  const port = o.listen?.port ?? 8090;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error('objapi: server error', { err: String(err) }));
  const addr = server.address() as AddressInfo;
  const address = { host: addr.address, port: addr.port };
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  log.info('objapi: listening', { host: address.host, port: address.port, account: ctx.account, region: ctx.region });

  return {
    address,
    url: `http://${urlHost}:${addr.port}`,
    stats: () => ({ ...stats, md5Computed: etags.computed }),
    notifyChanges: (next: ChangeSink | undefined) => {
      sink = next;
    },
    async close(graceMs = 5000): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, graceMs);
      await Promise.allSettled([...inflight]);
      server.closeIdleConnections();
      await closed;
      clearTimeout(timer);
    },
  };
}

/** Swift if the path is /auth/... or /v1/... and the request carries no AWS signature. */
function isSwift(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  if (!/^\/(v1|auth|v1\.0)(\/|\?|$)/.test(url)) return false;
  const a = req.headers.authorization;
  if (a !== undefined && /^AWS/.test(a)) return false;
  return !/[?&](X-Amz-(Signature|Algorithm)|AWSAccessKeyId)=/.test(url);
}

async function handle(ctx: Ctx, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
  ctx.stats.requests++;
  req.on('error', noop);
  res.on('error', noop);
  const id = 'tx' + randomBytes(10).toString('hex');
  const swift = isSwift(req);
  const t0 = performance.now();
  res.on('finish', () => {
    const s = res.statusCode;
    ctx.log.debug('objapi: request', { id, method: req.method, url: req.url?.slice(0, 256), status: s, ms: Math.round(performance.now() - t0) });
    if (s < 300) ctx.stats.status2xx++;
    else if (s < 400) ctx.stats.status3xx++;
    else if (s < 500) ctx.stats.status4xx++;
    else ctx.stats.status5xx++;
  });
  res.setHeader(swift ? 'x-trans-id' : 'x-amz-request-id', id);
  const c: Call = {
    req,
    res,
    t: { segments: [], query: [], params: new Map() },
    id,
    who: undefined,
    expectContinue,
    body: () => rawBody(c),
  };
  try {
    c.t = parseTarget(req.url);
    if (swift) await swiftRequest(ctx, c);
    else await s3Request(ctx, c);
  } catch (err) {
    const e = toApiError(err);
    if (e.status >= 500) ctx.log.error('objapi: request failed', { id, method: req.method, url: req.url?.slice(0, 512), err: String(err), cause: String((err as Error)?.cause ?? '') });
    else ctx.log.debug('objapi: request refused', { id, method: req.method, url: req.url?.slice(0, 512), status: e.status, err: e.message });
    respondError(ctx, c, e, swift);
  }
}

function respondError(ctx: Ctx, c: Call, e: ApiError, swift: boolean): void {
  const { req, res } = c;
  if (res.headersSent || res.destroyed) {
    res.destroy(); // a response already under way cannot change its status: cut it
    return;
  }
  // A body the client is still sending (or waiting to send) is not wanted: close after answering.
  if (!req.complete) res.setHeader('connection', 'close');
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  const { contentType, body } = swift ? swiftError(e) : s3Error(e, c.id, req.url ?? '');
  res.statusCode = e.status;
  if (req.method === 'HEAD' || e.status === 304) {
    res.end();
    return;
  }
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
  void ctx;
}
