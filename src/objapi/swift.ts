/**
 * The Swift dialect: v1 auth (/auth/v1.0), the account AUTH_<volume> (its containers are the
 * volume's top-level directories), containers and objects. Every request but auth needs a token
 * from X-Auth-Token (or X-Storage-Token). Errors are plain text with the status line's meaning.
 */
import { ApiError, badRequest, notFound } from './errors.ts';
import { hdr, metaFromHeaders, metaHeaders, safeHeaderValue, who, type Call, type Ctx } from './context.ts';
import { EMPTY_MD5, readRange } from './etag.ts';
import { contentLength, hasBody, httpDate, lengthRequired, parseRange, preconditions, streamFile, swiftDate, swiftTimestamp, xmlEscape } from './http.ts';
import { DIRECTORY_TYPE, compareKeys, isDir, type ListEntry, type ListOptions } from './namespace.ts';
import { checkKey, checkName, type Key } from './paths.ts';
import { rootIdentity, type Attr } from '../fs/index.ts';

const OBJECT_META = 'x-object-meta-';
const CONTAINER_META = 'x-container-meta-';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  416: 'Requested Range Not Satisfiable',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

export function swiftError(e: ApiError): { contentType: string; body: string } {
  const reason = REASONS[e.status] ?? 'Error';
  return { contentType: 'text/plain; charset=utf-8', body: `${e.status} ${reason}: ${e.message}\n` };
}

const methodNotAllowed = (allow: string): ApiError => new ApiError(405, 'MethodNotAllowed', 'method not allowed', { allow });

function send(c: Call, status: number, headers: Record<string, string | number>, body?: string | Buffer): void {
  c.res.writeHead(status, { ...headers, 'content-length': body === undefined ? 0 : Buffer.byteLength(body) });
  if (body === undefined || c.req.method === 'HEAD') c.res.end();
  else c.res.end(body);
}

export async function swiftRequest(ctx: Ctx, c: Call): Promise<void> {
  const segs = c.t.segments;
  if (segs[0] === 'auth' || segs[0] === 'v1.0') return authenticate(ctx, c);
  // segs[0] === 'v1'
  const token = hdr(c, 'x-auth-token') ?? hdr(c, 'x-storage-token');
  if (typeof token !== 'string' || token === '') throw new ApiError(401, 'AccessDenied', 'missing X-Auth-Token');
  const cred = ctx.auth.verify(token, ctx.clock.nowMs());
  if (!cred) throw new ApiError(401, 'AccessDenied', 'invalid or expired token');
  c.who = cred.identity ?? rootIdentity;
  const account = segs[1];
  if (account === undefined || account === '') throw notFound('bucket', 'no account in the path');
  if (account !== ctx.account) throw new ApiError(403, 'AccessDenied', `this token is for account ${ctx.account}`);
  if (segs.length === 2 || (segs.length === 3 && segs[2] === '')) return accountRequest(ctx, c);
  const container = segs[2]!;
  checkName(container, 'container');
  if (segs.length === 3 || (segs.length === 4 && segs[3] === '')) return containerRequest(ctx, c, container);
  return objectRequest(ctx, c, container, checkKey(container, segs.slice(3)));
}

// ------------------------------------------------------------------ auth

function authenticate(ctx: Ctx, c: Call): void {
  const segs = c.t.segments;
  const ok = (segs.length === 2 && segs[0] === 'auth' && (segs[1] === 'v1.0' || segs[1] === 'v1')) || (segs.length === 1 && segs[0] === 'v1.0');
  if (!ok) throw notFound('object', 'no such auth endpoint (use /auth/v1.0)');
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') throw methodNotAllowed('GET');
  const user = hdr(c, 'x-auth-user') ?? hdr(c, 'x-storage-user');
  const key = hdr(c, 'x-auth-key') ?? hdr(c, 'x-storage-pass');
  if (typeof user !== 'string' || typeof key !== 'string') throw new ApiError(401, 'AccessDenied', 'X-Auth-User and X-Auth-Key are required');
  const issued = ctx.auth.issue(user, key, ctx.clock.nowMs());
  if (!issued) throw new ApiError(401, 'AccessDenied', 'wrong user or key');
  const host = hostOf(c);
  send(c, 200, {
    'x-storage-url': `http://${host}/v1/${ctx.account}`,
    'x-auth-token': issued.token,
    'x-storage-token': issued.token,
    'x-auth-token-expires': String(Math.max(0, issued.expiresSec - Math.floor(ctx.clock.nowMs() / 1000))),
    'content-type': 'text/plain; charset=utf-8',
  });
}

/** The Host the client used (so the storage URL works through its address), if it looks sane. */
function hostOf(c: Call): string {
  const h = c.req.headers.host;
  if (h && /^[A-Za-z0-9.\-:[\]]{1,255}$/.test(h)) return h;
  const a = c.req.socket.localAddress ?? '127.0.0.1';
  return `${a.includes(':') ? `[${a}]` : a}:${c.req.socket.localPort ?? 80}`;
}

// ------------------------------------------------------------------ listings

type Format = 'json' | 'xml' | 'plain';

function format(c: Call): Format {
  const f = c.t.params.get('format');
  if (f === 'json' || f === 'xml' || f === 'plain') return f;
  if (f !== undefined) throw badRequest(`unknown format ${f.slice(0, 40)}`);
  const accept = c.req.headers.accept ?? '';
  if (accept.includes('application/json')) return 'json';
  if (accept.includes('application/xml') || accept.includes('text/xml')) return 'xml';
  return 'plain';
}

const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
  plain: 'text/plain; charset=utf-8',
};

function listOptions(ctx: Ctx, c: Call): ListOptions {
  const p = c.t.params;
  const limitText = p.get('limit');
  let limit = ctx.limits.swiftListingMax;
  if (limitText !== undefined) {
    if (!/^\d{1,9}$/.test(limitText)) throw badRequest('limit must be a whole number');
    limit = Number(limitText);
    if (limit > ctx.limits.swiftListingMax) throw new ApiError(412, 'PreconditionFailed', `limit exceeds ${ctx.limits.swiftListingMax}`);
  }
  for (const k of ['prefix', 'delimiter', 'marker', 'end_marker'] as const) {
    const v = p.get(k);
    if (v !== undefined && Buffer.byteLength(v) > 4096) throw badRequest(`${k} is too long`);
  }
  return { prefix: p.get('prefix') ?? '', delimiter: p.get('delimiter') ?? '', marker: p.get('marker') ?? '', endMarker: p.get('end_marker') ?? '', limit, emptyDirs: true };
}

async function accountRequest(ctx: Ctx, c: Call): Promise<void> {
  const me = who(c);
  const m = c.req.method;
  if (m === 'POST') {
    send(c, 204, {}); // account metadata is not kept
    return;
  }
  if (m !== 'GET' && m !== 'HEAD') throw methodNotAllowed('GET, HEAD, POST');
  const o = listOptions(ctx, c);
  const all = await ctx.ns.containers(me);
  const headers = {
    'x-account-container-count': String(all.length),
    'x-account-object-count': '0',
    'x-account-bytes-used': '0',
    'x-timestamp': swiftTimestamp(BigInt(ctx.clock.nowMs()) * 1_000_000n),
    'accept-ranges': 'bytes',
  };
  if (m === 'HEAD') {
    send(c, 204, headers);
    return;
  }
  const fmt = format(c);
  const names = all
    .map((x) => x.name)
    .filter((n) => n.startsWith(o.prefix) && (o.marker === '' || compareKeys(n, o.marker) > 0) && (o.endMarker === '' || compareKeys(n, o.endMarker) < 0))
    .slice(0, o.limit);
  let body: string;
  if (fmt === 'json') body = JSON.stringify(names.map((name) => ({ name, count: 0, bytes: 0 })));
  else if (fmt === 'xml') {
    body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${xmlEscape(ctx.account)}">` +
      names.map((n) => `<container><name>${xmlEscape(n)}</name><count>0</count><bytes>0</bytes></container>`).join('') +
      '</account>';
  } else body = names.map((n) => n + '\n').join('');
  if (fmt === 'plain' && names.length === 0) send(c, 204, headers);
  else send(c, 200, { ...headers, 'content-type': CONTENT_TYPES[fmt] }, body);
}

async function containerRequest(ctx: Ctx, c: Call, name: string): Promise<void> {
  const me = who(c);
  switch (c.req.method) {
    case 'PUT': {
      const created = await ctx.ns.createContainer(me, name);
      const meta = metaFromHeaders(c.req, CONTAINER_META);
      if (meta.size > 0) await updateMeta(ctx, c, await ctx.ns.container(me, name), meta);
      await ctx.fs.sync();
      send(c, created ? 201 : 202, {});
      return;
    }
    case 'POST': {
      const dir = await ctx.ns.container(me, name);
      await updateMeta(ctx, c, dir, metaFromHeaders(c.req, CONTAINER_META));
      await ctx.fs.sync();
      send(c, 204, {});
      return;
    }
    case 'DELETE':
      await ctx.ns.deleteContainer(me, name);
      await ctx.fs.sync();
      send(c, 204, {});
      return;
    case 'HEAD':
    case 'GET':
      break;
    default:
      throw methodNotAllowed('GET, HEAD, PUT, POST, DELETE');
  }
  const dir = await ctx.ns.container(me, name);
  const { meta } = await ctx.ns.readMeta(me, dir, name);
  const headers = {
    'x-container-object-count': '0',
    'x-container-bytes-used': '0',
    'x-timestamp': swiftTimestamp(dir.crtimeNs),
    'last-modified': httpDate(dir.mtimeNs),
    'accept-ranges': 'bytes',
    ...metaHeaders(meta, 'X-Container-Meta-', true),
  };
  if (c.req.method === 'HEAD') {
    send(c, 204, headers);
    return;
  }
  const o = listOptions(ctx, c);
  const fmt = format(c);
  const { items } = await ctx.ns.list(me, dir, o);
  const entries = await ctx.ns.describe(me, items, ctx.limits.listingEtagConcurrency);
  if (fmt === 'plain' && entries.length === 0) {
    send(c, 204, headers);
    return;
  }
  send(c, 200, { ...headers, 'content-type': CONTENT_TYPES[fmt] }, renderListing(fmt, name, entries));
}

function renderListing(fmt: Format, container: string, entries: readonly ListEntry[]): string {
  if (fmt === 'json') {
    return JSON.stringify(
      entries.map((e) =>
        'prefix' in e
          ? { subdir: e.prefix }
          : { name: e.key, hash: e.etag, bytes: e.attr.size, content_type: e.contentType, last_modified: swiftDate(e.attr.mtimeNs) },
      ),
    );
  }
  if (fmt === 'xml') {
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${xmlEscape(container)}">` +
      entries
        .map((e) =>
          'prefix' in e
            ? `<subdir name="${xmlEscape(e.prefix)}"><name>${xmlEscape(e.prefix)}</name></subdir>`
            : `<object><name>${xmlEscape(e.key)}</name><hash>${e.etag}</hash><bytes>${e.attr.size}</bytes>` +
              `<content_type>${xmlEscape(e.contentType)}</content_type><last_modified>${swiftDate(e.attr.mtimeNs)}</last_modified></object>`,
        )
        .join('') +
      '</container>'
    );
  }
  return entries.map((e) => ('prefix' in e ? e.prefix : e.key) + '\n').join('');
}

/** Container POST semantics: listed items are set, an empty value removes one, others stay. */
async function updateMeta(ctx: Ctx, c: Call, dir: Attr, meta: Map<string, Uint8Array>): Promise<void> {
  const me = who(c);
  const { meta: old } = await ctx.ns.readMeta(me, dir, '');
  for (const [k, v] of meta) {
    if (v.length === 0) old.delete(k);
    else old.set(k, v);
  }
  await ctx.ns.replaceMeta(me, dir, old, undefined);
}

// ------------------------------------------------------------------ objects

async function objectRequest(ctx: Ctx, c: Call, container: string, key: Key): Promise<void> {
  const me = who(c);
  switch (c.req.method) {
    case 'GET':
    case 'HEAD':
      return getObject(ctx, c, container, key);
    case 'PUT':
      return putObject(ctx, c, container, key);
    case 'POST': {
      const cont = await ctx.ns.container(me, container);
      const a = await ctx.ns.object(me, cont, key, true);
      if (!a) throw notFound('object', `${key.text} does not exist`);
      const before = await ctx.etags.cached(me, a);
      const changes = await ctx.ns.replaceMeta(me, a, metaFromHeaders(c.req, OBJECT_META), safeHeaderValue(c.req.headers['content-type']));
      if (before !== undefined) {
        // Metadata changed, content did not: keep the MD5 if nothing else happened meanwhile.
        const now = await ctx.fs.getattr(me, a.ino);
        if (now.generation === a.generation + changes) await ctx.etags.stamp(me, now, before, 1);
      }
      await ctx.fs.sync();
      send(c, 202, {});
      return;
    }
    case 'DELETE': {
      const cont = await ctx.ns.container(me, container);
      if (!(await ctx.ns.remove(me, cont, key, true))) throw notFound('object', `${key.text} does not exist`);
      await ctx.fs.sync();
      send(c, 204, {});
      return;
    }
    default:
      throw methodNotAllowed('GET, HEAD, PUT, POST, DELETE');
  }
}

async function getObject(ctx: Ctx, c: Call, container: string, key: Key): Promise<void> {
  const me = who(c);
  const cont = await ctx.ns.container(me, container);
  const a = await ctx.ns.object(me, cont, key, true);
  if (!a) throw notFound('object', `${key.text} does not exist`);
  const name = key.parts[key.parts.length - 1]!;
  const etag = isDir(a) ? EMPTY_MD5 : await ctx.etags.etag(me, a);
  const { contentType, meta } = await ctx.ns.readMeta(me, a, name);
  const size = isDir(a) ? 0 : a.size;
  const headers: Record<string, string> = {
    etag,
    'last-modified': httpDate(a.mtimeNs),
    'x-timestamp': swiftTimestamp(a.mtimeNs),
    'accept-ranges': 'bytes',
    'content-type': safeHeaderValue(contentType) ?? 'application/octet-stream',
    ...metaHeaders(meta, 'X-Object-Meta-', true),
  };
  const pre = preconditions(c.req, etag, a.mtimeNs);
  if (pre === 304) {
    c.res.writeHead(304, { etag, 'last-modified': headers['last-modified']! }).end();
    return;
  }
  if (pre === 412) throw new ApiError(412, 'PreconditionFailed', 'precondition failed');
  const range = parseRange(c.req.headers.range, size);
  if (range === 'unsatisfiable') throw new ApiError(416, 'InvalidRange', 'the range is not satisfiable', { 'content-range': `bytes */${size}` });
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

async function putObject(ctx: Ctx, c: Call, container: string, key: Key): Promise<void> {
  const me = who(c);
  const h = c.req.headers;
  if (hdr(c, 'x-object-manifest') !== undefined || c.t.params.has('multipart-manifest')) {
    throw new ApiError(501, 'NotImplemented', 'large object manifests (DLO/SLO) are not supported; upload whole objects');
  }
  const len = contentLength(c.req);
  if (len === undefined && h['transfer-encoding'] === undefined && hdr(c, 'x-copy-from') === undefined) throw lengthRequired();
  if (len !== undefined && len > ctx.limits.objectBytesMax) throw new ApiError(413, 'EntityTooLarge', `the object exceeds ${ctx.limits.objectBytesMax} bytes`);
  const inm = h['if-none-match'];
  if (inm !== undefined && inm !== '*') throw badRequest('only If-None-Match: * is supported on PUT');
  const expect = hdr(c, 'etag')?.replace(/^"(.*)"$/, '$1').toLowerCase();
  if (expect !== undefined && !/^[0-9a-f]{32}$/.test(expect)) throw new ApiError(422, 'BadDigest', 'the ETag header is not an MD5');
  const cont = await ctx.ns.container(me, container);
  const meta = metaFromHeaders(c.req, OBJECT_META);
  if (contentTypeOf(h['content-type']) === DIRECTORY_TYPE && len === 0 && !key.dir) {
    // swiftclient's marker for an empty directory: make it a directory on the mount too
    key = { ...key, dir: true, text: key.text + '/' };
  }
  let body: AsyncIterable<Uint8Array>;
  let contentType = safeHeaderValue(h['content-type']);
  const copyFrom = hdr(c, 'x-copy-from');
  if (copyFrom !== undefined) {
    if (hasBody(c.req)) throw badRequest('a copy (X-Copy-From) has no body');
    const src = await copySource(ctx, c, copyFrom);
    body = readRange(ctx.fs, me, src.ino, 0, src.size);
    if (contentType === undefined || meta.size === 0) {
      const old = await ctx.ns.readMeta(me, src, '');
      contentType ??= old.contentType;
      if (meta.size === 0) for (const [k, v] of old.meta) meta.set(k, v);
    }
  } else {
    body = c.body();
  }
  let received = 0;
  const counted = (async function* () {
    for await (const chunk of body) {
      received += chunk.length;
      yield chunk;
    }
  })();
  const r = await ctx.ns.put(me, cont, key, counted, {
    meta,
    contentType,
    noReplace: inm === '*',
    bytesMax: ctx.limits.objectBytesMax,
    checkMd5: (md5) => {
      if (expect !== undefined && md5 !== expect) throw new ApiError(422, 'BadDigest', 'the body does not match the ETag header');
    },
  });
  ctx.stats.bytesIn += received;
  send(c, 201, { etag: r.md5, 'last-modified': httpDate(r.attr.mtimeNs), 'content-type': 'text/html; charset=UTF-8' });
}

async function copySource(ctx: Ctx, c: Call, header: string): Promise<Attr> {
  let text: string;
  try {
    text = decodeURIComponent(header);
  } catch {
    throw badRequest('malformed X-Copy-From');
  }
  const parts = text.replace(/^\//, '').split('/');
  const container = parts[0] ?? '';
  checkName(container, 'container');
  const key = checkKey(container, parts.slice(1));
  if (key.dir) throw badRequest('cannot copy a directory marker');
  const me = who(c);
  const a = await ctx.ns.object(me, await ctx.ns.container(me, container), key);
  if (!a) throw notFound('object', `copy source ${container}/${key.text} does not exist`);
  return a;
}

const contentTypeOf = (v: string | undefined): string => (v ?? '').split(';')[0]!.trim().toLowerCase();
