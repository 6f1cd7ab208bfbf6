/**
 * objapi: the HTTP object API over a volume's file namespace (bimodal access), Swift v1 and S3
 * (path style, SigV4) on one port. Containers/buckets are the top-level directories; an object key
 * is a file path below one. See docs/OBJECT-API.md.
 *
 * Invariants:
 * - Every request is authenticated (a Swift token or a SigV4 signature) before it touches the
 *   volume; only the Swift auth endpoint answers without one, and only to a correct key.
 * - No request can name anything outside its container: paths are split before decoding, and
 *   '.', '..', empty, over-long, NUL/control and reserved (.silt-objapi-*) names are refused with 400;
 *   symlinks are never followed.
 * - A PUT (and a multipart completion) never exposes a partial object: the body is written to a
 *   hidden temporary file and renamed into place, and the response is sent only after fsync made
 *   that commit durable. Every other successful mutation is also durable before it is answered.
 * - An ETag is the MD5 of the content. It is stamped in `user.silt.md5` with the inode generation
 *   it is valid for; any later change to the file makes the stamp stale, never wrong.
 * - Failures become HTTP statuses in one place (errors.ts toApiError); a malformed request gets a
 *   4xx, and no request can crash the server.
 */
export { startObjectApi, defaultLimits, type ObjectApi, type ObjectApiOptions } from './server.ts';
export type { Credential } from './auth.ts';
export type { ChangeSink } from './notify.ts';
export type { ObjectApiLimits, ObjectApiStats } from './context.ts';
export { toApiError, ApiError } from './errors.ts';
export { MD5_XATTR } from './etag.ts';
export { META_XATTR_PREFIX, CONTENT_TYPE_XATTR, compareKeys } from './namespace.ts';
export { RESERVED_PREFIX } from './paths.ts';
export { signingKey, canonicalRequest, uriEncode, EMPTY_SHA256 } from './sigv4.ts';
