/**
 * The owner lease across real `silt serve` processes, with a short heartbeat
 * (SILT_LEASE_INTERVAL_MS=300: stale after 0.9 s). A paused owner (SIGSTOP: a partitioned or hung
 * server) stops renewing; a standby started once its lease is stale takes the volume over and
 * commits once at start. When the old owner resumes, whatever it tries to commit fails (fenced),
 * it finds the higher lease at its next heartbeat and exits 2. The standby commits on, SIGTERM
 * releases the lease, and the volume holds both owners' durable files and nothing the old owner
 * wrote after the takeover. (Refusal with a live owner, kill -9 and --takeover are in
 * rpc-serve.test.ts; the lease itself in test/unit/rpc-lease.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openFileSystem, rootIdentity } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { readLease } from '../../src/headhunter/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { LineClient, spawnServe, TOKEN, type ServeChild } from '../support/rpc-harness.ts';

const LEASE_ENV = { SILT_LEASE_INTERVAL_MS: '300' };

async function writeFlushed(c: LineClient, mountId: number, name: string, text: string): Promise<void> {
  const f = await c.ok('RpcCreate', { mountId, inode: 1, name, mode: 0o644 });
  await c.ok('RpcWrite', { mountId, inode: f.inode, offset: 0, data: Buffer.from(text).toString('base64') });
  await c.ok('RpcFlush', { mountId, inode: f.inode });
}

test('a paused owner goes stale; a standby takes over; the old owner, resumed, is fenced and exits 2', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'silt-rpc-lease-'));
  const url = `file:${dir}/store`;
  const servers: ServeChild[] = [];
  try {
    const a = await spawnServe(['--store', url, '--mkfs'], LEASE_ENV);
    servers.push(a);
    const ca = await LineClient.connect(a.port);
    const ma = await ca.ok('RpcMount', { volume: 'default', token: TOKEN });
    await writeFlushed(ca, ma.mountId, 'fromA', 'A, before the pause');
    const held = await readLease(await openStore(url, {}), 'default');
    assert.equal(held?.state, 'live');
    assert.equal(held?.holder.pid, a.proc.pid);

    a.proc.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 1200)); // > 3 x 300 ms without a heartbeat
    const b = await spawnServe(['--store', url], LEASE_ENV);
    servers.push(b);
    assert.match(b.stderr(), /taking volume 'default' over: its owner's lease is stale \(last heartbeat [\d.]+ s ago, stale after 1 s\)/);
    const cb = await LineClient.connect(b.port);
    const mb = await cb.ok('RpcMount', { volume: 'default', token: TOKEN });
    await writeFlushed(cb, mb.mountId, 'fromB', 'B, the new owner');

    // A wakes up with a request already queued: its commit must fail, and it stops.
    const late = ca.call('RpcCreate', { mountId: ma.mountId, inode: 1, name: 'lateA', mode: 0o644 }).then(
      async (r) => (r.result ? ca.call('RpcFlush', { mountId: ma.mountId, inode: r.result.inode }) : r),
    );
    a.proc.kill('SIGCONT');
    const lateReply = await late.catch(() => undefined); // undefined: A closed the connection first
    if (lateReply) assert.equal(lateReply.error?.data.errno, 'EIO', `the old owner committed: ${JSON.stringify(lateReply)}`);
    const exA = await a.exited;
    assert.equal(exA.code, 2, a.stderr());
    assert.match(a.stderr(), /owner lease was taken over|fenced/);
    ca.close();

    await writeFlushed(cb, mb.mountId, 'fromB2', 'B, still committing');
    cb.close();
    b.proc.kill('SIGTERM');
    assert.equal((await b.exited).code, 0, b.stderr());
    const store = await openStore(url, {});
    assert.equal((await readLease(store, 'default'))?.state, 'released');
    const f = await openFileSystem({ store });
    const names = (await f.readdir(rootIdentity, 1, 0n, 100)).map((e) => e.name).filter((n) => !n.startsWith('.')).sort();
    await f.close();
    assert.deepEqual(names, ['fromA', 'fromB', 'fromB2']);
    const report = await checkVolume(store, 'default');
    assert.deepEqual(report.problems.filter((p) => p.severity === 'error'), []);
  } finally {
    for (const s of servers) {
      if (s.proc.exitCode === null && s.proc.signalCode === null) {
        s.proc.kill('SIGCONT');
        s.proc.kill('SIGKILL');
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
