/**
 * Regression tests for bugs the reliability campaign found (docs/RELIABILITY.md lists them).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openFileSystem, rootIdentity as who } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { MemoryStore } from '../../src/objstore/index.ts';
import { TRAILER_BYTES, decodeTrailer } from '../../src/segment/index.ts';

test('fsck reports a live segment whose summary is damaged (the cleaner reads records through it)', async () => {
  const store = new MemoryStore();
  const fs = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  const a = await fs.create(who, 1, 'a', 0o644);
  await fs.write(who, a.ino, 0, Buffer.alloc(10_000, 7));
  await fs.sync();
  const key = `default/log/${fs.volume.lastCommit.seq.toString(16).padStart(16, '0')}`;
  await fs.close();
  assert.ok((await checkVolume(store, 'default')).clean);
  const bytes = Buffer.from(await store.get(key));
  const t = decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES), key);
  bytes[t.summaryOff + t.summaryLen - 3]! ^= 0x10; // inside the summary's payload, nowhere else
  await store.put(key, bytes);
  const r = await checkVolume(store, 'default');
  assert.equal(r.clean, false, 'a damaged summary of a live segment is an error');
  assert.ok(r.problems.some((p) => p.severity === 'error' && p.where === key && /summary/.test(p.message)), JSON.stringify(r.problems));
});
