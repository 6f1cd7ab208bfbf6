/**
 * HTTP plumbing shared by both dialects: byte ranges, conditional requests, dates, bounded bodies,
 * and streaming a file out with backpressure. Nothing here knows Swift or S3.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attr, FileSystem, Identity } from '../fs/index.ts';
import { ApiError, badRequest } from './errors.ts';
import { readRange } from './etag.ts';
import type { Gate } from './gate.ts';

export type Range = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * One `bytes=` range against a size (end exclusive). Syntactically invalid and multi-range headers
 * are ignored (RFC 9110: the whole object is served); a range starting at or past the end is
 * 'unsatisfiable' (416).
 */
export function parseRange(h: string | undefined, size: number): Range {
  if (h === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(h);
  if (!m) return undefined;
  const a = m[1]!;
  const b = m[2]!;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Number.isSafeInteger(n) ? Math.max(0, size - n) : 0, end: size };
  }
  const s = Number(a);
  if (!Number.isSafeInteger(s) || s >= size) return 'unsatisfiable';
  if (b === '') return { start: s, end: size };
  const e = Number(b);
  if (Number.isSafeInteger(e) && e < s) return undefined;
  return { start: s, end: Number.isSafeInteger(e) ? Math.min(e + 1, size) : size };
}

export const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);
export const httpDate = (ns: bigint): string => new Date(nsToMs(ns)).toUTCString();
/** S3 style: 2024-05-01T12:00:00.000Z. */
export const isoDate = (ns: bigint): string => new Date(nsToMs(ns)).toISOString();
/** Swift listing style: 2024-05-01T12:00:00.123456 (no zone, microseconds). */
export function swiftDate(ns: bigint): string {
  const iso = new Date(nsToMs(ns)).toISOString().slice(0, 19);
  const us = String((ns / 1000n) % 1_000_000n).padStart(6, '0');
  return `${iso}.${us}`;
}
/** Swift X-Timestamp: seconds with five decimals. */
export const swiftTimestamp = (ns: bigint): string => (Number(ns / 10_000n) / 100_000).toFixed(5);

function etagList(h: string): string[] {
  return h.split(',').map((s) => s.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
}

/** RFC 9110 preconditions for GET/HEAD: 304, 412, or undefined to go on. */
export function preconditions(req: IncomingMessage, etag: string, mtimeNs: bigint): 304 | 412 | undefined {
  const sec = Math.floor(nsToMs(mtimeNs) / 1000);
  const im = req.headers['if-match'];
  if (im !== undefined) {
    const l = etagList(im);
    if (!l.includes('*') && !l.includes(etag)) return 412;
  } else {
    const ius = req.headers['if-unmodified-since'];
    const t = ius === undefined ? NaN : Date.parse(ius);
    if (!Number.isNaN(t) && sec > Math.floor(t / 1000)) return 412;
  }
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    const l = etagList(inm);
    if (l.includes('*') || l.includes(etag)) return 304;
  } else {
    const ims = req.headers['if-modified-since'];
    const t = ims === undefined ? NaN : Date.parse(ims);
    if (!Number.isNaN(t) && sec <= Math.floor(t / 1000)) return 304;
  }
  return undefined;
}

/** Read a small request body (XML documents) into memory; over `max` bytes is a 400. */
export async function readSmall(body: AsyncIterable<Uint8Array>, max: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw badRequest(`the request body exceeds ${max} bytes`, 'MaxMessageLengthExceeded');
    parts.push(c);
  }
  return Buffer.concat(parts, n);
}

/** Resolves true on 'drain', false if the response closed first. */
function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/**
 * Send [start, end) of a file as the body of a response whose head is already written. If the
 * file shrinks or changes while it is sent, the connection is cut instead of ending cleanly, so a
 * client can never take a mixture of two versions for a complete object.
 */
export function streamFile(res: ServerResponse, fs: FileSystem, who: Identity, a: Attr, start: number, end: number, gate: Gate): Promise<void> {
  return gate.run(() => sendRange(res, fs, who, a, start, end));
}

async function sendRange(res: ServerResponse, fs: FileSystem, who: Identity, a: Attr, start: number, end: number): Promise<void> {
  let sent = 0;
  for await (const c of readRange(fs, who, a.ino, start, end)) {
    if (res.destroyed) return;
    sent += c.length;
    if (!res.write(c) && !(await drained(res))) return;
  }
  let same = sent === end - start;
  if (same) {
    const now = await fs.getattr(who, a.ino).catch(() => undefined);
    same = now !== undefined && now.size === a.size && now.mtimeNs === a.mtimeNs;
  }
  if (!same) {
    res.destroy();
    return;
  }
  res.end();
}

/** The declared body length, when there is one (undefined for chunked bodies). */
export function contentLength(req: IncomingMessage): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined) return undefined;
  if (!/^\d{1,16}$/.test(h)) throw badRequest('malformed Content-Length', 'InvalidArgument');
  return Number(h);
}

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (contentLength(req) ?? 0) > 0;
}

export const lengthRequired = (): ApiError => new ApiError(411, 'MissingContentLength', 'a PUT needs Content-Length or chunked transfer encoding');

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function xmlUnescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]{1,6}|#\d{1,7});/g, (_, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
  });
}
