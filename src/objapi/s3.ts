/**
 * The S3 dialect, path style (/bucket/key): buckets are the volume's top-level directories.
 * Every request is SigV4-verified first (header or presigned query). Supported: ListBuckets,
 * CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation, ListObjects (v1 and v2), PutObject,
 * CopyObject, GetObject (ranges, conditionals, response-* overrides), HeadObject, DeleteObject,
 * DeleteObjects, and multipart upload (create, upload part, complete, abort). Other
 * subresources answer 501 NotImplemented.
 */
import { createHash } from 'node:crypto';
import { rootIdentity, type Attr } from '../fs/index.ts';
import { hdr, metaFromHeaders, metaHeaders, rawBody, safeHeaderValue, who, type Call, type Ctx } from './context.ts';
import { ApiError, badRequest, notFound, toApiError } from './errors.ts';
import { EMPTY_MD5, readRange } from './etag.ts';
import {
  contentLength,
  hasBody,
  httpDate,
  isoDate,
  lengthRequired,
  parseRange,
  preconditions,
  readSmall,
  streamFile,
  xmlEscape,
  xmlUnescape,
} from './http.ts';
import { Multipart, PARTS_MAX, type CompletedPart } from './multipart.ts';
import { isDir, type ListOptions } from './namespace.ts';
import { checkBucketName, checkKey, checkName, keyFromText, type Key } from './paths.ts';
import { checkSha256, decodeAwsChunked, uriEncode, verifySigV4, type Payload } from './sigv4.ts';

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';
const AMZ_META = 'x-amz-meta-';
const LIST_MAX = 1000;
const DELETE_MAX = 1000;

/** Subresources this server does not implement (501 rather than a wrong answer). */
const UNSUPPORTED = [
  'acl', 'policy', 'policyStatus', 'cors', 'lifecycle', 'tagging', 'encryption', 'website', 'logging', 'notification',
  'replication', 'requestPayment', 'ownershipControls', 'object-lock', 'accelerate', 'analytics', 'inventory', 'metrics',
  'intelligent-tiering', 'publicAccessBlock', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'attributes',
  'versions', 'versionId',
];

export function s3Error(e: ApiError, requestId: string, resource: string): { contentType: string; body: string } {
  const path = resource.split('?')[0] ?? '';
  return {
    contentType: 'application/xml',
    body:
      XML_HEAD +
      `<Error><Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message>` +
      `<Resource>${xmlEscape(path.slice(0, 1024))}</Resource><RequestId>${requestId}</RequestId></Error>`,
  };
}

function send(c: Call, status: number, headers: Record<string, string>, body?: string): void {
  c.res.writeHead(status, { ...headers, 'content-length': String(body === undefined ? 0 : Buffer.byteLength(body)) });
  if (body === undefined || c.req.method === 'HEAD') c.res.end();
  else c.res.end(body);
}

const sendXml = (c: Call, xml: string, status = 200): void => send(c, status, { 'content-type': 'application/xml' }, XML_HEAD + xml);
const methodNotAllowed = (): ApiError => new ApiError(405, 'MethodNotAllowed', 'the method is not allowed against this resource');
const q = (s: string): string => `"${s}"`;

/** The body as the signature describes it: checked SHA-256, aws-chunked decoded, or as sent. */
function payloadBody(c: Call, p: Payload): AsyncIterable<Uint8Array> {
  const raw = rawBody(c);
  const enc = c.req.headers['content-encoding'] ?? '';
  const decoded = hdr(c, 'x-amz-decoded-content-length');
  const decodedLength = decoded !== undefined && /^\d{1,16}$/.test(decoded) ? Number(decoded) : undefined;
  if (p.kind === 'streaming-signed' || p.kind === 'streaming-unsigned-trailer' || /(^|,)\s*aws-chunked\s*(,|$)/.test(enc)) {
    return decodeAwsChunked(raw, p, decodedLength);
  }
  if (p.kind === 'sha256') return checkSha256(raw, p.hex);
  return raw;
}

export async function s3Request(ctx: Ctx, c: Call): Promise<void> {
  const method = c.req.method ?? '';
  const { credential, payload } = verifySigV4(
    { method, segments: c.t.segments, query: c.t.query, rawHeaders: c.req.rawHeaders },
    ctx.auth,
    ctx.region,
    ctx.clock.nowMs(),
  );
  c.who = credential.identity ?? rootIdentity;
  c.body = () => payloadBody(c, payload);
  for (const sub of UNSUPPORTED) {
    if (c.t.params.has(sub)) throw new ApiError(501, 'NotImplemented', `the ${sub} subresource is not supported`);
  }
  const segs = c.t.segments;
  if (segs.length === 0) {
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed();
    return listBuckets(ctx, c);
  }
  const bucket = segs[0]!;
  checkName(bucket, 'bucket');
  if (segs.length === 1 || (segs.length === 2 && segs[1] === '')) return bucketRequest(ctx, c, bucket);
  return objectRequest(ctx, c, bucket, checkKey(bucket, segs.slice(1)));
}

// ------------------------------------------------------------------ buckets

async function listBuckets(ctx: Ctx, c: Call): Promise<void> {
  const me = who(c);
  const out: string[] = [];
  for (const b of await ctx.ns.containers(me)) {
    const a = await ctx.fs.getattr(me, b.ino).catch(() => undefined);
    if (a) out.push(`<Bucket><Name>${xmlEscape(b.name)}</Name><CreationDate>${isoDate(a.crtimeNs)}</CreationDate></Bucket>`);
  }
  sendXml(c, `<ListAllMyBucketsResult xmlns="${XMLNS}"><Owner><ID>silt</ID><DisplayName>silt</DisplayName></Owner><Buckets>${out.join('')}</Buckets></ListAllMyBucketsResult>`);
}

async function bucketRequest(ctx: Ctx, c: Call, bucket: string): Promise<void> {
  const me = who(c);
  const p = c.t.params;
  switch (c.req.method) {
    case 'PUT': {
      checkBucketName(bucket);
      if (hasBody(c.req)) await readSmall(c.body(), ctx.limits.xmlBodyBytesMax); // CreateBucketConfiguration: one region here
      if (!(await ctx.ns.createContainer(me, bucket))) throw new ApiError(409, 'BucketAlreadyOwnedByYou', `bucket ${bucket} exists`);
      await ctx.fs.sync();
      send(c, 200, { location: `/${bucket}` });
      return;
    }
    case 'DELETE':
      try {
        await ctx.ns.deleteContainer(me, bucket);
      } catch (err) {
        const e = toApiError(err, 'bucket');
        throw e.status === 409 ? new ApiError(409, 'BucketNotEmpty', 'the bucket is not empty') : e;
      }
      await ctx.fs.sync();
      send(c, 204, {});
      return;
    case 'HEAD':
      await ctx.ns.container(me, bucket);
      send(c, 200, { 'x-amz-bucket-region': ctx.region });
      return;
    case 'POST':
      if (p.has('delete')) return deleteObjects(ctx, c, bucket);
      throw methodNotAllowed();
    case 'GET':
      break;
    default:
      throw methodNotAllowed();
  }
  const cont = await ctx.ns.container(me, bucket);
  if (p.has('location')) {
    const loc = ctx.region === 'us-east-1' ? '' : xmlEscape(ctx.region);
    sendXml(c, `<LocationConstraint xmlns="${XMLNS}">${loc}</LocationConstraint>`);
    return;
  }
  if (p.has('versioning')) {
    sendXml(c, `<VersioningConfiguration xmlns="${XMLNS}"/>`);
    return;
  }
  if (p.has('uploads')) throw new ApiError(501, 'NotImplemented', 'ListMultipartUploads is not supported');
  return listObjects(ctx, c, bucket, cont);
}

async function listObjects(ctx: Ctx, c: Call, bucket: string, cont: Attr): Promise<void> {
  const me = who(c);
  const p = c.t.params;
  const v2 = p.get('list-type') === '2';
  if (p.has('list-type') && !v2) throw badRequest('list-type must be 2');
  const enc = p.get('encoding-type');
  if (enc !== undefined && enc !== 'url') throw badRequest('encoding-type must be url');
  const e = (s: string): string => xmlEscape(enc === 'url' ? uriEncode(s, true) : s);
  const maxText = p.get('max-keys');
  let maxKeys = LIST_MAX;
  if (maxText !== undefined) {
    if (!/^\d{1,9}$/.test(maxText)) throw badRequest('max-keys must be a whole number');
    maxKeys = Math.min(Number(maxText), LIST_MAX);
  }
  const prefix = p.get('prefix') ?? '';
  const delimiter = p.get('delimiter') ?? '';
  let marker: string;
  const token = p.get('continuation-token');
  if (v2) {
    if (token !== undefined) {
      const t = Buffer.from(token, 'base64url').toString('utf8');
      if (!t.startsWith('k:') || Buffer.from(t, 'utf8').toString('base64url') !== token) throw badRequest('the continuation token is not valid');
      marker = t.slice(2);
    } else marker = p.get('start-after') ?? '';
  } else marker = p.get('marker') ?? '';
  for (const v of [prefix, delimiter, marker]) if (Buffer.byteLength(v) > 4096) throw badRequest('a listing parameter is too long');
  const o: ListOptions = { prefix, delimiter, marker, endMarker: '', limit: maxKeys, emptyDirs: false };
  const { items, truncated } = maxKeys === 0 ? { items: [], truncated: false } : await ctx.ns.list(me, cont, o);
  const entries = await ctx.ns.describe(me, items, ctx.limits.listingEtagConcurrency);
  const contents: string[] = [];
  const prefixes: string[] = [];
  for (const x of entries) {
    if ('prefix' in x) prefixes.push(`<CommonPrefixes><Prefix>${e(x.prefix)}</Prefix></CommonPrefixes>`);
    else {
      contents.push(
        `<Contents><Key>${e(x.key)}</Key><LastModified>${isoDate(x.attr.mtimeNs)}</LastModified>` +
          `<ETag>&quot;${x.etag}&quot;</ETag><Size>${x.attr.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
  }
  const last = items[items.length - 1];
  const lastKey = last === undefined ? '' : 'prefix' in last ? last.prefix : last.key;
  let head = `<Name>${xmlEscape(bucket)}</Name><Prefix>${e(prefix)}</Prefix>`;
  if (v2) {
    head += `<KeyCount>${contents.length + prefixes.length}</KeyCount>`;
    if (token !== undefined) head += `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`;
    if (truncated) head += `<NextContinuationToken>${Buffer.from('k:' + lastKey, 'utf8').toString('base64url')}</NextContinuationToken>`;
    if (p.has('start-after')) head += `<StartAfter>${e(p.get('start-after')!)}</StartAfter>`;
  } else {
    head += `<Marker>${e(marker)}</Marker>`;
    if (truncated) head += `<NextMarker>${e(lastKey)}</NextMarker>`;
  }
  head += `<MaxKeys>${maxKeys}</MaxKeys>`;
  if (delimiter !== '') head += `<Delimiter>${e(delimiter)}</Delimiter>`;
  if (enc) head += `<EncodingType>url</EncodingType>`;
  head += `<IsTruncated>${truncated}</IsTruncated>`;
  sendXml(c, `<ListBucketResult xmlns="${XMLNS}">${head}${contents.join('')}${prefixes.join('')}</ListBucketResult>`);
}

/** Tiny extraction of <Tag>text</Tag> blocks from the small XML documents S3 clients send. */
function xmlBlocks(xml: string, tag: string): string[] {
  const re = new RegExp(`<(?:\\w+:)?${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:\\w+:)?${tag}>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]!);
}
/** A value field (Quiet, PartNumber, ETag): surrounding whitespace is formatting, not content. */
function xmlText(xml: string, tag: string): string | undefined {
  const b = xmlBlocks(xml, tag)[0];
  return b === undefined ? undefined : xmlUnescape(b.trim());
}
/**
 * An object key: taken exactly as sent, never trimmed or normalized. Keys are bytes; ' x ' and 'x'
 * are two objects, and trimming once made DeleteObjects delete an object the client did not name.
 */
function xmlKey(xml: string): string | undefined {
  const b = xmlBlocks(xml, 'Key')[0];
  return b === undefined ? undefined : xmlUnescape(b);
}

async function deleteObjects(ctx: Ctx, c: Call, bucket: string): Promise<void> {
  const me = who(c);
  const cont = await ctx.ns.container(me, bucket);
  const xml = (await readSmall(c.body(), ctx.limits.xmlBodyBytesMax)).toString('utf8');
  const md5 = c.req.headers['content-md5'];
  if (md5 !== undefined && createHash('md5').update(xml).digest('base64') !== md5) throw badRequest('Content-MD5 does not match the body', 'BadDigest');
  const objects = xmlBlocks(xml, 'Object');
  if (!/<(\w+:)?Delete[\s>]/.test(xml)) throw badRequest('the body is not a Delete document', 'MalformedXML');
  if (objects.length > DELETE_MAX) throw badRequest(`at most ${DELETE_MAX} keys per request`, 'MalformedXML');
  const quiet = xmlText(xml, 'Quiet') === 'true';
  const out: string[] = [];
  for (const o of objects) {
    const k = xmlKey(o);
    if (k === undefined) throw badRequest('an Object without a Key', 'MalformedXML');
    try {
      await ctx.ns.remove(me, cont, keyFromText(bucket, k));
      if (!quiet) out.push(`<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`);
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) throw err;
      out.push(`<Error><Key>${xmlEscape(k)}</Key><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message></Error>`);
    }
  }
  await ctx.fs.sync();
  sendXml(c, `<DeleteResult xmlns="${XMLNS}">${out.join('')}</DeleteResult>`);
}

// ------------------------------------------------------------------ objects

async function objectRequest(ctx: Ctx, c: Call, bucket: string, key: Key): Promise<void> {
  const me = who(c);
  const p = c.t.params;
  const mpu = new Multipart(ctx.fs, ctx.ns, ctx.etags, ctx.log);
  switch (c.req.method) {
    case 'GET':
    case 'HEAD':
      if (p.has('uploadId')) throw new ApiError(501, 'NotImplemented', 'ListParts is not supported');
      return getObject(ctx, c, bucket, key);
    case 'PUT': {
      if (p.has('uploadId') || p.has('partNumber')) {
        if (hdr(c, 'x-amz-copy-source') !== undefined) throw new ApiError(501, 'NotImplemented', 'UploadPartCopy is not supported');
        const id = p.get('uploadId') ?? '';
        const n = Number(p.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > PARTS_MAX) throw badRequest(`partNumber must be 1..${PARTS_MAX}`);
        const len = contentLength(c.req);
        if (len === undefined && c.req.headers['transfer-encoding'] === undefined) throw lengthRequired();
        if (len !== undefined && len > ctx.limits.objectBytesMax) throw new ApiError(413, 'EntityTooLarge', 'the part is too large');
        await ctx.ns.container(me, bucket);
        const md5 = await mpu.uploadPart(me, bucket, key, id, n, withContentMd5(c, counted(ctx, c.body())), ctx.limits.objectBytesMax);
        send(c, 200, { etag: q(md5) });
        return;
      }
      if (hdr(c, 'x-amz-copy-source') !== undefined) return copyObject(ctx, c, bucket, key);
      return putObject(ctx, c, bucket, key);
    }
    case 'POST': {
      const cont = await ctx.ns.container(me, bucket);
      if (p.has('uploads')) {
        if (key.dir) throw badRequest('a multipart upload needs an object key, not a directory marker');
        const id = await mpu.create(me, bucket, key, safeHeaderValue(c.req.headers['content-type']), metaFromHeaders(c.req, AMZ_META), ctx.clock.nowMs());
        sendXml(c, `<InitiateMultipartUploadResult xmlns="${XMLNS}"><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key.text)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
        return;
      }
      if (p.has('uploadId')) {
        const xml = (await readSmall(c.body(), ctx.limits.xmlBodyBytesMax)).toString('utf8');
        const parts: CompletedPart[] = [];
        for (const b of xmlBlocks(xml, 'Part')) {
          const n = Number(xmlText(b, 'PartNumber'));
          const etag = (xmlText(b, 'ETag') ?? '').replace(/^"(.*)"$/, '$1').toLowerCase();
          if (!Number.isInteger(n)) throw badRequest('a Part without a PartNumber', 'MalformedXML');
          parts.push({ partNumber: n, etag });
        }
        const r = await mpu.complete(me, cont, bucket, key, p.get('uploadId')!, parts, ctx.limits.multipartBytesMax);
        sendXml(
          c,
          `<CompleteMultipartUploadResult xmlns="${XMLNS}"><Location>/${xmlEscape(bucket)}/${xmlEscape(key.text)}</Location>` +
            `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key.text)}</Key><ETag>&quot;${r.md5}&quot;</ETag></CompleteMultipartUploadResult>`,
        );
        return;
      }
      throw methodNotAllowed();
    }
    case 'DELETE': {
      const cont = await ctx.ns.container(me, bucket);
      if (p.has('uploadId')) {
        await mpu.abort(me, bucket, key, p.get('uploadId')!);
        send(c, 204, {});
        return;
      }
      if (await ctx.ns.remove(me, cont, key)) await ctx.fs.sync();
      send(c, 204, {});
      return;
    }
    default:
      throw methodNotAllowed();
  }
}

function counted(ctx: Ctx, body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return (async function* () {
    for await (const chunk of body) {
      ctx.stats.bytesIn += chunk.length;
      yield chunk;
    }
  })();
}

/** Check Content-MD5 (base64) at the end of the body, before anything is published. */
function withContentMd5(c: Call, body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const want = c.req.headers['content-md5'];
  if (want === undefined) return body;
  return (async function* () {
    const h = createHash('md5');
    for await (const chunk of body) {
      h.update(chunk);
      yield chunk;
    }
    if (h.digest('base64') !== want) throw badRequest('the body does not match Content-MD5', 'BadDigest');
  })();
}

async function getObject(ctx: Ctx, c: Call, bucket: string, key: Key): Promise<void> {
  const me = who(c);
  const cont = await ctx.ns.container(me, bucket);
  const a = await ctx.ns.object(me, cont, key);
  if (!a) throw notFound('object', `${key.text} does not exist`);
  const dir = isDir(a);
  const etag = dir ? EMPTY_MD5 : await ctx.etags.etag(me, a);
  const { contentType, meta } = await ctx.ns.readMeta(me, a, key.parts[key.parts.length - 1]!);
  const size = dir ? 0 : a.size;
  const headers: Record<string, string> = {
    etag: q(etag),
    'last-modified': httpDate(a.mtimeNs),
    'accept-ranges': 'bytes',
    'content-type': safeHeaderValue(contentType) ?? 'application/octet-stream',
    ...metaHeaders(meta, AMZ_META, false),
  };
  for (const [param, h] of [
    ['response-content-type', 'content-type'],
    ['response-content-language', 'content-language'],
    ['response-expires', 'expires'],
    ['response-cache-control', 'cache-control'],
    ['response-content-disposition', 'content-disposition'],
    ['response-content-encoding', 'content-encoding'],
  ] as const) {
    const v = safeHeaderValue(c.t.params.get(param));
    if (v !== undefined) headers[h] = v;
  }
  const pre = preconditions(c.req, etag, a.mtimeNs);
  if (pre === 304) {
    c.res.writeHead(304, { etag: q(etag), 'last-modified': headers['last-modified']! }).end();
    return;
  }
  if (pre === 412) throw new ApiError(412, 'PreconditionFailed', 'at least one of the preconditions did not hold');
  const range = parseRange(c.req.headers.range, size);
  if (range === 'unsatisfiable') throw new ApiError(416, 'InvalidRange', 'the requested range is not satisfiable', { 'content-range': `bytes */${size}` });
  const start = range?.start ?? 0;
  const end = range?.end ?? size;
  if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${size}`;
  c.res.writeHead(range ? 206 : 200, { ...headers, 'content-length': String(end - start) });
  if (c.req.method === 'HEAD' || end === start) {
    c.res.end();
    return;
  }
  ctx.stats.bytesOut += end - start;
  await streamFile(c.res, ctx.fs, me, a, start, end, ctx.streams);
}

function putChecks(ctx: Ctx, c: Call): { noReplace: boolean } {
  const inm = c.req.headers['if-none-match'];
  if (inm !== undefined && inm !== '*') throw new ApiError(501, 'NotImplemented', 'only If-None-Match: * is supported on PUT');
  if (c.req.headers['if-match'] !== undefined) throw new ApiError(501, 'NotImplemented', 'If-Match on PUT is not supported');
  void ctx;
  return { noReplace: inm === '*' };
}

async function putObject(ctx: Ctx, c: Call, bucket: string, key: Key): Promise<void> {
  const me = who(c);
  const len = contentLength(c.req);
  if (len === undefined && c.req.headers['transfer-encoding'] === undefined) throw lengthRequired();
  const decoded = hdr(c, 'x-amz-decoded-content-length');
  const size = decoded !== undefined && /^\d{1,16}$/.test(decoded) ? Number(decoded) : len;
  if (size !== undefined && size > ctx.limits.objectBytesMax) throw new ApiError(413, 'EntityTooLarge', `the object exceeds ${ctx.limits.objectBytesMax} bytes`);
  const { noReplace } = putChecks(ctx, c);
  const cont = await ctx.ns.container(me, bucket);
  const meta = metaFromHeaders(c.req, AMZ_META);
  const r = await ctx.ns.put(me, cont, key, withContentMd5(c, counted(ctx, c.body())), {
    meta,
    contentType: safeHeaderValue(c.req.headers['content-type']),
    noReplace,
    bytesMax: ctx.limits.objectBytesMax,
  });
  send(c, 200, { etag: q(r.md5) });
}

async function copyObject(ctx: Ctx, c: Call, bucket: string, key: Key): Promise<void> {
  const me = who(c);
  if (hasBody(c.req)) throw badRequest('CopyObject has no body');
  const { noReplace } = putChecks(ctx, c);
  let text: string;
  try {
    text = decodeURIComponent(String(hdr(c, 'x-amz-copy-source')).split('?')[0]!);
  } catch {
    throw badRequest('malformed x-amz-copy-source');
  }
  const [srcBucket = '', ...rest] = text.replace(/^\//, '').split('/');
  checkName(srcBucket, 'bucket');
  const srcKey = checkKey(srcBucket, rest);
  if (srcKey.dir) throw badRequest('cannot copy a directory marker');
  const src = await ctx.ns.object(me, await ctx.ns.container(me, srcBucket), srcKey);
  if (!src) throw notFound('object', `copy source ${srcBucket}/${srcKey.text} does not exist`);
  const srcEtag = await ctx.etags.etag(me, src);
  const ifm = hdr(c, 'x-amz-copy-source-if-match');
  if (ifm !== undefined && ifm.replace(/"/g, '') !== srcEtag) throw new ApiError(412, 'PreconditionFailed', 'x-amz-copy-source-if-match did not hold');
  const ifnm = hdr(c, 'x-amz-copy-source-if-none-match');
  if (ifnm !== undefined && ifnm.replace(/"/g, '') === srcEtag) throw new ApiError(412, 'PreconditionFailed', 'x-amz-copy-source-if-none-match did not hold');
  const directive = hdr(c, 'x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') throw badRequest('x-amz-metadata-directive must be COPY or REPLACE');
  let meta: Map<string, Uint8Array>;
  let contentType: string | undefined;
  if (directive === 'REPLACE') {
    meta = metaFromHeaders(c.req, AMZ_META);
    contentType = safeHeaderValue(c.req.headers['content-type']);
  } else {
    if (srcBucket === bucket && srcKey.text === key.text) {
      throw badRequest('copying an object onto itself needs x-amz-metadata-directive: REPLACE', 'InvalidRequest');
    }
    const m = await ctx.ns.readMeta(me, src, srcKey.parts[srcKey.parts.length - 1]!);
    meta = m.meta;
    contentType = m.contentType;
  }
  const cont = await ctx.ns.container(me, bucket);
  const r = await ctx.ns.put(me, cont, key, readRange(ctx.fs, me, src.ino, 0, src.size), { meta, contentType, noReplace, bytesMax: ctx.limits.objectBytesMax });
  sendXml(c, `<CopyObjectResult xmlns="${XMLNS}"><LastModified>${isoDate(r.attr.mtimeNs)}</LastModified><ETag>&quot;${r.md5}&quot;</ETag></CopyObjectResult>`);
}
