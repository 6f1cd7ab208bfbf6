/**
 * Test support for the object API: an in-process SiltFileSystem over a LocalStore in a temporary
 * directory with the object API on a free loopback port, a raw HTTP client (node:http, so paths
 * are sent exactly as written: no normalisation of '..' or '%2e'), Swift v1 login, and an
 * independent SigV4 signer (written from the AWS documentation, not shared with the server).
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileSystem, type SiltFileSystem } from '../../src/fs/index.ts';
import { startObjectApi, type ObjectApi, type ObjectApiOptions } from '../../src/objapi/index.ts';
import { openStore, type ObjectStore } from '../../src/objstore/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';

export const USER = 'test:tester';
export const KEY = 'testing-secret-key';
export const REGION = 'us-east-1';

export interface Fixture {
  dir: string;
  store: ObjectStore;
  fs: SiltFileSystem;
  api: ObjectApi;
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Close the API and the fs; fsck the volume; remove the directory. Returns fsck's verdict. */
  close(): Promise<{ clean: boolean; problems: string[] }>;
}

/** `wrapStore`: the file system sees the store through this (a counting wrapper, say); fsck does not. */
export async function startFixture(extra: Partial<ObjectApiOptions> = {}, wrapStore?: (s: ObjectStore) => ObjectStore): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'silt-objapi-'));
  const store = await openStore(`file:${dir}`, { create: true });
  const fs = await openFileSystem({ store: wrapStore ? wrapStore(store) : store, create: true, flushIntervalMs: 200 });
  const api = await startObjectApi({
    fs,
    listen: { host: '127.0.0.1', port: 0 },
    credentials: [{ user: USER, key: KEY }],
    ...extra,
  });
  return {
    dir,
    store,
    fs,
    api,
    url: api.url,
    port: api.address.port,
    async close() {
      await api.close();
      await fs.close();
      const rep = await checkVolume(store, 'default');
      await store.close();
      await rm(dir, { recursive: true, force: true });
      return { clean: rep.clean, problems: rep.problems.map((p) => `${p.severity} ${p.where}: ${p.message}`) };
    },
  };
}

export interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface Req {
  method?: string;
  /** Raw request target, sent as is. */
  path: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });

/** One HTTP request (kept-alive connections); never rejects on HTTP errors, only on socket failure. */
export function http(port: number, r: Req): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: r.method ?? 'GET', path: r.path, headers: r.headers ?? {}, agent: keepAlive },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const body = Buffer.concat(parts);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (r.body !== undefined) req.end(r.body);
    else req.end();
  });
}

// ------------------------------------------------------------------ Swift

export interface SwiftSession {
  token: string;
  storageUrl: string;
  /** Path prefix of the account: /v1/AUTH_default */
  account: string;
}

export async function swiftLogin(port: number, user = USER, key = KEY): Promise<SwiftSession> {
  const r = await http(port, { path: '/auth/v1.0', headers: { 'x-auth-user': user, 'x-auth-key': key } });
  if (r.status !== 200) throw new Error(`swift auth: ${r.status} ${r.text}`);
  const storageUrl = String(r.headers['x-storage-url']);
  return { token: String(r.headers['x-auth-token']), storageUrl, account: new URL(storageUrl).pathname };
}

/** A Swift request below the account: `rel` like "/c/o?format=json" (already encoded). */
export function swift(port: number, s: SwiftSession, method: string, rel: string, headers: Record<string, string | number> = {}, body?: Buffer | string): Promise<Resp> {
  return http(port, { method, path: s.account + rel, headers: { 'x-auth-token': s.token, ...headers }, ...(body !== undefined ? { body } : {}) });
}

// ------------------------------------------------------------------ S3 (SigV4)

const sha256 = (d: string | Buffer): string => createHash('sha256').update(d).digest('hex');
const hmac = (k: Buffer | string, d: string): Buffer => createHmac('sha256', k).update(d).digest();

/** RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes. */
export function awsEncode(s: string, slash = false): string {
  return Array.from(Buffer.from(s, 'utf8'))
    .map((b) => {
      const ch = String.fromCharCode(b);
      return /[A-Za-z0-9_.~-]/.test(ch) || (slash && ch === '/') ? ch : '%' + b.toString(16).toUpperCase().padStart(2, '0');
    })
    .join('');
}

function canonicalPath(rawPath: string): string {
  return rawPath
    .split('/')
    .map((seg) => {
      try {
        return awsEncode(decodeURIComponent(seg));
      } catch {
        return seg;
      }
    })
    .join('/');
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  return rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      const v = eq < 0 ? '' : p.slice(eq + 1);
      const d = (x: string): string => {
        try {
          return decodeURIComponent(x);
        } catch {
          return x;
        }
      };
      return [awsEncode(d(k)), awsEncode(d(v))] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export interface SignOptions {
  accessKey?: string;
  secret?: string;
  region?: string;
  date?: Date;
  /** 'UNSIGNED-PAYLOAD' or a hex hash; default: the body's SHA-256. */
  payloadHash?: string;
}

/** Sign a request in place (header form) and return it. */
export function signS3(port: number, r: Req, o: SignOptions = {}): Req {
  const date = (o.date ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = date.slice(0, 8);
  const region = o.region ?? REGION;
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body);
  const payloadHash = o.payloadHash ?? sha256(body);
  const headers: Record<string, string | number> = { ...(r.headers ?? {}), host: `127.0.0.1:${port}`, 'x-amz-date': date, 'x-amz-content-sha256': payloadHash };
  const names = Object.keys(headers)
    .map((h) => h.toLowerCase())
    .filter((h) => h === 'host' || h.startsWith('x-amz-') || h === 'content-type' || h === 'content-md5' || h === 'range')
    .sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const q = r.path.indexOf('?');
  const rawPath = q < 0 ? r.path : r.path.slice(0, q);
  const rawQuery = q < 0 ? '' : r.path.slice(q + 1);
  const creq = [
    r.method ?? 'GET',
    canonicalPath(rawPath),
    canonicalQuery(rawQuery),
    names.map((n) => `${n}:${lower[n]!.trim().replace(/\s+/g, ' ')}\n`).join(''),
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(creq)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + (o.secret ?? KEY), day), region), 's3'), 'aws4_request');
  const sig = createHmac('sha256', key).update(toSign).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${o.accessKey ?? USER}/${scope}, SignedHeaders=${names.join(';')}, Signature=${sig}`;
  return { ...r, headers };
}

export function s3(port: number, r: Req, o: SignOptions = {}): Promise<Resp> {
  return http(port, signS3(port, r, o));
}

/** A presigned GET URL path (query form). */
export function presign(port: number, path: string, expiresSec: number, o: SignOptions = {}): string {
  const date = (o.date ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = date.slice(0, 8);
  const region = o.region ?? REGION;
  const scope = `${day}/${region}/s3/aws4_request`;
  const params: Array<[string, string]> = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${o.accessKey ?? USER}/${scope}`],
    ['X-Amz-Date', date],
    ['X-Amz-Expires', String(expiresSec)],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  const qs = params.map(([k, v]) => `${awsEncode(k)}=${awsEncode(v)}`).join('&');
  const creq = ['GET', canonicalPath(path), canonicalQuery(qs), `host:127.0.0.1:${port}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(creq)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + (o.secret ?? KEY), day), region), 's3'), 'aws4_request');
  const sig = createHmac('sha256', key).update(toSign).digest('hex');
  return `${path}?${qs}&X-Amz-Signature=${sig}`;
}

export const md5hex = (d: Buffer | string): string => createHash('md5').update(d).digest('hex');
