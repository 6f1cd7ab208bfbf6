import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileSystem, rootIdentity as root } from '../../src/fs/index.ts';
import { InstrumentedStore, openStore } from '../../src/objstore/index.ts';
import { registry, serveMetrics } from '../../src/util/index.ts';

/** The value of one sample line of the Prometheus text format (0 if absent). */
function sample(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}${labels} `) || (labels === '' && line.startsWith(`${name} `))) return Number(line.split(' ').pop());
  }
  return 0;
}

test('metrics move by the right amounts after a workload and are served at /metrics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silt-metrics-'));
  try {
    const store = new InstrumentedStore(await openStore(`file:${dir}`, { create: true }));
    const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0, gcIntervalMs: 0 });
    const before = await registry.metrics();
    for (let i = 0; i < 5; i++) {
      const a = await fs.create(root, 1, `f${i}`, 0o644);
      await fs.write(root, a.ino, 0, Buffer.alloc(1000, i));
      await fs.fsync(a.ino, false);
    }
    const { server, address } = await serveMetrics('127.0.0.1', 0);
    const text = await (await fetch(`http://${address}/metrics`)).text();
    server.close();
    assert.equal(sample(text, 'silt_commits_total') - sample(before, 'silt_commits_total'), 5, 'one commit per fsync');
    const puts = sample(text, 'silt_store_requests_total', '{verb="put",outcome="ok"}') - sample(before, 'silt_store_requests_total', '{verb="put",outcome="ok"}');
    assert.equal(puts, 5, 'one PUT per commit, counted at the store');
    assert.ok(sample(text, 'silt_store_bytes_total', '{direction="put"}') - sample(before, 'silt_store_bytes_total', '{direction="put"}') >= 5000);
    assert.equal(sample(text, 'silt_commit_sequence'), fs.volume.lastCommit.seq);
    assert.match(text, /silt_commit_seconds_bucket/);
    assert.match(text, /silt_process_resident_memory_bytes/);
    await fs.close();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
