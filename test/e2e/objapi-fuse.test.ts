/**
 * Bimodal access through a real FUSE mount: one process serves a volume as a mount and as the
 * object API (test/support/objapi-fuse-server.ts). Files written with shell tools on the mount
 * are at once objects of the right length in both dialects, with ETag = `md5sum`; objects PUT,
 * replaced or deleted through the API are at once what the mount shows, even right after the
 * mount cached the old version (the API tells the kernel). The volume fscks clean afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { http, md5hex, s3, swift, swiftLogin, type SwiftSession } from '../support/objapi-fixture.ts';
import { fuseUnavailable, q, sh, shOk, tempDir } from '../support/mount.ts';
import { openStore } from '../../src/objstore/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';

const SERVER = new URL('../support/objapi-fuse-server.ts', import.meta.url).pathname;
const USER = 'test:tester';
const KEY = 'testing-secret-key';

let dir: string;
let mnt: string;
let child: ChildProcess;
let port = 0;
let stderr = '';
let sess: SwiftSession;

before(async () => {
  const why = fuseUnavailable();
  if (why) throw new Error(`this test needs FUSE: ${why}`);
  dir = tempDir('silt-objapi-fuse-');
  mnt = join(dir, 'mnt');
  await shOk(`mkdir -p ${q(mnt)}`);
  child = spawn(process.execPath, ['--import', 'tsx', SERVER, '--store', `file:${join(dir, 'store')}`, '--mkfs', '--mountpoint', mnt, '--user', USER, '--key', KEY], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${stderr}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${stderr}`)));
  });
  sess = await swiftLogin(port, USER, KEY);
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, `server exit ${code}:\n${stderr}`);
    const store = await openStore(`file:${join(dir, 'store')}`);
    const rep = await checkVolume(store, 'default');
    await store.close();
    assert.ok(rep.clean, JSON.stringify(rep.problems));
  }
  await sh(`umount -l ${q(mnt)} 2>/dev/null`);
  rmSync(dir, { recursive: true, force: true });
});

const md5sum = async (path: string): Promise<string> => (await shOk(`md5sum ${q(path)}`)).split(' ')[0]!;

test('written through FUSE (shell tools, closed): at once an object in both dialects, ETag = md5sum', async () => {
  await shOk(`mkdir -p ${q(join(mnt, 'bkt/dir'))} && head -c 3000017 /dev/urandom > ${q(join(mnt, 'bkt/dir/f.bin'))} && printf hello > ${q(join(mnt, 'bkt/hello.txt'))}`);
  const sum = await md5sum(join(mnt, 'bkt/dir/f.bin'));
  const g = await swift(port, sess, 'GET', '/bkt/dir/f.bin');
  assert.equal(g.status, 200);
  assert.equal(g.body.length, 3000017);
  assert.equal(g.headers.etag, sum);
  assert.equal(md5hex(g.body), sum);
  const h = await s3(port, { method: 'HEAD', path: '/bkt/dir/f.bin' });
  assert.equal(h.headers.etag, `"${sum}"`);
  assert.equal(Number(h.headers['content-length']), 3000017);
  const r = await s3(port, { path: '/bkt/dir/f.bin', headers: { range: 'bytes=1000-1999' } });
  assert.equal(r.status, 206);
  assert.ok(r.body.equals(g.body.subarray(1000, 2000)));
  // listed by both
  const l = JSON.parse((await swift(port, sess, 'GET', '/bkt?format=json')).text) as Array<{ name: string; hash: string; bytes: number }>;
  assert.deepEqual(l.map((o) => [o.name, o.hash, o.bytes]), [['dir/f.bin', sum, 3000017], ['hello.txt', md5hex('hello'), 5]]);
  // appended through FUSE: the ETag follows at once
  await shOk(`printf ' world' >> ${q(join(mnt, 'bkt/hello.txt'))}`);
  assert.equal((await s3(port, { method: 'HEAD', path: '/bkt/hello.txt' })).headers.etag, `"${md5hex('hello world')}"`);
});

test('PUT, overwrite and DELETE through the API: the mount shows each at once, caches notwithstanding', async () => {
  const v1 = randomBytes(200_000);
  const v2 = randomBytes(123_457);
  assert.equal((await swift(port, sess, 'PUT', '/bkt/api/obj.bin', {}, v1)).status, 201);
  const path = join(mnt, 'bkt/api/obj.bin');
  assert.equal(await md5sum(path), md5hex(v1));
  assert.equal((await shOk(`stat -c %s ${q(path)}`)).trim(), String(v1.length)); // the kernel now caches v1's name, attributes, pages
  const put = await s3(port, { method: 'PUT', path: '/bkt/api/obj.bin', body: v2 });
  assert.equal(put.status, 200);
  assert.equal(put.headers.etag, `"${md5hex(v2)}"`);
  assert.equal((await shOk(`stat -c %s ${q(path)}`)).trim(), String(v2.length), 'size after the overwrite');
  assert.equal(await md5sum(path), md5hex(v2), 'content after the overwrite');
  // a name the kernel has just seen missing
  const fresh = join(mnt, 'bkt/api/new.txt');
  assert.notEqual((await sh(`cat ${q(fresh)}`)).code, 0);
  assert.equal((await swift(port, sess, 'PUT', '/bkt/api/new.txt', {}, 'new')).status, 201);
  assert.equal(await shOk(`cat ${q(fresh)}`), 'new');
  assert.equal((await swift(port, sess, 'DELETE', '/bkt/api/new.txt')).status, 204);
  assert.notEqual((await sh(`cat ${q(fresh)}`)).code, 0, 'deleted through the API, gone from the mount');
  // metadata through the API is an xattr on the mount
  assert.equal((await swift(port, sess, 'POST', '/bkt/api/obj.bin', { 'x-object-meta-color': 'blue' })).status, 202);
  assert.match(await shOk(`getfattr --absolute-names -d ${q(path)}`), /user\.swift\.meta\.color="blue"/);
  assert.equal((await http(port, { path: '/bkt/api/obj.bin' })).status, 403, 'no anonymous GET');
});
