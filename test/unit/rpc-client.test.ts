/**
 * RpcClient against an in-process server: the fs case table runs through the client and against
 * the fs layer directly (same results, errno for errno); identities; reconnect after the server
 * goes away and comes back; pins and opens given back when a connection drops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileSystem } from '../../src/fs/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { RpcClient } from '../../src/rpc/index.ts';
import { FsError } from '../../src/util/index.ts';
import { caseDir, expectErrno, fsCases, ROOT_ID, USER_ID } from '../support/rpc-cases.ts';
import { startInProcess, TOKEN } from '../support/rpc-harness.ts';
import { checkVolume } from '../../src/fsck/index.ts';

test('fs case table, in-process fs layer (reference)', async (t) => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  for (const [name, run] of Object.entries(fsCases)) {
    await t.test(name, async () => run({ fs, dir: await caseDir(fs, ROOT_ID, name), root: ROOT_ID, user: USER_ID }));
  }
  await fs.close();
  const r = await checkVolume(store, 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
});

test('fs case table through RpcClient (in-process server)', async (t) => {
  const srv = await startInProcess();
  const fs = await RpcClient.connect({ port: srv.server.port, token: TOKEN });
  try {
    for (const [name, run] of Object.entries(fsCases)) {
      await t.test(name, async () => run({ fs, dir: await caseDir(fs, ROOT_ID, name), root: ROOT_ID, user: USER_ID }));
    }
  } finally {
    await fs.close();
    await srv.close();
  }
  const r = await checkVolume(srv.store, 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
});

test('data cases with base64 JSON instead of binary frames (binaryFrames: false)', async (t) => {
  const srv = await startInProcess();
  const fs = await RpcClient.connect({ port: srv.server.port, token: TOKEN, binaryFrames: false });
  try {
    for (const name of ['createWriteRead', 'largeFileAcrossFrames', 'sparseSeekPunch', 'openUnlinkRead'] as const) {
      await t.test(name, async () => fsCases[name]!({ fs, dir: await caseDir(fs, ROOT_ID, name), root: ROOT_ID, user: USER_ID }));
    }
  } finally {
    await fs.close();
    await srv.close();
  }
});

test('connect errors: bad token is EACCES, unknown volume ENOENT, nobody listening EIO', async () => {
  const srv = await startInProcess();
  try {
    await expectErrno(RpcClient.connect({ port: srv.server.port, token: 'wrong' }), 'EACCES');
    await expectErrno(RpcClient.connect({ port: srv.server.port, token: TOKEN, volume: 'nope' }), 'ENOENT');
  } finally {
    await srv.close();
  }
  await expectErrno(RpcClient.connect({ port: srv.server.port, token: TOKEN, connectTimeoutMs: 2000 }), 'EIO');
});

test('a non-root mount acts only as itself; a root mount may act for others', async () => {
  const srv = await startInProcess();
  const rootc = await RpcClient.connect({ port: srv.server.port, token: TOKEN });
  const userc = await RpcClient.connect({ port: srv.server.port, token: TOKEN, identity: USER_ID });
  try {
    const pub = await caseDir(rootc, ROOT_ID, 'pub');
    const f = await userc.create(USER_ID, pub, 'mine', 0o600);
    assert.equal(f.uid, 1000);
    await expectErrno(userc.getattr(ROOT_ID, f.ino), 'EPERM');
    await expectErrno(userc.create({ uid: 1000, gid: 0, groups: [] }, pub, 'x', 0o644), 'EPERM');
    // The mount's own permission checks apply.
    const locked = await rootc.mkdir(ROOT_ID, 1, 'locked', 0o700);
    await expectErrno(userc.readdir(USER_ID, locked.ino, 0n, 10), 'EACCES');
    // Root acting for uid 1000 gets uid 1000's rights.
    await expectErrno(rootc.read(USER_ID, (await rootc.create(ROOT_ID, pub, 'r', 0o600)).ino, 0, 1), 'EACCES');
    const g = await rootc.create({ uid: 2000, gid: 2000, groups: [] }, pub, 'theirs', 0o644);
    assert.equal(g.uid, 2000);
    assert.equal(g.gid, 2000);
  } finally {
    await userc.close();
    await rootc.close();
    await srv.close();
  }
});

test('reconnect: the server restarts on the same port; waiting and repeatable calls go through', async () => {
  const store = new MemoryStore();
  let srv = await startInProcess({ store });
  const port = srv.server.port;
  const c = await RpcClient.connect({ port, token: TOKEN, reconnectTimeoutMs: 20_000 });
  try {
    const f = await c.create(ROOT_ID, 1, 'f', 0o644);
    await c.write(ROOT_ID, f.ino, 0, Buffer.from('before'));
    await c.fsync(f.ino, false);
    c.pin(f.ino);
    const firstServer = c.serverId;
    await srv.close(); // commits; the connection drops
    // A call made while the server is down waits for the reconnection.
    const pending = c.read(ROOT_ID, f.ino, 0, 100);
    await new Promise((r) => setTimeout(r, 300));
    srv = await startInProcess({ store, port });
    assert.equal(Buffer.from(await pending).toString(), 'before');
    assert.notEqual(c.serverId, firstServer);
    assert.ok(c.connected);
    await c.write(ROOT_ID, f.ino, 6, Buffer.from(' after'));
    assert.equal(Buffer.from(await c.read(ROOT_ID, f.ino, 0, 100)).toString(), 'before after');
    // The pin was re-established on the new mount.
    const m = srv.mounts.get(c.mountId);
    assert.equal(m.pins.get(f.ino), 1);
  } finally {
    await c.close();
    await srv.close();
  }
});

test('reconnect gives up after reconnectTimeoutMs with EIO; non-repeatable calls in flight fail with EIO', async () => {
  const srv = await startInProcess();
  const c = await RpcClient.connect({ port: srv.server.port, token: TOKEN, reconnectTimeoutMs: 500 });
  await srv.close();
  const e = await c.getattr(ROOT_ID, 1).then(
    () => null,
    (x: unknown) => x,
  );
  assert.ok(e instanceof FsError && e.errno === 'EIO', String(e));
  assert.match((e as FsError).message, /reconnect/);
  await c.close();
});

test('a dropped connection gives back its pins and opens (an unlinked open file is then freed)', async () => {
  const srv = await startInProcess();
  const a = await RpcClient.connect({ port: srv.server.port, token: TOKEN, reconnect: false });
  const b = await RpcClient.connect({ port: srv.server.port, token: TOKEN });
  try {
    const f = await a.create(ROOT_ID, 1, 'held', 0o644);
    await a.write(ROOT_ID, f.ino, 0, Buffer.from('x'));
    await a.open(ROOT_ID, f.ino, 0);
    a.pin(f.ino);
    await a.getattr(ROOT_ID, f.ino); // the pin has been applied (calls run in order on one connection)
    await b.unlink(ROOT_ID, 1, 'held');
    assert.equal((await b.getattr(ROOT_ID, f.ino)).nlink, 0, 'still there while a holds it');
    assert.equal(srv.mounts.size, 2);
    await a.close();
    for (let i = 0; i < 100 && srv.mounts.size > 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.mounts.size, 1);
    await expectErrno(b.getattr(ROOT_ID, f.ino), 'ENOENT', 'ESTALE');
  } finally {
    await b.close();
    await srv.close();
  }
});
