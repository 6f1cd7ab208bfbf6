/**
 * Request targets: the raw URL split into decoded path segments and query pairs, and the rules a
 * name must pass before it reaches the fs layer. Every refusal is a 400; nothing here touches the
 * volume, so no request can name anything outside a container by construction:
 *
 * - the raw path is split on '/' first, then each segment is percent-decoded; a decoded '/'
 *   (%2F), NUL, C0 control or DEL, malformed %-escapes and invalid UTF-8 are refused;
 * - '.', '..' and empty segments (a//b) are refused wherever they appear (also as %2e%2e);
 * - a segment over NAME_MAX (255) bytes, or a path over PATH_MAX (4096) bytes, is refused;
 * - names starting with RESERVED_PREFIX ('.silt-objapi-') belong to the server (temporary PUT files,
 *   multipart parts) and are refused in requests and hidden from listings.
 */
import { NAME_MAX, PATH_MAX } from '../fs/index.ts';
import { ApiError, badRequest } from './errors.ts';

export const RESERVED_PREFIX = '.silt-objapi-';

export interface Target {
  /** Decoded path segments; an empty final segment means the path ended in '/'. */
  segments: string[];
  /** Decoded query pairs, in order (SigV4 signs them all). */
  query: Array<[string, string]>;
  /** The first value of each query name. */
  params: Map<string, string>;
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest(`malformed percent-encoding in the ${what}`, 'InvalidURI');
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const NON_ASCII = /[^\u0000-\u007f]/;

/** Parse `req.url`. Only origin-form targets ("/path?query") are accepted. */
export function parseTarget(url: string | undefined): Target {
  if (!url || url[0] !== '/') throw badRequest('the request target must be an absolute path', 'InvalidURI');
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  if (rawPath.includes('#') || rawQuery.includes('#')) throw badRequest('fragment in the request target', 'InvalidURI');
  // Names travel percent-encoded; a raw non-ASCII byte would arrive as latin1 and be misread.
  if (NON_ASCII.test(url)) throw badRequest('non-ASCII characters in the request target must be percent-encoded', 'InvalidURI');
  const segments: string[] = [];
  const raw = rawPath.slice(1).split('/');
  for (const r of raw) {
    const s = decode(r, 'path');
    if (s.includes('/')) throw badRequest('an encoded slash (%2F) in the path is not allowed', 'InvalidURI');
    if (s.includes('\0')) throw badRequest('NUL in the path', 'InvalidURI');
    segments.push(s);
  }
  // "/": no segments at all
  if (segments.length === 1 && segments[0] === '') segments.length = 0;
  const query: Array<[string, string]> = [];
  const params = new Map<string, string>();
  if (rawQuery !== '') {
    for (const part of rawQuery.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = decode(eq < 0 ? part : part.slice(0, eq), 'query');
      const v = decode(eq < 0 ? '' : part.slice(eq + 1), 'query');
      if (k.includes('\0') || v.includes('\0')) throw badRequest('NUL in the query', 'InvalidURI');
      query.push([k, v]);
      if (!params.has(k)) params.set(k, v);
    }
  }
  return { segments, query, params };
}

/** A name (container, bucket or path component) that may reach the fs layer. */
export function checkName(name: string, what: string): void {
  if (name === '') throw badRequest(`empty ${what} name (a '//' in the path?)`, 'InvalidURI');
  if (name === '.' || name === '..') throw badRequest(`'${name}' is not a valid ${what} name`, 'InvalidURI');
  if (CONTROL.test(name)) throw badRequest(`control characters in the ${what} name`, 'InvalidURI');
  if (name.startsWith(RESERVED_PREFIX)) throw badRequest(`names starting with ${RESERVED_PREFIX} are reserved`, 'InvalidURI');
  const n = Buffer.byteLength(name, 'utf8');
  if (n > NAME_MAX) throw new ApiError(400, 'KeyTooLongError', `a ${what} name of ${n} bytes exceeds ${NAME_MAX} bytes`);
}

/** An object key split into checked components. `dir` = the key ended in '/' (a directory marker). */
export interface Key {
  parts: string[];
  dir: boolean;
  /** The key as clients name it (components joined by '/', trailing '/' for a directory marker). */
  text: string;
}

/** Check the container and the object path segments after it (at least one). */
export function checkKey(container: string, segs: readonly string[]): Key {
  if (segs.length === 0) throw badRequest('missing object name', 'InvalidURI');
  const dir = segs[segs.length - 1] === '';
  const parts = dir ? segs.slice(0, -1) : segs.slice();
  if (parts.length === 0) throw badRequest('missing object name', 'InvalidURI');
  for (const p of parts) checkName(p, 'object path component');
  const text = parts.join('/') + (dir ? '/' : '');
  const total = Buffer.byteLength(container, 'utf8') + 1 + Buffer.byteLength(text, 'utf8');
  if (total >= PATH_MAX) throw new ApiError(400, 'KeyTooLongError', `a path of ${total} bytes exceeds ${PATH_MAX - 1} bytes`);
  return { parts, dir, text };
}

/** Split a key given as a string (S3 CopySource, multipart records) the same way. */
export function keyFromText(container: string, text: string): Key {
  return checkKey(container, text.split('/'));
}

/** Listing names: what a walk may show (reserved, control-character and empty names are hidden). */
export function listable(name: string): boolean {
  return name !== '' && !name.startsWith(RESERVED_PREFIX) && !CONTROL.test(name) && !name.includes('\uFFFD');
}

/** S3 bucket naming rules (for CreateBucket; other buckets are whatever directories exist). */
export function checkBucketName(name: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new ApiError(400, 'InvalidBucketName', `'${name.slice(0, 80)}' is not a valid bucket name`);
  }
}
