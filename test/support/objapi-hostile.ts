/**
 * Hostile input for the object API: raw-socket requests (bytes exactly as written, for malformed
 * HTTP that node's client refuses to send) and a seeded generator of requests that must each be
 * refused with a 4xx: traversal ('..', '%2e%2e'), encoded slashes, NUL and control bytes, bad
 * escapes and UTF-8, over-long names and paths, reserved names, bad or missing credentials,
 * forged tokens, bad signatures, huge headers, malformed request lines.
 */
import { connect } from 'node:net';
import { Random } from '../../src/util/index.ts';
import { signS3, type Req } from './objapi-fixture.ts';

/** Send raw bytes, return everything the server sends back until it closes (or `timeoutMs`). */
export function rawRequest(port: number, data: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1');
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', done);
    s.on('close', done);
    s.on('error', done);
    s.write(data);
  });
}

/** The status code of the first response in raw bytes, or 0 if there is none. */
export function rawStatus(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(raw);
  return m ? Number(m[1]) : 0;
}

export type Hostile =
  | { via: 'swift' | 's3' | 'anon'; what: string; req: Req }
  | { via: 'raw'; what: string; bytes: string };

/** Segments that must never reach the fs layer. */
const BAD_SEGMENTS: Array<[string, string]> = [
  ['dotdot', '..'],
  ['dot', '.'],
  ['enc-dotdot', '%2e%2e'],
  ['enc-dotdot-mixed', '%2E.'],
  ['enc-dot', '%2E'],
  ['empty', ''],
  ['nul', '%00'],
  ['nul-mid', 'a%00b'],
  ['enc-slash', '%2F'],
  ['enc-slash-mid', 'etc%2fpasswd'],
  ['enc-dotdot-slash', '..%2F..%2Fetc'],
  ['bad-escape', '%ZZ'],
  ['cut-escape', 'abc%'],
  ['cut-escape2', 'abc%4'],
  ['bad-utf8', '%C3'],
  ['bad-utf8-ff', '%FF%FE'],
  ['overlong-utf8-dot', '%C0%AE%C0%AE'],
  ['newline', 'a%0Ab'],
  ['crlf', 'a%0D%0AX-Injected:%201'],
  ['tab', '%09'],
  ['del', '%7F'],
  ['reserved', '.silt-objapi-put-0123'],
  ['reserved-uploads', '.silt-objapi-uploads'],
  ['long-name', 'n'.repeat(256)],
  ['long-utf8-name', '%C3%A9'.repeat(128)],
];

function pick<T>(r: Random, a: readonly T[]): T {
  return a[Math.floor(r.next() * a.length)]!;
}

const NAMES = ['a', 'b', 'dir', 'file.txt', 'x%20y', 'caf%C3%A9', 'ok'];

/** A path below the account/bucket with at least one hostile element. */
function hostilePath(r: Random): { path: string; what: string } {
  const choice = r.next();
  if (choice < 0.1) {
    // over PATH_MAX with legal names
    const segs = Array.from({ length: 20 }, () => 'p'.repeat(250));
    return { path: segs.join('/'), what: 'long-path' };
  }
  const [what, bad] = pick(r, BAD_SEGMENTS);
  const n = 1 + Math.floor(r.next() * 4);
  const segs = Array.from({ length: n }, () => pick(r, NAMES));
  segs.splice(Math.floor(r.next() * (segs.length + 1)), 0, bad);
  // a leading empty segment would be the container, a trailing one a (legal) directory marker:
  // keep the hostile one inside
  if (segs[0] === '') segs.unshift('ok');
  if (segs[segs.length - 1] === '') segs.push('ok');
  return { path: segs.join('/'), what };
}

const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST'];

/**
 * `count` hostile requests from a seed. `container` exists and `token` is valid, so the only
 * reason to refuse each request is its hostile part.
 */
export function* hostileRequests(seed: number, count: number, port: number, account: string, token: string, container: string): Generator<Hostile> {
  const r = new Random(seed);
  for (let i = 0; i < count; i++) {
    const method = pick(r, METHODS);
    const body = method === 'PUT' || method === 'POST' ? 'x'.repeat(Math.floor(r.next() * 64)) : undefined;
    const { path, what } = hostilePath(r);
    const headers: Record<string, string> = {};
    if (r.next() < 0.2) headers['range'] = pick(r, ['bytes=0-', 'bytes=-1', 'bytes=9999999999999999999-', 'bytes=5-1', 'bytes=a-b', 'bytes=0-0,1-1,2-2']);
    const kind = r.next();
    if (kind < 0.35) {
      const inContainer = r.next() < 0.8;
      yield {
        via: 'swift',
        what: `swift ${method} ${what}`,
        req: { method, path: inContainer ? `${account}/${container}/${path}` : `${account}/${path}`, headers: { ...headers, 'x-auth-token': token }, ...(body !== undefined ? { body } : {}) },
      };
    } else if (kind < 0.7) {
      const inBucket = r.next() < 0.8;
      const req: Req = { method, path: inBucket ? `/${container}/${path}` : `/${path}`, headers, ...(body !== undefined ? { body } : {}) };
      yield { via: 's3', what: `s3 ${method} ${what}`, req: signS3(port, req) };
    } else if (kind < 0.85) {
      // credentials that must not work, on a harmless or a hostile path
      const bad = pick(r, ['no-token', 'forged-token', 'bad-sig', 'wrong-key', 'expired', 'sigv2', 'garbage-auth']);
      const req: Req = { method, path: `/${container}/${r.next() < 0.5 ? 'fine' : path}`, headers };
      let signed: Req;
      switch (bad) {
        case 'no-token':
          signed = { ...req, path: `${account}${req.path}` };
          break;
        case 'forged-token':
          signed = { ...req, path: `${account}${req.path}`, headers: { ...headers, 'x-auth-token': 'AUTH_tk' + Buffer.from(`9999999999\ntest:tester`).toString('base64url') + '.AAAA' } };
          break;
        case 'bad-sig': {
          const s = signS3(port, req);
          const h = { ...s.headers } as Record<string, string>;
          h['authorization'] = h['authorization']!.replace(/Signature=([0-9a-f])/, (_, c: string) => `Signature=${c === '0' ? '1' : '0'}`);
          signed = { ...s, headers: h };
          break;
        }
        case 'wrong-key':
          signed = signS3(port, req, { secret: 'not-the-key' });
          break;
        case 'expired':
          signed = signS3(port, req, { date: new Date(Date.now() - 3600_000) });
          break;
        case 'sigv2':
          signed = { ...req, headers: { ...headers, authorization: 'AWS test:tester:c2lnbmF0dXJl' } };
          break;
        default:
          signed = { ...req, headers: { ...headers, authorization: 'AWS4-HMAC-SHA256 garbage,,,==' } };
      }
      yield { via: 'anon', what: `auth ${bad} ${method}`, req: signed };
    } else {
      const t = Math.floor(r.next() * 10);
      const p = `${account}/${container}/${path}`;
      const lines: string[] = [
        `GET http://evil.example/${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${token}\r\n\r\n`,
        `GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET /${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${token}\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        `PUT ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        `GET ${p} HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBroken header line\r\n\r\n`,
        `GET ${p}\u0000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `PUT ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${token}\r\nContent-Length: abc\r\n\r\n`,
        `GET /${container}/caf\u00e9/../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${token}\r\n\r\n`,
        `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${token}\r\n\r\n`,
      ];
      yield { via: 'raw', what: `raw ${t} ${what}`, bytes: lines[t]! };
    }
  }
}
