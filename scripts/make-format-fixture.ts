/**
 * Write the fixture of the current format version N: a small volume in a LocalStore under
 * test/fixtures/format-vN/store, plus manifest.json describing what the volume must contain.
 * test/integration/format-fixture.test.ts opens a copy of every fixture with the current code and
 * checks it.
 *
 * Run once per format version, then commit the result and never regenerate it (docs/FORMAT.md,
 * "Compatibility policy"): `npx tsx scripts/make-format-fixture.ts [--force]`. From version 2 on,
 * the volume is left as a crash leaves it, its newest commits deltas after a checkpoint, so that
 * opening it replays their journals.
 *
 * The volume covers: small files in the commit segment, a file of several 64 KiB records (one
 * 200 KiB write), a file streamed in 32 KiB writes whose run outgrows largeRunBytes, so most of it
 * goes into data segments (small segmentBytesMax), a sparse file with a punched hole, split
 * extents from overwrites, a truncated file, an empty file, nested directories (setgid, sticky),
 * a symlink, a hard link, a fifo, xattrs in three namespaces, non-root owners, explicit times,
 * unicode and 255-byte names, removed and renamed entries, several commits, and a snapshot.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../src/objstore/index.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  openFileSystem,
  rootIdentity as root,
  type SiltFileSystem,
} from '../src/fs/index.ts';
import { checkVolume } from '../src/fsck/index.ts';
import { COMMIT_VERSION } from '../src/headhunter/index.ts';

export const FIXTURE_VOLUME = 'fixture';
const HERE = dirname(fileURLToPath(import.meta.url));
/** The format version the current code writes (the commit record version). */
const FORMAT = COMMIT_VERSION;
const OUT = resolve(HERE, `../test/fixtures/format-v${FORMAT}`);

export interface ManifestEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  /** Regular files: sha256 of the contents, and bytes backed by data (st_blocks * 512 rounds up). */
  sha256?: string;
  blocks?: number;
  /** Regular files: [offset, length] of every data range (SEEK_DATA/SEEK_HOLE walk). */
  dataRanges?: Array<[number, number]>;
  target?: string;
  /** Directory entries (names, sorted). */
  children?: string[];
  /** xattr name -> base64 value. */
  xattrs: Record<string, string>;
  mtimeNs?: string;
}

export interface Manifest {
  formatVersion: number;
  volume: string;
  writtenBy: string;
  writtenAt: string;
  /** Groups of paths that name one inode. */
  hardLinks: string[][];
  snapshots: string[];
  commits: number;
  dataSegments: number;
  entries: ManifestEntry[];
}

/** Deterministic bytes: a file's contents are reproducible from its name. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function build(fs: SiltFileSystem): Promise<void> {
  const W = (ino: number, off: number, data: Uint8Array) => fs.write(root, ino, off, data);
  const alice = { uid: 1000, gid: 1000, groups: [100] };

  // Commit 2: small files and directories.
  const hello = await fs.create(root, 1, 'hello.txt', 0o644);
  await W(hello.ino, 0, Buffer.from('Hello, Silt format version 1!\n'));
  const docs = await fs.mkdir(root, 1, 'docs', 0o755);
  const deep = await fs.mkdir(root, (await fs.mkdir(root, docs.ino, 'a', 0o750)).ino, 'b', 0o700);
  const nested = await fs.create(root, deep.ino, 'nested.txt', 0o600);
  await W(nested.ino, 0, Buffer.from('deep inside\n'));
  await fs.create(root, docs.ino, 'empty', 0o644);
  await fs.sync();

  // Commit 3: a file of several 64 KiB records, and one streamed into data segments (sequential run
  // beyond largeRunBytes, segments closed at segmentBytesMax).
  const multi = await fs.create(root, 1, 'multi-record.bin', 0o644);
  await W(multi.ino, 0, pattern(200 * 1024 + 17, 1));
  const big = await fs.create(root, 1, 'data-segments.bin', 0o644);
  const bigData = pattern(512 * 1024 + 5, 2);
  for (let off = 0; off < bigData.length; off += 32 * 1024) await W(big.ino, off, bigData.subarray(off, off + 32 * 1024));
  await fs.sync();

  // Commit 4: sparse file with a punched hole; split extents; truncation.
  const sparse = await fs.create(root, 1, 'sparse.bin', 0o644);
  await W(sparse.ino, 0, pattern(10_000, 3));
  await W(sparse.ino, 1024 * 1024, pattern(5000, 4));
  await W(sparse.ino, 3 * 1024 * 1024 - 10, pattern(10, 5));
  await fs.fallocate(root, sparse.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096);
  const split = await fs.create(root, 1, 'overwritten.txt', 0o644);
  await W(split.ino, 0, Buffer.from('0123456789'.repeat(100)));
  await W(split.ino, 100, Buffer.from('middle overwrite'));
  await W(split.ino, 0, Buffer.from('START'));
  await W(split.ino, 995, Buffer.from('END..'));
  const trunc = await fs.create(root, 1, 'truncated.txt', 0o644);
  await W(trunc.ino, 0, pattern(3000, 6));
  await fs.setattr(root, trunc.ino, { size: 1234 });
  await fs.setattr(root, trunc.ino, { size: 2000 }); // grows again: a hole at the end
  await fs.sync();

  // Commit 5: links, special files, xattrs, owners, modes, times, odd names.
  await fs.symlink(root, 1, 'link-to-hello', 'hello.txt');
  await fs.symlink(root, docs.ino, 'dangling', '../nowhere/at/all');
  await fs.link(root, hello.ino, docs.ino, 'hello-hardlink.txt');
  await fs.mknod(root, 1, 'fifo', S_IFIFO | 0o640, 0);
  await fs.setxattr(root, hello.ino, 'user.comment', Buffer.from('a user xattr'));
  await fs.setxattr(root, hello.ino, 'user.empty', Buffer.alloc(0));
  await fs.setxattr(root, hello.ino, 'user.binary', Buffer.from([0, 1, 2, 255, 254, 0]));
  await fs.setxattr(root, hello.ino, 'security.selinux', Buffer.from('system_u:object_r:silt_t:s0\0'));
  await fs.setxattr(root, docs.ino, 'trusted.dir', pattern(3000, 7));
  const shared = await fs.mkdir(root, 1, 'shared', 0o777);
  await fs.setattr(root, shared.ino, { gid: 100, mode: 0o2775 });
  const owned = await fs.create(alice, shared.ino, 'alice.txt', 0o640);
  await W(owned.ino, 0, Buffer.from('owned by alice, group from the setgid directory\n'));
  const tmp = await fs.mkdir(root, 1, 'tmp', 0o1777);
  await fs.setattr(root, tmp.ino, { mode: 0o1777 });
  await fs.create(root, tmp.ino, 'ünïcødé-名前.txt', 0o644);
  await fs.create(root, tmp.ino, 'n'.repeat(255), 0o644);
  await fs.setattr(root, nested.ino, { mtimeNs: 1_234_567_890_123_456_789n, atimeNs: 987_654_321_000_000_000n });
  await fs.sync();

  // A snapshot of commit 5, then history the snapshot does not see.
  const vol = fs.volume as unknown as { createSnapshot?: (name: string) => Promise<unknown> };
  if (typeof vol.createSnapshot === 'function') await vol.createSnapshot('before-cleanup');

  // Commit 7: removals and renames (older commits still hold the previous state).
  const gone = await fs.create(root, 1, 'to-be-removed', 0o644);
  await W(gone.ino, 0, pattern(70_000, 8));
  await fs.sync();
  await fs.unlink(root, 1, 'to-be-removed');
  await fs.rename(root, 1, 'overwritten.txt', docs.ino, 'renamed.txt');
  await fs.mkdir(root, 1, 'removed-dir', 0o755);
  await fs.rmdir(root, 1, 'removed-dir');
  await fs.sync();
}

async function describe(fs: SiltFileSystem, path: string, ino: number): Promise<ManifestEntry[]> {
  const a = await fs.getattr(root, ino);
  const type = (a.mode & S_IFMT) === S_IFDIR ? 'dir' : (a.mode & S_IFMT) === S_IFLNK ? 'symlink' : (a.mode & S_IFMT) === S_IFREG ? 'file' : 'fifo';
  const xattrs: Record<string, string> = {};
  if (type === 'file' || type === 'dir') {
    for (const n of (await fs.listxattr(root, ino)).sort()) xattrs[n] = Buffer.from(await fs.getxattr(root, ino, n)).toString('base64');
  }
  const e: ManifestEntry = { path, type, mode: a.mode, uid: a.uid, gid: a.gid, nlink: a.nlink, size: a.size, xattrs };
  const out: ManifestEntry[] = [e];
  if (type === 'file') {
    const data = Buffer.from(await fs.read(root, ino, 0, a.size));
    e.sha256 = createHash('sha256').update(data).digest('hex');
    e.blocks = a.blocks;
    e.dataRanges = [];
    let pos = 0;
    while (pos < a.size) {
      let start: number;
      try {
        start = await fs.lseek(root, ino, pos, 3 /* SEEK_DATA */);
      } catch {
        break;
      }
      const end = await fs.lseek(root, ino, start, 4 /* SEEK_HOLE */);
      e.dataRanges.push([start, end - start]);
      pos = end;
    }
  } else if (type === 'symlink') {
    e.target = await fs.readlink(root, ino);
  } else if (type === 'dir') {
    const ents = (await fs.readdir(root, ino, 0n, 100_000)).filter((x) => x.name !== '.' && x.name !== '..');
    e.children = ents.map((x) => x.name).sort();
    for (const c of ents.sort((x, y) => (x.name < y.name ? -1 : 1))) out.push(...(await describe(fs, path === '' ? c.name : `${path}/${c.name}`, c.ino)));
  }
  if (path === 'docs/a/b/nested.txt') e.mtimeNs = a.mtimeNs.toString();
  return out;
}

export async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const storeDir = join(OUT, 'store');
  if (existsSync(join(OUT, 'manifest.json')) && !force) {
    console.error(`${OUT} exists; fixtures are never regenerated once committed (use --force only before release)`);
    process.exit(1);
  }
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(storeDir, { recursive: true });
  const store = new LocalStore(storeDir);
  const fs = await openFileSystem({
    store,
    volume: FIXTURE_VOLUME,
    create: true,
    flushIntervalMs: 0,
    volumeOptions: { segmentBytesMax: 128 * 1024, headEveryCommits: 3, checkpointIntervalMs: 3_600_000 },
    inode: { largeRunBytes: 128 * 1024 },
  });
  await build(fs);
  const entries = await describe(fs, '', 1);
  const byIno = new Map<number, string[]>();
  for (const e of entries) {
    if (e.type !== 'file') continue;
    const ino = (await fs.lookupPath(root, e.path)).ino;
    byIno.set(ino, [...(byIno.get(ino) ?? []), e.path]);
  }
  const snapshots = ((fs.volume as unknown as { snapshots?: ReadonlyArray<{ name: string }> }).snapshots ?? []).map((s) => s.name);
  const commits = fs.volume.lastCommit.seq;
  if (fs.volume.lastCommit.kind !== 'delta') throw new Error('the fixture should end on delta commits');
  fs.inodes.stop(); // no close: the newest commits stay deltas, as after a crash
  const report = await checkVolume(store, FIXTURE_VOLUME);
  if (!report.clean) throw new Error(`fixture is not fsck-clean: ${JSON.stringify(report.problems)}`);
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
  const objects = files(storeDir);
  const bytes = objects.reduce((s, f) => s + statSync(f).size, 0);
  const manifest: Manifest = {
    formatVersion: FORMAT,
    volume: FIXTURE_VOLUME,
    writtenBy: 'scripts/make-format-fixture.ts',
    writtenAt: new Date().toISOString(),
    hardLinks: [...byIno.values()].filter((p) => p.length > 1),
    snapshots,
    commits,
    dataSegments: objects.filter((f) => f.includes(`${FIXTURE_VOLUME}/seg/`)).length,
    entries,
  };
  writeFileSync(join(OUT, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  console.log(`${OUT}: ${objects.length} objects, ${bytes} bytes, ${commits} commits, ${manifest.dataSegments} data segments, ${entries.length} entries`);
  if (bytes > 2 * 1024 * 1024) throw new Error('fixture exceeds 2 MiB');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
