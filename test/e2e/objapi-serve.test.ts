/**
 * `silt serve --http`: the real command serves a volume over JSON-RPC and the object API at once;
 * objects PUT through it are in the volume after SIGTERM (which commits), and the volume fscks
 * clean. --http without credentials is refused before anything is served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, md5hex, s3, swift, swiftLogin } from '../support/objapi-fixture.ts';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';

const SILT = new URL('../../bin/silt.mjs', import.meta.url).pathname;

test('silt serve --http serves Swift and S3 over the volume; SIGTERM commits', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silt-objapi-serve-'));
  try {
    const child = spawn(process.execPath, [SILT, 'serve', '--store', `file:${dir}`, '--mkfs', '--listen', '127.0.0.1:0', '--token', 't', '--http', '127.0.0.1:0', '--http-user', 'test:tester', '--http-key', 'testing-secret-key'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    let port = 0;
    while (Date.now() < deadline) {
      const m = /object API for volume 'default' on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        port = Number(m[1]);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(port > 0, `no object API line:\n${out}\n${err}`);
    try {
      const s = await swiftLogin(port);
      assert.equal((await swift(port, s, 'PUT', '/served')).status, 201);
      assert.equal((await swift(port, s, 'PUT', '/served/dir/a.txt', {}, 'through serve')).status, 201);
      const g = await s3(port, { path: '/served/dir/a.txt' });
      assert.equal(g.text, 'through serve');
      assert.equal(g.headers.etag, `"${md5hex('through serve')}"`);
      assert.equal((await http(port, { path: '/served/dir/a.txt' })).status, 403, 'unsigned');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
    const store = await openStore(`file:${dir}`);
    const fs = await openFileSystem({ store });
    const a = await fs.lookupPath(root, 'served/dir/a.txt');
    assert.equal(Buffer.from(await fs.read(root, a.ino, 0, 100)).toString(), 'through serve');
    await fs.close();
    const rep = await checkVolume(store, 'default');
    assert.ok(rep.clean, JSON.stringify(rep.problems));
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('silt serve --http takes several users from the configuration file; each works in both dialects', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silt-objapi-serve-'));
  try {
    const config = join(dir, 'silt.json');
    await writeFile(config, JSON.stringify({ serve: { http: '127.0.0.1:0', httpUser: ['acc:alice', 'bob'], httpKey: ['alice-key', 'bob-key'] } }), { mode: 0o600 });
    const env = { ...process.env };
    delete env['SILT_HTTP_USER'];
    delete env['SILT_HTTP_KEY'];
    const child = spawn(process.execPath, [SILT, 'serve', '--config', config, '--store', `file:${join(dir, 'store')}`, '--mkfs', '--listen', '127.0.0.1:0', '--token', 't'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let port = 0;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && port === 0; ) {
      const m = /object API for volume 'default' on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) port = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(port > 0, `no object API line:\n${out}\n${err}`);
    try {
      const a = await swiftLogin(port, 'acc:alice', 'alice-key');
      assert.equal((await swift(port, a, 'PUT', '/c')).status, 201);
      assert.equal((await swift(port, a, 'PUT', '/c/o', {}, 'from alice')).status, 201);
      const b = await swiftLogin(port, 'bob', 'bob-key');
      assert.equal((await swift(port, b, 'GET', '/c/o')).text, 'from alice');
      assert.equal((await s3(port, { path: '/c/o' }, { accessKey: 'bob', secret: 'bob-key' })).text, 'from alice');
      assert.equal((await s3(port, { path: '/c/o' }, { accessKey: 'bob', secret: 'alice-key' })).status, 403);
      await assert.rejects(swiftLogin(port, 'acc:alice', 'bob-key'), /401/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('silt serve --http without credentials is refused', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silt-objapi-serve-'));
  try {
    const env = { ...process.env };
    delete env['SILT_HTTP_USER'];
    delete env['SILT_HTTP_KEY'];
    const child = spawn(process.execPath, [SILT, 'serve', '--store', `file:${dir}`, '--mkfs', '--listen', '127.0.0.1:0', '--token', 't', '--http'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 2);
    assert.match(err, /--http needs credentials/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
