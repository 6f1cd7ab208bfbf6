import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { checkVolume } from '../../src/fsck/index.ts';
import { openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { collectGarbage } from '../../src/headhunter/index.ts';
import { cleanSegments } from '../../src/inode/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { Random } from '../../src/util/index.ts';

function storedBytes(store: MemoryStore): number {
  let n = 0;
  for (const [k, v] of store.snapshot()) if (k.includes('/log/') || k.includes('/seg/')) n += v.length;
  return n;
}

async function digest(fs: SiltFileSystem, names: Iterable<string>): Promise<string> {
  const h = createHash('sha256');
  for (const name of [...names].sort()) {
    const a = await fs.lookupPath(root, name);
    h.update(name).update(await fs.read(root, a.ino, 0, a.size));
  }
  return h.digest('hex');
}

test('churn, then clean + gc: stored bytes come back near the live bytes; contents and fsck intact', async () => {
  const store = new MemoryStore();
  const rnd = new Random(7);
  const fs = await openFileSystem({
    store,
    create: true,
    flushIntervalMs: 0,
    gcIntervalMs: 0,
    volumeOptions: { segmentBytesMax: 512 * 1024 },
    inode: { largeRunBytes: 256 * 1024 },
  });
  const live = new Set<string>();
  // Small and medium files written and deleted in cycles; each commit mixes many files, so most
  // segments end up partly live: only the cleaner can return that space.
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 20; i++) {
      const name = `f${rnd.int(60)}`;
      if (live.has(name)) {
        await fs.unlink(root, 1, name);
        live.delete(name);
      }
      const a = await fs.create(root, 1, name, 0o644);
      await fs.write(root, a.ino, 0, rnd.bytes(1 + rnd.int(rnd.chance(0.2) ? 300_000 : 20_000)));
      live.add(name);
    }
    await fs.sync();
  }
  const before = await digest(fs, live);
  await collectGarbage(fs.volume, { keepCommits: 2 });
  const churned = storedBytes(store);
  const c = await cleanSegments(fs.inodes, { utilizationMax: 0.8, segmentsMax: 1000 });
  assert.ok(c.segmentsCleaned > 0 && c.recordsMoved > 0, JSON.stringify(c));
  fs.volume.markChanged();
  await fs.sync(); // one more commit, so the fallback commit no longer names the old segments
  const g = await collectGarbage(fs.volume, { keepCommits: 2 });
  const liveBytes = g.liveBytes;
  const after = storedBytes(store);
  assert.ok(after < churned, `stored ${after} after cleaning, ${churned} before`);
  assert.ok(after <= 1.2 * liveBytes + 64 * 1024, `stored ${after} bytes for ${liveBytes} live bytes`);
  assert.equal(await digest(fs, live), before, 'contents unchanged by the cleaner');
  await fs.close();
  const rep = await checkVolume(store, 'default');
  assert.ok(rep.clean, JSON.stringify(rep.problems.slice(0, 5)));
  const fs2 = await openFileSystem({ store, flushIntervalMs: 0, gcIntervalMs: 0 });
  assert.equal(await digest(fs2, live), before, 'contents intact after reopening');
  await fs2.close();
});
