/** What every handler gets: the server's shared parts (Ctx) and one request in flight (Call). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { FileSystem, Identity } from '../fs/index.ts';
import type { Clock, Logger } from '../util/index.ts';
import type { Authenticator } from './auth.ts';
import { ApiError, badRequest } from './errors.ts';
import type { EtagCache } from './etag.ts';
import type { Gate } from './gate.ts';
import type { Namespace } from './namespace.ts';
import type { Target } from './paths.ts';

export interface ObjectApiLimits {
  /** Largest single PUT (and multipart part) in bytes (default 5 GiB, as Swift and S3). */
  objectBytesMax: number;
  /** Largest object a multipart upload may complete into (default 5 TiB). */
  multipartBytesMax: number;
  /** Largest XML request body (CompleteMultipartUpload, DeleteObjects) in bytes. */
  xmlBodyBytesMax: number;
  /** Swift listing limit maximum (default 10000; more is a 412 as in Swift). */
  swiftListingMax: number;
  /** MD5 computations of listed files running at once per listing. */
  listingEtagConcurrency: number;
  /** Object bodies streaming at once (PUTs, parts, completions, copies, GETs); more wait. Each
   * holds up to 8 MiB of buffers. */
  streamsMax: number;
  /** MD5 computations (reads of files that have no current stamp) at once; more wait. */
  md5ComputesMax: number;
}

export interface ObjectApiStats {
  requests: number;
  /** Responses by class. */
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** Object body bytes received by PUTs and sent by GETs. */
  bytesIn: number;
  bytesOut: number;
}

export interface Ctx {
  fs: FileSystem;
  ns: Namespace;
  etags: EtagCache;
  auth: Authenticator;
  log: Logger;
  clock: Clock;
  region: string;
  /** The Swift account, AUTH_<volume>. */
  account: string;
  limits: ObjectApiLimits;
  stats: ObjectApiStats;
  /** Bounds object bodies in flight (limits.streamsMax). */
  streams: Gate;
}

export interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  t: Target;
  /** Request id, echoed as X-Trans-Id / x-amz-request-id. */
  id: string;
  /** Set once the request is authenticated. */
  who: Identity | undefined;
  /** The client waits for "100 Continue" before it sends the body. */
  expectContinue: boolean;
  /** The request body (decoded and checked as the dialect requires). Sends 100 Continue. */
  body: () => AsyncIterable<Uint8Array>;
}

/** The authenticated identity (handlers run only after authentication). */
export function who(c: Call): Identity {
  if (!c.who) throw new ApiError(401, 'AccessDenied', 'not authenticated');
  return c.who;
}

/** The raw request body, sending 100 Continue first when the client waits for it. */
export function rawBody(c: Call): AsyncIterable<Uint8Array> {
  if (c.expectContinue && !c.res.headersSent) c.res.writeContinue();
  c.expectContinue = false;
  return c.req;
}

export const META_COUNT_MAX = 90;
export const META_NAME_BYTES_MAX = 128;
export const META_VALUE_BYTES_MAX = 256;
export const META_TOTAL_BYTES_MAX = 4096;

/**
 * User metadata from request headers with this prefix (x-object-meta-, x-amz-meta-): lower-case
 * name -> raw bytes (header values arrive as latin1, so UTF-8 bytes survive unchanged).
 * Limits as Swift's: 90 items, names 128 bytes, values 256 bytes, 4096 bytes in all.
 */
export function metaFromHeaders(req: IncomingMessage, prefix: string): Map<string, Uint8Array> {
  const meta = new Map<string, Uint8Array>();
  let total = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!name.startsWith(prefix)) continue;
    const k = name.slice(prefix.length);
    if (k === '') throw badRequest('a metadata header needs a name after the prefix', 'InvalidArgument');
    const v = Buffer.from(req.rawHeaders[i + 1]!.trim(), 'latin1');
    if (k.length > META_NAME_BYTES_MAX) throw badRequest(`metadata name longer than ${META_NAME_BYTES_MAX} bytes`, 'MetadataTooLarge');
    if (v.length > META_VALUE_BYTES_MAX) throw badRequest(`metadata value longer than ${META_VALUE_BYTES_MAX} bytes`, 'MetadataTooLarge');
    total += k.length + v.length;
    meta.set(k, v);
  }
  if (meta.size > META_COUNT_MAX) throw badRequest(`more than ${META_COUNT_MAX} metadata items`, 'MetadataTooLarge');
  if (total > META_TOTAL_BYTES_MAX) throw badRequest(`metadata exceeds ${META_TOTAL_BYTES_MAX} bytes`, 'MetadataTooLarge');
  return meta;
}

/** Metadata as response headers; items that cannot be a header (set through the mount) are left out. */
export function metaHeaders(meta: ReadonlyMap<string, Uint8Array>, prefix: string, titleCase: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of meta) {
    const name = prefix + (titleCase ? k.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase()) : k);
    const value = Buffer.from(v).toString('latin1');
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      continue;
    }
    out[name] = value;
  }
  return out;
}

/** A header value we echo back (content type, response overrides), or undefined if it cannot be one. */
export function safeHeaderValue(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    validateHeaderValue('x', v);
    return v;
  } catch {
    return undefined;
  }
}

/** A request header as one string (repeated headers joined with ','). */
export function hdr(c: Call, name: string): string | undefined {
  const v = c.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}
