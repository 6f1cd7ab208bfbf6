/**
 * AWS Signature Version 4 verification (header and presigned-query forms) and the S3 payload
 * encodings a signature can cover: a hex SHA-256 of the body (checked as it streams; a mismatch
 * fails the request before anything is published), UNSIGNED-PAYLOAD, and aws-chunked bodies,
 * either with per-chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) or unsigned with a
 * trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER; a CRC32 trailer is checked).
 *
 * The canonical request is rebuilt from the decoded path and query (then re-encoded with SigV4's
 * UriEncode), so the signature covers exactly the names the server acts on.
 */
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ApiError, badRequest } from './errors.ts';
import { safeEqual, type Authenticator, type Credential } from './auth.ts';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const ALGORITHM = 'AWS4-HMAC-SHA256';
const SKEW_MS = 15 * 60 * 1000;
const PRESIGN_EXPIRES_MAX_S = 7 * 24 * 3600;

export type Payload =
  | { kind: 'unsigned' }
  | { kind: 'sha256'; hex: string }
  | { kind: 'streaming-signed'; signingKey: Buffer; amzDate: string; scope: string; seedSignature: string }
  | { kind: 'streaming-unsigned-trailer' };

export interface SigV4Input {
  method: string;
  /** Decoded path segments, as parseTarget returns them. */
  segments: readonly string[];
  query: ReadonlyArray<readonly [string, string]>;
  /** req.rawHeaders: name, value, name, value, ... */
  rawHeaders: readonly string[];
}

export interface SigV4Result {
  credential: Credential;
  payload: Payload;
}

/** SigV4 UriEncode: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper case); '/' kept in paths. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const sha256Hex = (d: string | Uint8Array): string => createHash('sha256').update(d).digest('hex');
const hmac = (k: Uint8Array | string, d: string): Buffer => createHmac('sha256', k).update(d).digest();

export function signingKey(secret: string, date: string, region: string, service = 's3'): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
}

function header(raw: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === name) v = v === undefined ? raw[i + 1]! : `${v},${raw[i + 1]!}`;
  }
  return v;
}

function canonicalHeaderValue(raw: readonly string[], name: string): string {
  const vals: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === name) vals.push(raw[i + 1]!.trim().replace(/\s+/g, ' '));
  }
  return vals.join(',');
}

export function canonicalRequest(
  input: SigV4Input,
  signedHeaders: readonly string[],
  payloadHash: string,
  omitQuery?: string,
): string {
  const uri = '/' + input.segments.map((s) => uriEncode(s)).join('/');
  const q = input.query
    .filter(([k]) => k !== omitQuery)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = signedHeaders.map((h) => `${h}:${canonicalHeaderValue(input.rawHeaders, h)}\n`).join('');
  return [input.method, uri, q, headers, signedHeaders.join(';'), payloadHash].join('\n');
}

const denied = (message: string, code = 'AccessDenied'): ApiError => new ApiError(403, code, message);
const malformed = (message: string): ApiError => new ApiError(400, 'AuthorizationHeaderMalformed', message);

function parseAmzDate(s: string | undefined): number {
  const m = s === undefined ? null : /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw denied('missing or malformed X-Amz-Date (want YYYYMMDDTHHMMSSZ)');
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (!Number.isFinite(t)) throw denied('malformed X-Amz-Date');
  return t;
}

/** Does this request carry SigV4 (or another AWS signature) at all? */
export function hasAwsAuth(rawHeaders: readonly string[], params: ReadonlyMap<string, string>): boolean {
  const a = header(rawHeaders, 'authorization');
  return (
    (a !== undefined && /^AWS4?[- ]/.test(a)) ||
    params.has('X-Amz-Algorithm') ||
    params.has('X-Amz-Signature') ||
    (params.has('AWSAccessKeyId') && params.has('Signature'))
  );
}

/** Verify a request's SigV4 signature; throws ApiError 400/403 when it is missing or wrong. */
export function verifySigV4(input: SigV4Input, auth: Authenticator, region: string, nowMs: number): SigV4Result {
  const authz = header(input.rawHeaders, 'authorization');
  const presigned = authz === undefined && input.query.some(([k]) => k === 'X-Amz-Algorithm');
  let credText: string;
  let signedText: string;
  let signature: string;
  let amzDate: string | undefined;
  if (presigned) {
    const q = new Map(input.query.map(([k, v]) => [k, v]));
    if (q.get('X-Amz-Algorithm') !== ALGORITHM) throw denied('only AWS4-HMAC-SHA256 is supported');
    credText = q.get('X-Amz-Credential') ?? '';
    signedText = q.get('X-Amz-SignedHeaders') ?? '';
    signature = q.get('X-Amz-Signature') ?? '';
    amzDate = q.get('X-Amz-Date');
  } else {
    if (authz === undefined && input.query.some(([k]) => k === 'AWSAccessKeyId')) {
      throw denied('AWS Signature Version 2 (presigned AWSAccessKeyId/Signature URLs) is not supported; sign with SigV4 (aws CLI: s3.signature_version = s3v4)');
    }
    if (authz === undefined) throw denied('the request is not signed');
    if (!authz.startsWith(ALGORITHM + ' ')) throw denied('only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported');
    const fields = new Map<string, string>();
    for (const part of authz.slice(ALGORITHM.length + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    credText = fields.get('Credential') ?? '';
    signedText = fields.get('SignedHeaders') ?? '';
    signature = fields.get('Signature') ?? '';
    amzDate = header(input.rawHeaders, 'x-amz-date');
  }
  const cred = credText.split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request') throw malformed('Credential must be KEY/DATE/REGION/s3/aws4_request');
  const [keyId, date, reg, service] = cred as [string, string, string, string, string];
  if (service !== 's3') throw malformed(`the credential scope names service ${service}, not s3`);
  if (reg !== region) throw malformed(`the credential scope names region ${reg}; this server is ${region}`);
  if (!/^[0-9a-f]{64}$/.test(signature)) throw denied('malformed signature', 'SignatureDoesNotMatch');
  const signed = signedText.split(';');
  if (!signed.includes('host') || signed.some((h) => h === '' || h !== h.toLowerCase())) {
    throw malformed('SignedHeaders must be lower case and include host');
  }
  const t = parseAmzDate(amzDate);
  if (amzDate!.slice(0, 8) !== date) throw malformed('the credential scope date is not the X-Amz-Date day');
  if (presigned) {
    const expires = Number(input.query.find(([k]) => k === 'X-Amz-Expires')?.[1]);
    if (!Number.isInteger(expires) || expires < 1 || expires > PRESIGN_EXPIRES_MAX_S) throw denied('X-Amz-Expires must be 1..604800 seconds');
    if (nowMs > t + expires * 1000) throw denied('the request has expired');
    if (t - nowMs > SKEW_MS) throw denied('X-Amz-Date is in the future', 'RequestTimeTooSkewed');
  } else if (Math.abs(nowMs - t) > SKEW_MS) {
    throw denied('the difference between the request time and the server time is too large', 'RequestTimeTooSkewed');
  }
  const credential = auth.credential(keyId);
  if (!credential) throw denied('the access key id does not exist', 'InvalidAccessKeyId');

  const contentSha = header(input.rawHeaders, 'x-amz-content-sha256');
  let payloadHash: string;
  if (presigned) payloadHash = contentSha ?? 'UNSIGNED-PAYLOAD';
  else if (contentSha === undefined) throw badRequest('missing x-amz-content-sha256', 'InvalidRequest');
  else payloadHash = contentSha;

  const scope = `${date}/${reg}/s3/aws4_request`;
  const creq = canonicalRequest(input, signed, payloadHash, presigned ? 'X-Amz-Signature' : undefined);
  const toSign = [ALGORITHM, amzDate, scope, sha256Hex(creq)].join('\n');
  const key = signingKey(credential.key, date, reg);
  const want = createHmac('sha256', key).update(toSign).digest('hex');
  if (!safeEqual(Buffer.from(want), Buffer.from(signature))) {
    throw denied('the request signature we calculated does not match the signature you provided', 'SignatureDoesNotMatch');
  }

  let payload: Payload;
  if (payloadHash === 'UNSIGNED-PAYLOAD') payload = { kind: 'unsigned' };
  else if (/^[0-9a-f]{64}$/.test(payloadHash)) payload = { kind: 'sha256', hex: payloadHash };
  else if (payloadHash === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD') {
    payload = { kind: 'streaming-signed', signingKey: key, amzDate: amzDate!, scope, seedSignature: signature };
  } else if (payloadHash === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') payload = { kind: 'streaming-unsigned-trailer' };
  else throw new ApiError(501, 'NotImplemented', `x-amz-content-sha256 ${payloadHash.slice(0, 64)} is not supported`);
  return { credential, payload };
}

/** The body, checked against its SHA-256 as it streams (a mismatch throws at the end). */
export async function* checkSha256(src: AsyncIterable<Uint8Array>, hex: string): AsyncGenerator<Uint8Array> {
  const h = createHash('sha256');
  for await (const c of src) {
    h.update(c);
    yield c;
  }
  if (h.digest('hex') !== hex) throw badRequest('the body does not match x-amz-content-sha256', 'XAmzContentSHA256Mismatch');
}

const incomplete = (): ApiError => badRequest('the aws-chunked body is malformed or incomplete', 'IncompleteBody');

/**
 * Decode an aws-chunked body ("<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n" ... "0...\r\n",
 * then optional trailer lines and "\r\n"). With `signed`, every chunk's signature is checked in
 * chain from the seed signature; without, a x-amz-checksum-crc32 trailer is checked if present.
 */
export async function* decodeAwsChunked(
  src: AsyncIterable<Uint8Array>,
  payload: Payload,
  decodedLength: number | undefined,
): AsyncGenerator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  const more = async (): Promise<boolean> => {
    const r = await it.next();
    if (r.done) return false;
    buf = buf.length ? Buffer.concat([buf, r.value]) : Buffer.from(r.value);
    return true;
  };
  const line = async (eofOk = false): Promise<string | undefined> => {
    for (;;) {
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        const l = buf.subarray(0, i).toString('latin1');
        buf = buf.subarray(i + 2);
        return l;
      }
      if (buf.length > 8192) throw incomplete();
      if (!(await more())) {
        if (eofOk && buf.length === 0) return undefined;
        throw incomplete();
      }
    }
  };
  const signed = payload.kind === 'streaming-signed' ? payload : undefined;
  let prevSig = signed?.seedSignature ?? '';
  let total = 0;
  let crc = 0;
  for (;;) {
    const head = (await line())!;
    const [sizeHex, ...exts] = head.split(';');
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeHex ?? '')) throw incomplete();
    const size = parseInt(sizeHex!, 16);
    let sig: string | undefined;
    for (const e of exts) if (e.startsWith('chunk-signature=')) sig = e.slice('chunk-signature='.length);
    if (signed && (sig === undefined || !/^[0-9a-f]{64}$/.test(sig))) throw new ApiError(403, 'SignatureDoesNotMatch', 'a chunk has no signature');
    const h = signed ? createHash('sha256') : undefined;
    let left = size;
    while (left > 0) {
      if (buf.length === 0 && !(await more())) throw incomplete();
      const take = buf.subarray(0, Math.min(left, buf.length));
      buf = buf.subarray(take.length);
      left -= take.length;
      total += take.length;
      h?.update(take);
      if (!signed) crc = crc32(take, crc);
      if (decodedLength !== undefined && total > decodedLength) throw incomplete();
      yield take;
    }
    if (signed) {
      const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', signed.amzDate, signed.scope, prevSig, EMPTY_SHA256, h!.digest('hex')].join('\n');
      const want = createHmac('sha256', signed.signingKey).update(toSign).digest('hex');
      if (!safeEqual(Buffer.from(want), Buffer.from(sig!))) throw new ApiError(403, 'SignatureDoesNotMatch', 'a chunk signature does not match');
      prevSig = want;
    }
    if (size === 0) break;
    if ((await line()) !== '') throw incomplete();
  }
  // Trailers ("name:value" lines) up to an empty line; a body may also simply end here.
  for (let n = 0; ; n++) {
    const l = await line(true);
    if (l === undefined || l === '') break;
    if (n > 16) throw incomplete();
    const colon = l.indexOf(':');
    if (colon < 0) throw incomplete();
    const name = l.slice(0, colon).trim().toLowerCase();
    const value = l.slice(colon + 1).trim();
    if (name === 'x-amz-checksum-crc32' && !signed) {
      const want = Buffer.alloc(4);
      want.writeUInt32BE(crc >>> 0);
      if (want.toString('base64') !== value) throw badRequest('the body does not match its x-amz-checksum-crc32 trailer', 'BadDigest');
    }
  }
  if (decodedLength !== undefined && total !== decodedLength) throw incomplete();
}
