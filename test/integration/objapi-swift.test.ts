/**
 * The Swift dialect of the object API through plain HTTP requests, against an in-process
 * SiltFileSystem over a LocalStore in a temporary directory: v1 auth and tokens, account and
 * container operations, object PUT/GET/HEAD/POST/DELETE, ranges, conditionals, metadata, and
 * listing semantics (prefix, delimiter, marker, end_marker, limit, formats) against a model.
 * The volume must fsck clean at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { http, md5hex, startFixture, swift, swiftLogin, KEY, USER, type Fixture, type SwiftSession } from '../support/objapi-fixture.ts';
import { rootIdentity as root } from '../../src/fs/index.ts';
import { rawRequest } from '../support/objapi-hostile.ts';

let f: Fixture;
let s: SwiftSession;
let now = Date.now();

before(async () => {
  f = await startFixture({ clock: { nowMs: () => now, sleep: async () => {} }, tokenTtlMs: 60_000 });
  s = await swiftLogin(f.port);
});
after(async () => {
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

const enc = (key: string): string => key.split('/').map(encodeURIComponent).join('/');

describe('auth', () => {
  test('v1 auth returns a token and a storage URL for the volume account', async () => {
    const r = await http(f.port, { path: '/auth/v1.0', headers: { 'x-auth-user': USER, 'x-auth-key': KEY } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['x-auth-token']), /^AUTH_tk/);
    assert.equal(r.headers['x-storage-url'], `http://127.0.0.1:${f.port}/v1/AUTH_default`);
    assert.equal(r.headers['x-storage-token'], r.headers['x-auth-token']);
  });

  test('wrong key, unknown user, missing headers: 401', async () => {
    const bad: Array<Record<string, string>> = [{ 'x-auth-user': USER, 'x-auth-key': 'nope' }, { 'x-auth-user': 'x:y', 'x-auth-key': KEY }, {}];
    for (const h of bad) {
      const r = await http(f.port, { path: '/auth/v1.0', headers: h });
      assert.equal(r.status, 401, JSON.stringify(h));
    }
  });

  test('no token, forged token, altered token, expired token: 401; other account: 403', async () => {
    assert.equal((await http(f.port, { path: s.account })).status, 401);
    assert.equal((await swift(f.port, { ...s, token: 'AUTH_tkforged.abc' }, 'GET', '')).status, 401);
    const t = s.token;
    const altered = t.slice(0, -2) + (t.endsWith('A') ? 'BB' : 'AA');
    assert.equal((await swift(f.port, { ...s, token: altered }, 'GET', '')).status, 401);
    // a token for someone else's key would need the server secret: swap the user inside the payload
    const payload = Buffer.from(t.slice('AUTH_tk'.length, t.lastIndexOf('.')), 'base64url').toString();
    const other = 'AUTH_tk' + Buffer.from(payload.replace(USER, 'admin:admin')).toString('base64url') + t.slice(t.lastIndexOf('.'));
    assert.equal((await swift(f.port, { ...s, token: other }, 'GET', '')).status, 401);
    assert.equal((await http(f.port, { path: '/v1/AUTH_other', headers: { 'x-auth-token': s.token } })).status, 403);
    const old = await swiftLogin(f.port);
    now += 61_000;
    try {
      assert.equal((await swift(f.port, old, 'GET', '')).status, 401, 'expired');
    } finally {
      now -= 61_000;
    }
    assert.equal((await swift(f.port, old, 'GET', '')).status, 204, 'valid again inside its lifetime');
  });
});

describe('containers', () => {
  test('PUT creates (201), again is 202; HEAD; listed in the account; DELETE empty 204, non-empty 409', async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/box')).status, 201);
    assert.equal((await swift(f.port, s, 'PUT', '/box')).status, 202);
    assert.equal((await swift(f.port, s, 'HEAD', '/box')).status, 204);
    assert.equal((await swift(f.port, s, 'HEAD', '/nobox')).status, 404);
    const acct = await swift(f.port, s, 'GET', '?format=json');
    assert.equal(acct.status, 200);
    assert.ok((JSON.parse(acct.text) as Array<{ name: string }>).some((c) => c.name === 'box'));
    const plain = await swift(f.port, s, 'GET', '');
    assert.ok(plain.text.split('\n').includes('box'));
    assert.equal((await swift(f.port, s, 'PUT', '/box/file', {}, 'x')).status, 201);
    assert.equal((await swift(f.port, s, 'DELETE', '/box')).status, 409);
    assert.equal((await swift(f.port, s, 'DELETE', '/box/file')).status, 204);
    assert.equal((await swift(f.port, s, 'DELETE', '/box')).status, 204);
    assert.equal((await swift(f.port, s, 'DELETE', '/box')).status, 404);
  });

  test('a container that holds only empty directories counts as empty', async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/hollow')).status, 201);
    const d = await f.fs.lookupPath(root, 'hollow');
    const a = await f.fs.mkdir(root, d.ino, 'a', 0o755);
    await f.fs.mkdir(root, a.ino, 'b', 0o755);
    assert.equal((await swift(f.port, s, 'DELETE', '/hollow')).status, 204);
  });

  test('container metadata: PUT/POST set, empty value removes, HEAD shows', async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/meta', { 'x-container-meta-owner': 'ann' })).status, 201);
    assert.equal((await swift(f.port, s, 'POST', '/meta', { 'x-container-meta-color': 'red' })).status, 204);
    let h = await swift(f.port, s, 'HEAD', '/meta');
    assert.equal(h.headers['x-container-meta-owner'], 'ann');
    assert.equal(h.headers['x-container-meta-color'], 'red');
    await swift(f.port, s, 'POST', '/meta', { 'x-container-meta-owner': '' });
    h = await swift(f.port, s, 'HEAD', '/meta');
    assert.equal(h.headers['x-container-meta-owner'], undefined);
    assert.equal(h.headers['x-container-meta-color'], 'red');
  });
});

describe('objects', () => {
  before(async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/obj')).status, 201);
  });

  test('PUT then GET/HEAD: body, ETag = MD5, length, type, metadata; parents created', async () => {
    const body = Buffer.from('hello, bimodal world\n');
    const r = await swift(f.port, s, 'PUT', '/obj/deep/er/hello.txt', { 'content-type': 'text/x-greeting', 'x-object-meta-Color': 'blue', 'x-object-meta-two-words': 'a b' }, body);
    assert.equal(r.status, 201);
    assert.equal(r.headers.etag, md5hex(body));
    const g = await swift(f.port, s, 'GET', '/obj/deep/er/hello.txt');
    assert.equal(g.status, 200);
    assert.deepEqual(g.body, body);
    assert.equal(g.headers.etag, md5hex(body));
    assert.equal(g.headers['content-type'], 'text/x-greeting');
    assert.equal(g.headers['x-object-meta-color'], 'blue');
    assert.equal(g.headers['x-object-meta-two-words'], 'a b');
    const h = await swift(f.port, s, 'HEAD', '/obj/deep/er/hello.txt');
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(body.length));
    assert.equal(h.body.length, 0);
    // the same bytes through the fs layer
    const a = await f.fs.lookupPath(root, 'obj/deep/er/hello.txt');
    assert.deepEqual(Buffer.from(await f.fs.read(root, a.ino, 0, 1000)), body);
    assert.deepEqual(Buffer.from(await f.fs.getxattr(root, a.ino, 'user.swift.meta.color')), Buffer.from('blue'));
  });

  test('PUT with a wrong ETag is 422 and leaves nothing; with the right one, 201', async () => {
    const r = await swift(f.port, s, 'PUT', '/obj/checked', { etag: md5hex('other') }, 'payload');
    assert.equal(r.status, 422);
    assert.equal((await swift(f.port, s, 'HEAD', '/obj/checked')).status, 404);
    const names = (await f.fs.readdir(root, (await f.fs.lookupPath(root, 'obj')).ino, 0n, 100)).map((e) => e.name);
    assert.ok(!names.some((n) => n.startsWith('.silt-objapi-')), `no temporary file left: ${names.join(' ')}`);
    assert.equal((await swift(f.port, s, 'PUT', '/obj/checked', { etag: md5hex('payload') }, 'payload')).status, 201);
  });

  test('PUT replaces atomically; If-None-Match: * refuses an existing object (412)', async () => {
    await swift(f.port, s, 'PUT', '/obj/replace', {}, 'one');
    assert.equal((await swift(f.port, s, 'PUT', '/obj/replace', { 'if-none-match': '*' }, 'two')).status, 412);
    assert.equal((await swift(f.port, s, 'GET', '/obj/replace')).text, 'one');
    assert.equal((await swift(f.port, s, 'PUT', '/obj/replace', {}, 'three')).status, 201);
    assert.equal((await swift(f.port, s, 'GET', '/obj/replace')).text, 'three');
    assert.equal((await swift(f.port, s, 'PUT', '/obj/fresh', { 'if-none-match': '*' }, 'new')).status, 201);
  });

  test('PUT without Content-Length or chunked encoding is 411; into a missing container 404; over a directory 409', async () => {
    const raw = await rawRequest(f.port, `PUT ${s.account}/obj/nolen HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ${s.token}\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 411 /);
    assert.equal((await swift(f.port, s, 'PUT', '/nocontainer/x', {}, 'x')).status, 404);
    await swift(f.port, s, 'PUT', '/obj/adir/inside', {}, 'x');
    assert.equal((await swift(f.port, s, 'PUT', '/obj/adir', {}, 'x')).status, 409);
    assert.equal((await swift(f.port, s, 'PUT', '/obj/adir/inside/below', {}, 'x')).status, 409, 'a file in the way of a directory');
  });

  test('an upload cut short publishes nothing and leaves no temporary file', async () => {
    await swift(f.port, s, 'PUT', '/obj/cut', {}, 'previous');
    await new Promise<void>((resolve) => {
      const sock = connect(f.port, '127.0.0.1', () => {
        sock.write(`PUT ${s.account}/obj/cut HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ${s.token}\r\nContent-Length: 100000\r\n\r\n`);
        sock.write(Buffer.alloc(5000, 1));
        setTimeout(() => sock.destroy(), 200);
      });
      sock.on('close', () => resolve());
      sock.on('error', () => {});
    });
    const dir = (await f.fs.lookupPath(root, 'obj')).ino;
    for (let i = 0; i < 50; i++) {
      const names = (await f.fs.readdir(root, dir, 0n, 1000)).map((e) => e.name);
      if (!names.some((n) => n.startsWith('.silt-objapi-'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const names = (await f.fs.readdir(root, dir, 0n, 1000)).map((e) => e.name);
    assert.ok(!names.some((n) => n.startsWith('.silt-objapi-')), names.join(' '));
    assert.equal((await swift(f.port, s, 'GET', '/obj/cut')).text, 'previous');
  });

  test('chunked PUT (no Content-Length)', async () => {
    const r = await http(f.port, { method: 'PUT', path: `${s.account}/obj/chunked`, headers: { 'x-auth-token': s.token, 'transfer-encoding': 'chunked' }, body: 'streamed body' });
    assert.equal(r.status, 201);
    assert.equal((await swift(f.port, s, 'GET', '/obj/chunked')).text, 'streamed body');
  });

  test('ranges: 206 with Content-Range; suffix and open ranges; 416 past the end; invalid ignored', async () => {
    const body = Buffer.from('0123456789abcdefghij');
    await swift(f.port, s, 'PUT', '/obj/ranged', {}, body);
    const cases: Array<[string, number, string, string | undefined]> = [
      ['bytes=0-4', 206, '01234', 'bytes 0-4/20'],
      ['bytes=15-', 206, 'fghij', 'bytes 15-19/20'],
      ['bytes=-3', 206, 'hij', 'bytes 17-19/20'],
      ['bytes=18-100', 206, 'ij', 'bytes 18-19/20'],
      ['bytes=-100', 206, body.toString(), 'bytes 0-19/20'],
      ['bytes=5-3', 200, body.toString(), undefined],
      ['bytes=0-1,4-5', 200, body.toString(), undefined],
      ['pages=1-2', 200, body.toString(), undefined],
    ];
    for (const [range, status, text, cr] of cases) {
      const r = await swift(f.port, s, 'GET', '/obj/ranged', { range });
      assert.equal(r.status, status, range);
      assert.equal(r.text, text, range);
      assert.equal(r.headers['content-range'], cr, range);
      assert.equal(r.headers.etag, md5hex(body), range);
    }
    for (const range of ['bytes=20-', 'bytes=99-100', 'bytes=-0']) {
      const r = await swift(f.port, s, 'GET', '/obj/ranged', { range });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], 'bytes */20');
    }
    await swift(f.port, s, 'PUT', '/obj/empty', {}, '');
    assert.equal((await swift(f.port, s, 'GET', '/obj/empty', { range: 'bytes=0-' })).status, 416);
    const e = await swift(f.port, s, 'GET', '/obj/empty');
    assert.equal(e.status, 200);
    assert.equal(e.headers.etag, 'd41d8cd98f00b204e9800998ecf8427e');
  });

  test('conditional GET: If-None-Match 304, If-Match 412', async () => {
    await swift(f.port, s, 'PUT', '/obj/cond', {}, 'cond');
    const etag = md5hex('cond');
    assert.equal((await swift(f.port, s, 'GET', '/obj/cond', { 'if-none-match': `"${etag}"` })).status, 304);
    assert.equal((await swift(f.port, s, 'GET', '/obj/cond', { 'if-match': '"0000"' })).status, 412);
    assert.equal((await swift(f.port, s, 'GET', '/obj/cond', { 'if-match': etag })).status, 200);
  });

  test('POST replaces user metadata and keeps the content and its ETag', async () => {
    await swift(f.port, s, 'PUT', '/obj/posted', { 'x-object-meta-a': '1', 'x-object-meta-b': '2' }, 'post me');
    const before = f.api.stats().md5Computed;
    assert.equal((await swift(f.port, s, 'POST', '/obj/posted', { 'x-object-meta-c': '3', 'content-type': 'text/plain' })).status, 202);
    const h = await swift(f.port, s, 'HEAD', '/obj/posted');
    assert.equal(h.headers['x-object-meta-a'], undefined);
    assert.equal(h.headers['x-object-meta-c'], '3');
    assert.equal(h.headers['content-type'], 'text/plain');
    assert.equal(h.headers.etag, md5hex('post me'));
    assert.equal(f.api.stats().md5Computed, before, 'the MD5 stamp survived the metadata change');
    assert.equal((await swift(f.port, s, 'POST', '/obj/missing', { 'x-object-meta-c': '3' })).status, 404);
  });

  test('metadata limits are 400', async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/obj/m1', { ['x-object-meta-' + 'n'.repeat(129)]: 'v' }, 'x')).status, 400);
    assert.equal((await swift(f.port, s, 'PUT', '/obj/m2', { 'x-object-meta-v': 'v'.repeat(257) }, 'x')).status, 400);
    const many: Record<string, string> = {};
    for (let i = 0; i < 91; i++) many[`x-object-meta-k${i}`] = 'v';
    assert.equal((await swift(f.port, s, 'PUT', '/obj/m3', many, 'x')).status, 400);
  });

  test('X-Copy-From copies content and metadata', async () => {
    await swift(f.port, s, 'PUT', '/obj/src', { 'x-object-meta-origin': 'src' }, 'copied bytes');
    const r = await swift(f.port, s, 'PUT', '/obj/copies/dst', { 'x-copy-from': '/obj/src', 'content-length': 0 });
    assert.equal(r.status, 201);
    const g = await swift(f.port, s, 'GET', '/obj/copies/dst');
    assert.equal(g.text, 'copied bytes');
    assert.equal(g.headers['x-object-meta-origin'], 'src');
    assert.equal((await swift(f.port, s, 'PUT', '/obj/copies/x', { 'x-copy-from': '/obj/none', 'content-length': 0 })).status, 404);
  });

  test('DELETE removes the file and the directories it leaves empty; 404 when missing', async () => {
    await swift(f.port, s, 'PUT', '/obj/t/u/v/leaf', {}, 'x');
    await swift(f.port, s, 'PUT', '/obj/t/keep', {}, 'x');
    assert.equal((await swift(f.port, s, 'DELETE', '/obj/t/u/v/leaf')).status, 204);
    assert.equal((await swift(f.port, s, 'DELETE', '/obj/t/u/v/leaf')).status, 404);
    await assert.rejects(f.fs.lookupPath(root, 'obj/t/u'), /ENOENT/);
    await f.fs.lookupPath(root, 'obj/t/keep');
  });

  test('an application/directory PUT makes a directory; listed as one while empty; GET and DELETE work on it', async () => {
    const r = await swift(f.port, s, 'PUT', '/obj/dirs/empty', { 'content-type': 'application/directory', 'content-length': 0 });
    assert.equal(r.status, 201);
    const a = await f.fs.lookupPath(root, 'obj/dirs/empty');
    assert.equal(a.mode & 0o170000, 0o040000);
    const l = JSON.parse((await swift(f.port, s, 'GET', '/obj?format=json&prefix=dirs/')).text) as Array<{ name: string; hash: string; content_type: string; bytes: number }>;
    assert.equal(l.length, 1);
    assert.equal(l[0]!.name, 'dirs/empty');
    assert.equal(l[0]!.hash, 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(l[0]!.bytes, 0);
    assert.equal(l[0]!.content_type, 'application/directory');
    const g = await swift(f.port, s, 'GET', '/obj/dirs/empty');
    assert.equal(g.status, 200);
    assert.equal(g.headers['content-type'], 'application/directory');
    await swift(f.port, s, 'PUT', '/obj/dirs/empty/now-full', {}, 'x');
    const l2 = JSON.parse((await swift(f.port, s, 'GET', '/obj?format=json&prefix=dirs/')).text) as Array<{ name: string }>;
    assert.deepEqual(l2.map((e) => e.name), ['dirs/empty/now-full'], 'a non-empty directory is implied by its contents');
    assert.equal((await swift(f.port, s, 'DELETE', '/obj/dirs/empty/now-full')).status, 204);
  });
});

describe('listing', () => {
  // Byte order is not UTF-16 order: U+1F600 (a surrogate pair) sorts after U+E000 and U+FB01.
  const keys = ['a.txt', 'a/b/c', 'a/b/d', 'a/c', 'a-b', 'b/x', 'b/y/z', 'caf\u00e9', 'cafe', 'd/e/f/g', 'z', '\u{1F600}', '\uE000x', '\uFB01'];
  before(async () => {
    assert.equal((await swift(f.port, s, 'PUT', '/list')).status, 201);
    // 'a' and 'a/...' cannot both exist in a file system: 'a' is then a directory
    for (const k of keys) assert.equal((await swift(f.port, s, 'PUT', '/list/' + enc(k), {}, k)).status, 201, k);
  });

  /** What Swift would list, computed from the key set (UTF-8 byte order). */
  function model(o: { prefix?: string; delimiter?: string; marker?: string; end_marker?: string; limit?: number }): string[] {
    const all = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const out: string[] = [];
    for (const k of all) {
      if (o.prefix && !k.startsWith(o.prefix)) continue;
      let name = k;
      if (o.delimiter) {
        const i = k.indexOf(o.delimiter, (o.prefix ?? '').length);
        if (i >= 0) name = k.slice(0, i + o.delimiter.length);
      }
      if (o.marker && Buffer.compare(Buffer.from(name), Buffer.from(o.marker)) <= 0) continue;
      if (o.end_marker && Buffer.compare(Buffer.from(name), Buffer.from(o.end_marker)) >= 0) continue;
      if (out[out.length - 1] !== name) out.push(name);
    }
    return out.slice(0, o.limit ?? 10000);
  }

  async function list(o: Record<string, string | number>): Promise<string[]> {
    const q = Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join('&');
    const r = await swift(f.port, s, 'GET', `/list?format=json${q ? '&' + q : ''}`);
    assert.equal(r.status, 200);
    return (JSON.parse(r.text) as Array<{ name?: string; subdir?: string }>).map((e) => e.name ?? e.subdir!);
  }

  test('full listing in UTF-8 byte order', async () => {
    assert.deepEqual(await list({}), model({}));
  });

  test('prefix, delimiter, marker, end_marker, limit and their combinations match the model', async () => {
    const prefixes = ['', 'a', 'a/', 'a/b', 'caf', 'd/e/'];
    const delimiters = ['', '/', 'b', '/c'];
    const markers = ['', 'a/b', 'a/b/', 'a/b/c', 'cafe', '\uE000x'];
    let n = 0;
    for (const prefix of prefixes) {
      for (const delimiter of delimiters) {
        for (const marker of markers) {
          for (const end_marker of ['', 'b/y']) {
            for (const limit of [2, 10000]) {
              const o = { prefix, delimiter, marker, end_marker, limit };
              const q = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== ''));
              assert.deepEqual(await list(q), model(o), JSON.stringify(o));
              n++;
            }
          }
        }
      }
    }
    assert.ok(n > 500);
  });

  test('paging with marker visits every key exactly once', async () => {
    const seen: string[] = [];
    let marker = '';
    for (;;) {
      const page = await list(marker ? { limit: 2, marker } : { limit: 2 });
      if (page.length === 0) break;
      seen.push(...page);
      marker = page[page.length - 1]!;
    }
    assert.deepEqual(seen, model({}));
  });

  test('plain text and XML formats; an empty plain listing is 204; limit over 10000 is 412', async () => {
    const plain = await swift(f.port, s, 'GET', '/list?delimiter=/');
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.text.trimEnd().split('\n'), model({ delimiter: '/' }));
    const xml = await swift(f.port, s, 'GET', '/list?format=xml&prefix=b/&delimiter=/');
    assert.match(xml.text, /<object><name>b\/x<\/name><hash>[0-9a-f]{32}<\/hash><bytes>3<\/bytes>/);
    assert.match(xml.text, /<subdir name="b\/y\/"><name>b\/y\/<\/name><\/subdir>/);
    assert.equal((await swift(f.port, s, 'GET', '/list?prefix=nothing')).status, 204);
    assert.equal((await swift(f.port, s, 'GET', '/list?limit=10001')).status, 412);
    assert.equal((await swift(f.port, s, 'GET', '/list?limit=abc')).status, 400);
  });

  test('listing hashes are the MD5 of each object', async () => {
    const r = JSON.parse((await swift(f.port, s, 'GET', '/list?format=json')).text) as Array<{ name: string; hash: string; bytes: number }>;
    for (const e of r) {
      assert.equal(e.hash, createHash('md5').update(e.name).digest('hex'), e.name);
      assert.equal(e.bytes, Buffer.byteLength(e.name), e.name);
    }
  });
});
