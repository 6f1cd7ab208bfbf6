/**
 * Bimodal access: the same namespace through the fs layer (what FUSE, SMB and RPC call) and the
 * object API, read-after-write both ways, ETags equal to the MD5 of what the file holds (computed
 * once per change, then kept), PUT durability (a copy of the store taken the moment a PUT returns
 * holds the object), atomic overwrites under concurrency, and identities other than root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, md5hex, s3, startFixture, swift, swiftLogin, type Fixture, type SwiftSession } from '../support/objapi-fixture.ts';
import { O_WRONLY, openFileSystem, rootIdentity as root, type Identity } from '../../src/fs/index.ts';
import { startObjectApi } from '../../src/objapi/index.ts';
import { openStore } from '../../src/objstore/index.ts';

let f: Fixture;
let s: SwiftSession;
let bucket: number;

before(async () => {
  f = await startFixture();
  s = await swiftLogin(f.port);
  assert.equal((await swift(f.port, s, 'PUT', '/both')).status, 201);
  bucket = (await f.fs.lookupPath(root, 'both')).ino;
});
after(async () => {
  const r = await f.close();
  assert.ok(r.clean, r.problems.join('\n'));
});

/** Write a file the way a FUSE client does: create, open, write, release (no fsync). */
async function writeViaFs(dir: number, name: string, data: Buffer, offset = 0): Promise<number> {
  let ino: number;
  try {
    ino = (await f.fs.create(root, dir, name, 0o644)).ino;
  } catch {
    ino = (await f.fs.lookup(root, dir, name)).ino;
  }
  await f.fs.open(root, ino, O_WRONLY);
  await f.fs.write(root, ino, offset, data);
  await f.fs.release(ino, true);
  return ino;
}

describe('file system -> objects', () => {
  test('a file written through the fs layer is at once an object with the right length and ETag', async () => {
    const data = randomBytes(300_000);
    await writeViaFs(bucket, 'from-fs.bin', data);
    const before = f.api.stats().md5Computed;
    const g = await swift(f.port, s, 'GET', '/both/from-fs.bin');
    assert.equal(g.status, 200);
    assert.ok(g.body.equals(data));
    assert.equal(g.headers['content-length'], String(data.length));
    assert.equal(g.headers.etag, md5hex(data));
    assert.equal(f.api.stats().md5Computed, before + 1, 'computed on first request');
    const h = await s3(f.port, { method: 'HEAD', path: '/both/from-fs.bin' });
    assert.equal(h.headers.etag, `"${md5hex(data)}"`);
    const l = JSON.parse((await swift(f.port, s, 'GET', '/both?format=json&prefix=from-fs')).text) as Array<{ hash: string; bytes: number }>;
    assert.deepEqual(l.map((e) => [e.hash, e.bytes]), [[md5hex(data), data.length]]);
    assert.equal(f.api.stats().md5Computed, before + 1, 'then cached');
  });

  test('a change through the fs layer changes the ETag (write, truncate, xattr-only changes recompute correctly)', async () => {
    const data = randomBytes(50_000);
    const ino = await writeViaFs(bucket, 'changing.bin', data);
    assert.equal((await swift(f.port, s, 'HEAD', '/both/changing.bin')).headers.etag, md5hex(data));
    // overwrite 4 bytes in the middle: same size
    const patch = Buffer.from('ABCD');
    await writeViaFs(bucket, 'changing.bin', patch, 1000);
    patch.copy(data, 1000);
    const h1 = await swift(f.port, s, 'HEAD', '/both/changing.bin');
    assert.equal(h1.headers.etag, md5hex(data));
    assert.equal(h1.headers['content-length'], String(data.length));
    await f.fs.setattr(root, ino, { size: 10 });
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/both/changing.bin' })).headers.etag, `"${md5hex(data.subarray(0, 10))}"`);
    await f.fs.setxattr(root, ino, 'user.note', Buffer.from('x'));
    assert.equal((await swift(f.port, s, 'GET', '/both/changing.bin')).headers.etag, md5hex(data.subarray(0, 10)));
    // a lying stamp for another generation is ignored
    await f.fs.setxattr(root, ino, 'user.silt.md5', Buffer.from(`${'0'.repeat(32)} 1 10 0`));
    assert.equal((await swift(f.port, s, 'GET', '/both/changing.bin')).headers.etag, md5hex(data.subarray(0, 10)));
  });

  test('directories and files made through the fs layer appear in listings of both dialects', async () => {
    const d = await f.fs.mkdir(root, bucket, 'tree', 0o755);
    const e = await f.fs.mkdir(root, d.ino, 'sub', 0o755);
    await writeViaFs(e.ino, 'leaf.txt', Buffer.from('leaf'));
    await writeViaFs(d.ino, 'top.txt', Buffer.from('top'));
    const sw = (await swift(f.port, s, 'GET', '/both?prefix=tree/')).text.trimEnd().split('\n');
    assert.deepEqual(sw, ['tree/sub/leaf.txt', 'tree/top.txt']);
    const x = (await s3(f.port, { path: '/both?list-type=2&prefix=tree%2F&delimiter=%2F' })).text;
    assert.match(x, /<Key>tree\/top.txt<\/Key>/);
    assert.match(x, /<Prefix>tree\/sub\/<\/Prefix>/);
    // a top-level directory made on the mount is a container/bucket
    await f.fs.mkdir(root, 1, 'made-on-mount', 0o755);
    assert.ok((await swift(f.port, s, 'GET', '')).text.split('\n').includes('made-on-mount'));
    assert.match((await s3(f.port, { path: '/' })).text, /<Name>made-on-mount<\/Name>/);
  });

  test('unlink and rename through the fs layer are seen at once', async () => {
    await writeViaFs(bucket, 'moving.txt', Buffer.from('moving'));
    assert.equal((await swift(f.port, s, 'GET', '/both/moving.txt')).status, 200);
    await f.fs.rename(root, bucket, 'moving.txt', bucket, 'moved.txt');
    assert.equal((await swift(f.port, s, 'GET', '/both/moving.txt')).status, 404);
    assert.equal((await s3(f.port, { path: '/both/moved.txt' })).text, 'moving');
    await f.fs.unlink(root, bucket, 'moved.txt');
    assert.equal((await s3(f.port, { path: '/both/moved.txt' })).status, 404);
  });
});

describe('objects -> file system', () => {
  test('a PUT (Swift or S3) is at once a file with the content, metadata in xattrs and a current MD5 stamp', async () => {
    const data = randomBytes(123_456);
    assert.equal((await swift(f.port, s, 'PUT', '/both/put/by-swift.bin', { 'x-object-meta-Who': 'swift', 'content-type': 'image/x-test' }, data)).status, 201);
    const a = await f.fs.lookupPath(root, 'both/put/by-swift.bin');
    assert.equal(a.size, data.length);
    assert.ok(Buffer.from(await f.fs.read(root, a.ino, 0, data.length)).equals(data));
    assert.equal(Buffer.from(await f.fs.getxattr(root, a.ino, 'user.swift.meta.who')).toString(), 'swift');
    assert.equal(Buffer.from(await f.fs.getxattr(root, a.ino, 'user.swift.content_type')).toString(), 'image/x-test');
    const before = f.api.stats().md5Computed;
    assert.equal((await s3(f.port, { method: 'HEAD', path: '/both/put/by-swift.bin' })).headers['x-amz-meta-who'], 'swift', 'metadata is shared by both dialects');
    assert.equal((await swift(f.port, s, 'HEAD', '/both/put/by-swift.bin')).headers.etag, md5hex(data));
    assert.equal(f.api.stats().md5Computed, before, 'the PUT stamped the MD5; nothing was re-read');
    assert.equal((await s3(f.port, { method: 'PUT', path: '/both/put/by-s3.txt', body: 'from s3' })).status, 200);
    const b = await f.fs.lookupPath(root, 'both/put/by-s3.txt');
    assert.equal(Buffer.from(await f.fs.read(root, b.ino, 0, 100)).toString(), 'from s3');
  });

  test('a PUT is durable when it returns: a copy of the store taken then holds the object', async () => {
    const data = randomBytes(2_000_000);
    assert.equal((await swift(f.port, s, 'PUT', '/both/durable.bin', {}, data)).status, 201);
    const copy = await mkdtemp(join(tmpdir(), 'silt-objapi-crash-'));
    try {
      await cp(f.dir, copy, { recursive: true });
      const store = await openStore(`file:${copy}`);
      const fs2 = await openFileSystem({ store });
      try {
        const a = await fs2.lookupPath(root, 'both/durable.bin');
        assert.ok(Buffer.from(await fs2.read(root, a.ino, 0, data.length)).equals(data));
      } finally {
        await fs2.close();
        await store.close();
      }
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  test('concurrent overwrites through both dialects: every GET sees one whole version with its ETag', async () => {
    const versions = Array.from({ length: 8 }, () => randomBytes(200_000));
    const md5s = new Set(versions.map((v) => md5hex(v)));
    await swift(f.port, s, 'PUT', '/both/hot', {}, versions[0]!);
    const puts = versions.map((v, i) => (i % 2 ? swift(f.port, s, 'PUT', '/both/hot', {}, v) : s3(f.port, { method: 'PUT', path: '/both/hot', body: v })));
    const gets = Array.from({ length: 12 }, () => swift(f.port, s, 'GET', '/both/hot'));
    for (const r of await Promise.all(puts)) assert.ok(r.status === 200 || r.status === 201, String(r.status));
    for (const g of await Promise.all(gets)) {
      assert.equal(g.status, 200);
      assert.ok(md5s.has(md5hex(g.body)), 'a whole version');
      assert.equal(g.headers.etag, md5hex(g.body), 'with its own ETag');
    }
    const names = (await f.fs.readdir(root, bucket, 0n, 1000)).map((e) => e.name);
    assert.ok(!names.some((n) => n.startsWith('.silt-objapi-')), 'no temporary files left');
  });
});

describe('bounds', () => {
  test('with one stream and one MD5 computation at a time, concurrent PUTs, GETs, copies and listings all finish', async () => {
    const api = await startObjectApi({ fs: f.fs, listen: { port: 0 }, credentials: [{ user: 'b', key: 'k' }], limits: { streamsMax: 1, md5ComputesMax: 1 } });
    try {
      const port = api.address.port;
      const sb = await swiftLogin(port, 'b', 'k');
      const bodies = Array.from({ length: 6 }, () => randomBytes(300_000));
      for (const [i, b] of bodies.entries()) await writeViaFs(bucket, `gate-fs-${i}`, b);
      const work = [
        ...bodies.map((b, i) => swift(port, sb, 'PUT', `/both/gate/put-${i}`, {}, b)),
        ...bodies.map((_, i) => swift(port, sb, 'GET', `/both/gate-fs-${i}`)),
        ...bodies.map((_, i) => swift(port, sb, 'PUT', `/both/gate/copy-${i}`, { 'x-copy-from': `/both/gate-fs-${i}`, 'content-length': 0 })),
        swift(port, sb, 'GET', '/both?format=json'),
      ];
      const rs = await Promise.all(work);
      for (const r of rs) assert.ok(r.status === 200 || r.status === 201, String(r.status));
      for (const [i, b] of bodies.entries()) {
        assert.equal(rs[bodies.length + i]!.headers.etag, md5hex(b));
        assert.ok((await swift(port, sb, 'GET', `/both/gate/copy-${i}`)).body.equals(b));
      }
    } finally {
      await api.close();
    }
  });
});

describe('identities', () => {
  test('requests run as the credential identity: fs permissions apply (403)', async () => {
    const alice: Identity = { uid: 1000, gid: 1000, groups: [] };
    const api = await startObjectApi({ fs: f.fs, listen: { port: 0 }, credentials: [{ user: 'alice', key: 'alice-key', identity: alice }] });
    try {
      const ino = await writeViaFs(bucket, 'private.txt', Buffer.from('root only'));
      await f.fs.setattr(root, ino, { mode: 0o600 });
      const sa = await swiftLogin(api.address.port, 'alice', 'alice-key');
      assert.equal((await swift(api.address.port, sa, 'GET', '/both/private.txt')).status, 403);
      assert.equal((await swift(api.address.port, sa, 'PUT', '/both/by-alice', {}, 'x')).status, 403, 'the container is root 0755');
      await f.fs.setattr(root, ino, { mode: 0o644 });
      assert.equal((await swift(api.address.port, sa, 'GET', '/both/private.txt')).text, 'root only');
      // root's credentials do not work on alice's server and vice versa
      assert.equal((await http(api.address.port, { path: '/auth/v1.0', headers: { 'x-auth-user': 'test:tester', 'x-auth-key': 'testing-secret-key' } })).status, 401);
      assert.equal((await swift(f.port, sa, 'GET', '/both/private.txt')).status, 401, 'a token from another server instance');
    } finally {
      await api.close();
    }
  });
});
