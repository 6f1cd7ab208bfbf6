/**
 * Format compatibility: a volume written by each format version N (test/fixtures/format-vN, made
 * once by scripts/make-format-fixture.ts and never regenerated) must open with the current code,
 * hold exactly what its manifest says, pass fsck, and accept new commits. See docs/FORMAT.md
 * section 9. From version 2 on, a fixture ends on delta commits, so opening it replays journals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../src/objstore/index.ts';
import { SEEK_DATA, SEEK_HOLE, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../../src/fs/index.ts';
import { checkVolume } from '../../src/fsck/index.ts';
import { COMMIT_VERSION, readCommit } from '../../src/headhunter/index.ts';
import { TRAILER_BYTES, decodeTrailer, SegmentKind } from '../../src/segment/index.ts';
import type { Manifest, ManifestEntry } from '../../scripts/make-format-fixture.ts';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures');
/** Every format version there must be a fixture for: 1 up to the one the current code writes. */
const VERSIONS = Array.from({ length: COMMIT_VERSION }, (_, i) => i + 1);

function copyFixture(version: number): { dir: string; store: LocalStore; manifest: Manifest } {
  const FIXTURE = join(FIXTURES, `format-v${version}`);
  assert.ok(existsSync(join(FIXTURE, 'manifest.json')), `the v${version} fixture is committed`);
  const dir = mkdtempSync(join(tmpdir(), `silt-fixture-v${version}-`));
  cpSync(join(FIXTURE, 'store'), join(dir, 'store'), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')) as Manifest;
  return { dir, store: new LocalStore(join(dir, 'store')), manifest };
}

function allFiles(d: string): string[] {
  return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? allFiles(join(d, n)) : [join(d, n)]));
}

async function checkEntry(fs: SiltFileSystem, e: ManifestEntry): Promise<number> {
  const a = await fs.lookupPath(root, e.path);
  const where = `/${e.path}`;
  assert.equal(a.mode, e.mode, `${where} mode`);
  assert.equal(a.uid, e.uid, `${where} uid`);
  assert.equal(a.gid, e.gid, `${where} gid`);
  assert.equal(a.nlink, e.nlink, `${where} nlink`);
  assert.equal(a.size, e.size, `${where} size`);
  if (e.mtimeNs !== undefined) assert.equal(a.mtimeNs.toString(), e.mtimeNs, `${where} mtime`);
  if (e.type === 'file') {
    const data = Buffer.from(await fs.read(root, a.ino, 0, a.size + 1));
    assert.equal(data.length, e.size);
    assert.equal(createHash('sha256').update(data).digest('hex'), e.sha256, `${where} contents`);
    assert.equal(a.blocks, e.blocks, `${where} blocks`);
    const ranges: Array<[number, number]> = [];
    for (let pos = 0; pos < a.size; ) {
      const start = await fs.lseek(root, a.ino, pos, SEEK_DATA).catch(() => -1);
      if (start < 0) break;
      const end = await fs.lseek(root, a.ino, start, SEEK_HOLE);
      ranges.push([start, end - start]);
      pos = end;
    }
    assert.deepEqual(ranges, e.dataRanges, `${where} data ranges`);
  } else if (e.type === 'symlink') {
    assert.equal(await fs.readlink(root, a.ino), e.target, `${where} target`);
  } else if (e.type === 'dir') {
    const names = (await fs.readdir(root, a.ino, 0n, 100_000)).map((x) => x.name).filter((n) => n !== '.' && n !== '..');
    assert.deepEqual(names.sort(), e.children, `${where} entries`);
  }
  if (e.type === 'file' || e.type === 'dir') {
    assert.deepEqual((await fs.listxattr(root, a.ino)).sort(), Object.keys(e.xattrs).sort(), `${where} xattr names`);
    for (const [k, v] of Object.entries(e.xattrs)) {
      assert.equal(Buffer.from(await fs.getxattr(root, a.ino, k)).toString('base64'), v, `${where} xattr ${k}`);
    }
  }
  return a.ino;
}

for (const version of VERSIONS) {
test(`format v${version} fixture: the objects are the documented ones`, async () => {
  const { dir, store, manifest } = copyFixture(version);
  try {
    const prefix = `${manifest.volume}/`;
    const keys = allFiles(join(dir, 'store')).map((f) => f.slice(join(dir, 'store').length + 1)).sort();
    assert.ok(keys.includes(`${prefix}super`) && keys.includes(`${prefix}head`));
    const logs = keys.filter((k) => k.startsWith(`${prefix}log/`));
    const segs = keys.filter((k) => k.startsWith(`${prefix}seg/`));
    assert.equal(logs.length, manifest.commits);
    assert.equal(segs.length, manifest.dataSegments);
    assert.ok(segs.length >= 2, 'the fixture exercises data segments');
    for (const k of [...logs, ...segs]) assert.match(k, /\/(log|seg)\/[0-9a-f]{16}$/);
    const total = keys.reduce((s, k) => s + statSync(join(dir, 'store', k)).size, 0);
    assert.ok(total < 2 * 1024 * 1024, `fixture is ${total} bytes`);
    // Every segment's trailer decodes with the current code and names its own object.
    for (const k of [...logs, ...segs]) {
      const b = readFileSync(join(dir, 'store', k));
      const t = decodeTrailer(b.subarray(b.length - TRAILER_BYTES), k);
      const n = parseInt(k.slice(-16), 16);
      assert.equal(t.totalLen, b.length);
      assert.equal(t.version, 1);
      if (k.includes('/log/')) {
        assert.equal(t.kind, SegmentKind.COMMIT);
        assert.equal(t.segmentId, 2 * n);
        const c = await readCommit(store, prefix, n);
        assert.equal(c.seq, n);
        assert.equal(c.version, version);
        if (n === manifest.commits && version >= 2) assert.equal(c.kind, 'delta', 'the newest commit is a delta (opening replays)');
      } else {
        assert.equal(t.kind, SegmentKind.DATA);
        assert.equal(t.segmentId, 2 * n + 1);
      }
    }
    const sb = JSON.parse(readFileSync(join(dir, 'store', prefix, 'super'), 'utf8'));
    assert.equal(sb.format, 'silt');
    assert.equal(sb.version, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`format v${version} fixture: opens with the current code, holds its manifest, fsck clean, takes new commits`, async () => {
  const { dir, store, manifest } = copyFixture(version);
  try {
    assert.equal(manifest.formatVersion, version);
    const before = await checkVolume(store, manifest.volume);
    assert.deepEqual(before.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(before.problems));
    assert.equal(before.stats.commitSeq, manifest.commits);
    let fs = await openFileSystem({ store, volume: manifest.volume, flushIntervalMs: 0 });
    assert.deepEqual(fs.volume.openWarnings, []);
    assert.equal(fs.volume.lastCommit.seq, manifest.commits);
    assert.deepEqual(fs.volume.lastCommit.snapshots.map((s) => s.name), manifest.snapshots);
    const inoOf = new Map<string, number>();
    for (const e of manifest.entries) inoOf.set(e.path, await checkEntry(fs, e));
    for (const group of manifest.hardLinks) {
      assert.equal(new Set(group.map((p) => inoOf.get(p))).size, 1, `${group.join(' = ')} are one inode`);
    }
    // The old volume accepts new writes in the current format, and both read back.
    const f = await fs.create(root, 1, 'written-by-current-code', 0o644);
    await fs.write(root, f.ino, 0, Buffer.from('new'));
    await fs.write(root, inoOf.get('hello.txt')!, 0, Buffer.from('HELLO'));
    await fs.close();
    fs = await openFileSystem({ store, volume: manifest.volume, flushIntervalMs: 0 });
    assert.equal(fs.volume.lastCommit.seq, manifest.commits + 1);
    assert.equal(Buffer.from(await fs.read(root, f.ino, 0, 10)).toString(), 'new');
    const hello = Buffer.from(await fs.read(root, inoOf.get('hello.txt')!, 0, 100)).toString();
    assert.ok(hello.startsWith('HELLO, Silt format'), hello);
    for (const e of manifest.entries) if (e.path !== '' && e.path !== 'hello.txt' && e.path !== 'docs/hello-hardlink.txt') await checkEntry(fs, e);
    await fs.close();
    const after = await checkVolume(store, manifest.volume);
    assert.deepEqual(after.problems.filter((p) => p.severity === 'error'), [], JSON.stringify(after.problems));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
}
