/**
 * Hostile input against the object API: each item of issue 7's list as a named case, then a few
 * thousand requests from a seeded generator (SILT_SEED replays one; the seed is printed). Every
 * one must get a 4xx, the server must keep answering, nothing may appear outside the test
 * container, no 5xx may be counted, and the volume must fsck clean.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { http, s3, signS3, startFixture, swift, swiftLogin, type Fixture, type Resp, type SwiftSession } from '../support/objapi-fixture.ts';
import { hostileRequests, rawRequest, rawStatus } from '../support/objapi-hostile.ts';
import { rootIdentity as root } from '../../src/fs/index.ts';

let f: Fixture;
let s: SwiftSession;

async function rootNames(): Promise<string[]> {
  return (await f.fs.readdir(root, 1, 0n, 1000)).map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
}

async function tree(ino: number, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await f.fs.readdir(root, ino, 0n, 10_000)) {
    if (e.name === '.' || e.name === '..') continue;
    out.push(prefix + e.name);
    if (e.type === 0o040000) out.push(...(await tree(e.ino, prefix + e.name + '/')));
  }
  return out.sort();
}

before(async () => {
  f = await startFixture();
  s = await swiftLogin(f.port);
  assert.equal((await swift(f.port, s, 'PUT', '/box')).status, 201);
  assert.equal((await swift(f.port, s, 'PUT', '/box/fine', {}, 'fine')).status, 201);
  assert.equal((await swift(f.port, s, 'PUT', '/other')).status, 201);
  assert.equal((await swift(f.port, s, 'PUT', '/other/secret', {}, 'secret')).status, 201);
});
after(async () => {
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

const is4xx = (status: number, what: string): void => assert.ok(status >= 400 && status < 500, `${what}: got ${status}`);

describe('the issue 7 list, one case each', () => {
  test("'..' and '%2e%2e' cannot climb out of a container (Swift and S3): 400", async () => {
    for (const p of ['/box/../other/secret', '/box/%2e%2e/other/secret', '/box/%2E%2E/other/secret', '/box/.%2e/other/secret', '/box/a/../../other/secret']) {
      const r = await swift(f.port, s, 'GET', p);
      assert.equal(r.status, 400, p);
      assert.ok(!r.text.includes('secret\n') || r.text.includes('400'), p);
      assert.equal((await s3(f.port, { path: p })).status, 400, `s3 ${p}`);
    }
    assert.equal((await swift(f.port, s, 'PUT', '/box/%2e%2e/escaped', {}, 'x')).status, 400);
    assert.equal((await s3(f.port, { method: 'PUT', path: '/box/../escaped', body: 'x' })).status, 400);
  });

  test('encoded slashes: 400', async () => {
    for (const p of ['/box%2Ffine', '/box/a%2Fb', '/box/..%2F..%2Fother%2Fsecret', '/box/%2f']) {
      assert.equal((await swift(f.port, s, 'GET', p)).status, 400, p);
      assert.equal((await s3(f.port, { path: p })).status, 400, `s3 ${p}`);
    }
  });

  test('NUL (encoded or raw): 400', async () => {
    assert.equal((await swift(f.port, s, 'GET', '/box/fine%00.txt')).status, 400);
    assert.equal((await s3(f.port, { path: '/box/%00' })).status, 400);
    is4xx(rawStatus(await rawRequest(f.port, `GET ${s.account}/box/fi\u0000ne HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${s.token}\r\n\r\n`)), 'raw NUL');
  });

  test('names over 255 bytes and paths over 4096 bytes: 400', async () => {
    const long = 'n'.repeat(256);
    assert.equal((await swift(f.port, s, 'PUT', `/box/${long}`, {}, 'x')).status, 400);
    assert.equal((await swift(f.port, s, 'PUT', `/${long}`)).status, 400);
    assert.equal((await s3(f.port, { method: 'PUT', path: `/box/${'%C3%A9'.repeat(128)}`, body: 'x' })).status, 400, '256 bytes of UTF-8');
    assert.equal((await swift(f.port, s, 'PUT', `/box/${'n'.repeat(255)}`, {}, 'x')).status, 201, '255 bytes is fine');
    const deep = Array.from({ length: 17 }, () => 'd'.repeat(250)).join('/');
    assert.equal((await swift(f.port, s, 'PUT', `/box/${deep}`, {}, 'x')).status, 400);
    assert.equal((await s3(f.port, { path: `/box/${deep}` })).status, 400);
  });

  test('bad ranges: unsatisfiable 416, malformed ignored (200), never 5xx', async () => {
    assert.equal((await swift(f.port, s, 'GET', '/box/fine', { range: 'bytes=4-' })).status, 416);
    assert.equal((await swift(f.port, s, 'GET', '/box/fine', { range: 'bytes=99999999999999999999999-' })).status, 416);
    assert.equal((await s3(f.port, { path: '/box/fine', headers: { range: 'bytes=10-20' } })).status, 416);
    for (const range of ['bytes=a-b', 'bytes=3-1', 'bytes=--1', 'bits=0-1', 'bytes=0-1,2-3', 'bytes=-99999999999999999999999']) {
      const r = await swift(f.port, s, 'GET', '/box/fine', { range });
      assert.ok(r.status === 200 || r.status === 206, `${range}: ${r.status}`);
    }
  });

  test('huge headers: 431; a huge URL: 4xx', async () => {
    const raw = await rawRequest(f.port, `GET ${s.account}/box/fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: ${s.token}\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`);
    assert.equal(rawStatus(raw), 431);
    is4xx(rawStatus(await rawRequest(f.port, `GET /box/${'u'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)), 'huge url');
  });

  test('bad signatures, wrong keys, unknown keys, skewed clocks, wrong region, SigV2: 400/403', async () => {
    const req = { path: '/box/fine' };
    const cases: Array<[string, Promise<Resp>, number]> = [
      ['wrong secret', s3(f.port, req, { secret: 'nope' }), 403],
      ['unknown key id', s3(f.port, req, { accessKey: 'nobody' }), 403],
      ['skewed +1h', s3(f.port, req, { date: new Date(Date.now() + 3600_000) }), 403],
      ['skewed -1h', s3(f.port, req, { date: new Date(Date.now() - 3600_000) }), 403],
      ['wrong region', s3(f.port, req, { region: 'eu-west-1' }), 400],
      ['unsigned', http(f.port, req), 403],
      ['sigv2', http(f.port, { ...req, headers: { authorization: 'AWS test:tester:abc=' } }), 403],
    ];
    for (const [what, p, want] of cases) assert.equal((await p).status, want, what);
    // a signed request whose path is changed after signing
    const signed = signS3(f.port, { path: '/box/fine' });
    assert.equal((await http(f.port, { ...signed, path: '/other/secret' })).status, 403, 'path altered');
    // a body that does not match its signed hash is refused and leaves nothing
    const put = signS3(f.port, { method: 'PUT', path: '/box/tampered', body: 'original' });
    assert.equal((await http(f.port, { ...put, body: 'tampered' })).status, 400);
    assert.equal((await swift(f.port, s, 'HEAD', '/box/tampered')).status, 404);
  });

  test('expired and forged Swift tokens: 401', async () => {
    const forged = 'AUTH_tk' + Buffer.from('99999999999\ntest:tester').toString('base64url') + '.' + 'A'.repeat(43);
    assert.equal((await swift(f.port, { ...s, token: forged }, 'GET', '/box/fine')).status, 401);
    assert.equal((await swift(f.port, { ...s, token: s.token + 'x' }, 'GET', '/box/fine')).status, 401);
    assert.equal((await swift(f.port, { ...s, token: '' }, 'GET', '/box/fine')).status, 401);
  });

  test('reserved names (.silt-objapi-*) and symlinks are not reachable', async () => {
    assert.equal((await swift(f.port, s, 'GET', '/box/.silt-objapi-put-abc')).status, 400);
    assert.equal((await swift(f.port, s, 'GET', '/.silt-objapi-uploads')).status, 400);
    const box = await f.fs.lookupPath(root, 'box');
    await f.fs.symlink(root, box.ino, 'link', '../other');
    await f.fs.symlink(root, box.ino, 'abs', '/other/secret');
    assert.equal((await swift(f.port, s, 'GET', '/box/link/secret')).status, 404);
    assert.equal((await swift(f.port, s, 'GET', '/box/abs')).status, 404);
    assert.equal((await s3(f.port, { path: '/box/link/secret' })).status, 404);
    const l = (await swift(f.port, s, 'GET', '/box')).text;
    assert.ok(!l.includes('link') && !l.includes('abs'), l);
    await f.fs.unlink(root, box.ino, 'link');
    await f.fs.unlink(root, box.ino, 'abs');
  });
});

describe('seeded hostile requests', () => {
  test('a few thousand: all 4xx, no crash, nothing outside the container, no 5xx', async () => {
    const seed = process.env['SILT_SEED'] ? Number(process.env['SILT_SEED']) : (Date.now() % 1_000_000) + 1;
    const count = Number(process.env['SILT_OBJAPI_HOSTILE'] ?? 2500);
    console.log(`objapi hostile: seed ${seed} (SILT_SEED=${seed} replays), ${count} requests`);
    const rootBefore = await rootNames();
    const otherBefore = await tree((await f.fs.lookupPath(root, 'other')).ino);
    const statsBefore = f.api.stats();
    const gen = hostileRequests(seed, count, f.port, s.account, s.token, 'box');
    const failures: string[] = [];
    const byKind = new Map<string, number>();
    const worker = async (): Promise<void> => {
      for (let n = gen.next(); !n.done; n = gen.next()) {
        const h = n.value;
        let status: number;
        if (h.via === 'raw') status = rawStatus(await rawRequest(f.port, h.bytes));
        else status = (await http(f.port, h.req)).status;
        byKind.set(h.via, (byKind.get(h.via) ?? 0) + 1);
        if (status < 400 || status >= 500) failures.push(`${status} ${h.what} ${'req' in h ? `${h.req.method} ${h.req.path.slice(0, 200)}` : JSON.stringify(h.bytes.slice(0, 200))}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    console.log(`objapi hostile: ${JSON.stringify(Object.fromEntries(byKind))}`);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} requests were not refused with a 4xx (seed ${seed})`);
    // still serving, nothing escaped, nothing server-side failed
    assert.equal((await swift(f.port, s, 'GET', '/box/fine')).text, 'fine');
    assert.deepEqual(await rootNames(), rootBefore);
    assert.deepEqual(await tree((await f.fs.lookupPath(root, 'other')).ino), otherBefore);
    const after = f.api.stats();
    assert.equal(after.status5xx, statsBefore.status5xx, 'no 5xx');
    assert.ok(after.status4xx - statsBefore.status4xx >= count * 0.95, `4xx counted: ${after.status4xx - statsBefore.status4xx}`);
    const inBox = await tree((await f.fs.lookupPath(root, 'box')).ino);
    assert.ok(inBox.every((p) => !p.includes('.silt-objapi-')), `no temporary files left: ${inBox.filter((p) => p.includes('.silt-objapi-')).join(' ')}`);
  });
});
