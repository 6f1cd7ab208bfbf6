/**
 * RpcClient against `silt serve` in another process: the fs case table (the same one the
 * in-process fs layer passes), a few figures (RpcGetStat round trips, RpcWrite/RpcRead
 * throughput with base64), then SIGTERM: the server commits, exits 0, and the volume is clean.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkVolume } from '../../src/fsck/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { RpcClient } from '../../src/rpc/index.ts';
import { caseDir, fsCases, ROOT_ID, USER_ID } from '../support/rpc-cases.ts';
import { spawnServe, TOKEN } from '../support/rpc-harness.ts';

test('RpcClient against silt serve: fs case table, figures, clean shutdown', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'silt-rpc-client-'));
  const url = `file:${dir}/store`;
  const srv = await spawnServe(['--store', url, '--mkfs', '--sync-on-close']);
  try {
    const c = await RpcClient.connect({ port: srv.port, token: TOKEN });
    for (const [name, run] of Object.entries(fsCases)) {
      await t.test(name, async () => run({ fs: c, dir: await caseDir(c, ROOT_ID, name), root: ROOT_ID, user: USER_ID }));
    }

    await t.test('figures', async (tt) => {
      const f = await c.create(ROOT_ID, 1, 'bench', 0o644);
      const n = 1000;
      let t0 = performance.now();
      for (let i = 0; i < n; i++) await c.getattr(ROOT_ID, f.ino);
      tt.diagnostic(`RpcGetStat, one at a time: ${Math.round(n / ((performance.now() - t0) / 1000))} calls/s`);
      t0 = performance.now();
      await Promise.all(Array.from({ length: 16 }, async () => {
        for (let i = 0; i < n / 16; i++) await c.getattr(ROOT_ID, f.ino);
      }));
      tt.diagnostic(`RpcGetStat, 16 in flight: ${Math.round(n / ((performance.now() - t0) / 1000))} calls/s`);
      const data = randomBytes(8 << 20);
      const chunk = 1 << 20;
      t0 = performance.now();
      for (let o = 0; o < data.length; o += chunk) await c.write(ROOT_ID, f.ino, o, data.subarray(o, o + chunk));
      tt.diagnostic(`RpcWrite 8 MiB, 1 MiB calls one at a time: ${((data.length / 1e6) / ((performance.now() - t0) / 1000)).toFixed(1)} MB/s`);
      t0 = performance.now();
      await Promise.all(Array.from({ length: 4 }, async (_, k) => {
        for (let o = k * chunk; o < data.length; o += 4 * chunk) await c.write(ROOT_ID, f.ino, o, data.subarray(o, o + chunk));
      }));
      tt.diagnostic(`RpcWrite 8 MiB, 1 MiB calls, 4 in flight: ${((data.length / 1e6) / ((performance.now() - t0) / 1000)).toFixed(1)} MB/s`);
      t0 = performance.now();
      await c.fsync(f.ino, false);
      tt.diagnostic(`RpcFlush of 8 MiB: ${(performance.now() - t0).toFixed(0)} ms`);
      t0 = performance.now();
      const back = await c.read(ROOT_ID, f.ino, 0, data.length);
      tt.diagnostic(`RpcRead 8 MiB (one call): ${((data.length / 1e6) / ((performance.now() - t0) / 1000)).toFixed(1)} MB/s`);
      assert.ok(Buffer.from(back).equals(data));
    });
    await c.close();

    srv.proc.kill('SIGTERM');
    const ex = await srv.exited;
    assert.equal(ex.code, 0, srv.stderr());
    assert.match(srv.stderr(), /committed and closed/);
  } finally {
    if (srv.proc.exitCode === null && srv.proc.signalCode === null) srv.proc.kill('SIGKILL');
  }
  const r = await checkVolume(await openStore(url, {}), 'default');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
  fs.rmSync(dir, { recursive: true, force: true });
});
