/**
 * In-process engine benchmark: the Silt fs layer over a LocalStore in a temp directory, beside a
 * node:fs baseline doing the same work on a plain directory of the same disk, in the same run.
 *
 *   npx tsx bench/engine.ts            (see bench/README.md for what each figure means)
 *
 * Environment: BENCH_FILES (10000), BENCH_SYNC_FILES (= BENCH_FILES), BENCH_BIG_MIB (1024),
 * BENCH_DIR (os.tmpdir()), BENCH_DROP_CACHES=1 (root: drop the kernel page cache before each
 * cold read, so both cold reads come from disk).
 */
import { CountingStore } from './counting-store.ts';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore, type ObjectStore, type PutOptions, type ByteRange, type ListOptions } from '../src/objstore/index.ts';
import { O_WRONLY, O_RDONLY, openFileSystem, rootIdentity as root, type SiltFileSystem } from '../src/fs/index.ts';

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const SYNC_FILES = Number(process.env.BENCH_SYNC_FILES ?? FILES);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 1024);
const FILE_BYTES = 4096;
const MiB = 1024 * 1024;


/** Peak RSS while a phase runs, sampled every 20 ms; and the CPU time the process used. */
class RssSampler {
  private peak = 0;
  private timer: NodeJS.Timeout | null = null;
  private cpu0 = process.cpuUsage();
  /** CPU seconds (user + system) of the last start..stop. */
  cpuSec = 0;
  start(): void {
    this.cpu0 = process.cpuUsage();
    this.peak = process.memoryUsage().rss;
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, process.memoryUsage().rss)), 20);
  }
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    const c = process.cpuUsage(this.cpu0);
    this.cpuSec = (c.user + c.system) / 1e6;
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    return this.peak;
  }
}

interface PhaseResult {
  name: string;
  silt: Record<string, number>;
  baseline: Record<string, number>;
  ratio: Record<string, number>;
}

const results: PhaseResult[] = [];
const rss = new RssSampler();
const now = () => performance.now();
const mb = (bytes: number) => bytes / MiB;

function fileBody(i: number): Buffer {
  const b = Buffer.alloc(FILE_BYTES, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

function bigChunk(i: number): Buffer {
  const b = Buffer.alloc(MiB, (i * 7) & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

function dropCaches(): void {
  if (process.env.BENCH_DROP_CACHES !== '1') return;
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

/** syncfs(2) of the file system holding `dir` (coreutils `sync -f`). */
function syncfs(dir: string): void {
  execFileSync('sync', ['-f', dir]);
}

async function openSilt(dir: string, flushIntervalMs: number): Promise<{ fs: SiltFileSystem; store: CountingStore }> {
  mkdirSync(dir, { recursive: true });
  const store = new CountingStore(new LocalStore(dir));
  const fs = await openFileSystem({ store, volume: 'bench', create: true, flushIntervalMs });
  return { fs, store };
}

// ------------------------------------------------------------------ small files, periodic commits

async function smallFilesPeriodic(base: string): Promise<void> {
  const { fs, store } = await openSilt(join(base, 'silt-small'), 1000);
  const d = await fs.mkdir(root, 1, 'd', 0o755);
  const put0 = store.snapshot();
  const commits0 = fs.volume.writer.counters.commitSegmentsPut;
  rss.start();
  const t0 = now();
  for (let i = 0; i < FILES; i++) {
    const f = await fs.create(root, d.ino, `f${i}`, 0o644);
    await fs.open(root, f.ino, O_WRONLY);
    await fs.write(root, f.ino, 0, fileBody(i));
    await fs.release(f.ino, true);
  }
  const tReturned = now();
  await fs.sync();
  const tDurable = now();
  const siltRss = rss.stop();
  const siltCpu = rss.cpuSec;
  const puts = store.puts - put0.puts;
  const commits = fs.volume.writer.counters.commitSegmentsPut - commits0;
  await fs.close();

  const bdir = join(base, 'fs-small');
  mkdirSync(bdir);
  rss.start();
  const b0 = now();
  for (let i = 0; i < FILES; i++) {
    const h = await fsp.open(join(bdir, `f${i}`), 'wx', 0o644);
    await h.write(fileBody(i), 0, FILE_BYTES, 0);
    await h.close();
  }
  const bReturned = now();
  syncfs(bdir);
  const bDurable = now();
  const baseRss = rss.stop();
  const baseCpu = rss.cpuSec;

  const silt = {
    filesPerSecReturned: FILES / ((tReturned - t0) / 1000),
    filesPerSecDurable: FILES / ((tDurable - t0) / 1000),
    MBperSecDurable: mb(FILES * FILE_BYTES) / ((tDurable - t0) / 1000),
    puts,
    commitPuts: store.logPuts - put0.logPuts,
    dataSegmentPuts: store.segPuts - put0.segPuts,
    commits,
    putsPer1000Files: (puts / FILES) * 1000,
    peakRssMiB: mb(siltRss),
    cpuSec: siltCpu,
  };
  const baseline = {
    filesPerSecReturned: FILES / ((bReturned - b0) / 1000),
    filesPerSecDurable: FILES / ((bDurable - b0) / 1000),
    MBperSecDurable: mb(FILES * FILE_BYTES) / ((bDurable - b0) / 1000),
    peakRssMiB: mb(baseRss),
    cpuSec: baseCpu,
  };
  results.push({
    name: `${FILES} files of 4 KiB, create+write+release, 1 s periodic commits, one final sync`,
    silt,
    baseline,
    ratio: {
      filesPerSecReturned: silt.filesPerSecReturned / baseline.filesPerSecReturned,
      filesPerSecDurable: silt.filesPerSecDurable / baseline.filesPerSecDurable,
    },
  });
}

// ------------------------------------------------------------------ small files, fsync each

async function smallFilesFsync(base: string, writers: number): Promise<void> {
  const { fs, store } = await openSilt(join(base, `silt-fsync-${writers}`), 0);
  const d = await fs.mkdir(root, 1, 'd', 0o755);
  await fs.sync();
  const put0 = store.snapshot();
  const commits0 = fs.volume.writer.counters.commitSegmentsPut;
  const per = Math.ceil(SYNC_FILES / writers);
  rss.start();
  const t0 = now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let k = 0; k < per; k++) {
        const i = w * per + k;
        if (i >= SYNC_FILES) break;
        const f = await fs.create(root, d.ino, `f${i}`, 0o644);
        await fs.open(root, f.ino, O_WRONLY);
        await fs.write(root, f.ino, 0, fileBody(i));
        await fs.fsync(f.ino, false);
        await fs.release(f.ino, true);
      }
    }),
  );
  const t1 = now();
  const siltRss = rss.stop();
  const siltCpu = rss.cpuSec;
  const puts = store.puts - put0.puts;
  const commits = fs.volume.writer.counters.commitSegmentsPut - commits0;
  await fs.close();

  const bdir = join(base, `fs-fsync-${writers}`);
  mkdirSync(bdir);
  rss.start();
  const b0 = now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let k = 0; k < per; k++) {
        const i = w * per + k;
        if (i >= SYNC_FILES) break;
        const h = await fsp.open(join(bdir, `f${i}`), 'wx', 0o644);
        await h.write(fileBody(i), 0, FILE_BYTES, 0);
        await h.sync();
        await h.close();
      }
    }),
  );
  const b1 = now();
  const baseRss = rss.stop();
  const baseCpu = rss.cpuSec;
  const silt = {
    filesPerSec: SYNC_FILES / ((t1 - t0) / 1000),
    puts,
    commits,
    commitPuts: store.logPuts - put0.logPuts,
    otherPuts: puts - (store.logPuts - put0.logPuts) - (store.segPuts - put0.segPuts),
    commitPutsPerCommit: (store.logPuts - put0.logPuts) / commits,
    filesPerCommit: SYNC_FILES / commits,
    putsPer1000Files: (puts / SYNC_FILES) * 1000,
    peakRssMiB: mb(siltRss),
    cpuSec: siltCpu,
  };
  const baseline = { filesPerSec: SYNC_FILES / ((b1 - b0) / 1000), peakRssMiB: mb(baseRss), cpuSec: baseCpu };
  results.push({
    name: `${SYNC_FILES} files of 4 KiB, fsync after every file, ${writers} concurrent writer${writers > 1 ? 's' : ''}`,
    silt,
    baseline,
    ratio: { filesPerSec: silt.filesPerSec / baseline.filesPerSec },
  });
}

// ------------------------------------------------------------------ one big file

async function bigFile(base: string): Promise<void> {
  const dir = join(base, 'silt-big');
  const { fs, store } = await openSilt(dir, 1000);
  const f = await fs.create(root, 1, 'big', 0o644);
  await fs.open(root, f.ino, O_WRONLY);
  const put0 = store.snapshot();
  rss.start();
  const t0 = now();
  for (let i = 0; i < BIG_MIB; i++) await fs.write(root, f.ino, i * MiB, bigChunk(i));
  await fs.fsync(f.ino, false);
  const t1 = now();
  const writeRss = rss.stop();
  const writeCpu = rss.cpuSec;
  await fs.release(f.ino, true);
  const puts = store.puts - put0.puts;
  await fs.close();
  dropCaches();
  // Cold: a new process-level state (fresh volume, empty caches) reading from the store.
  const { fs: fs2, store: store2 } = await openSilt(dir, 0);
  const g = await fs2.lookup(root, 1, 'big');
  await fs2.open(root, g.ino, O_RDONLY);
  rss.start();
  const r0 = now();
  let bad = 0;
  for (let i = 0; i < BIG_MIB; i++) {
    const b = await fs2.read(root, g.ino, i * MiB, MiB);
    if (b.length !== MiB || Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0) !== i || b[MiB - 1] !== ((i * 7) & 0xff)) bad++;
  }
  const r1 = now();
  const readRss = rss.stop();
  const readCpu = rss.cpuSec;
  await fs2.release(g.ino, false);
  await fs2.close();
  if (bad) throw new Error(`${bad} MiB read back wrong`);

  const bpath = join(base, 'fs-big');
  rss.start();
  const b0 = now();
  const h = await fsp.open(bpath, 'w', 0o644);
  for (let i = 0; i < BIG_MIB; i++) await h.write(bigChunk(i), 0, MiB, i * MiB);
  await h.sync();
  await h.close();
  const b1 = now();
  const bWriteRss = rss.stop();
  const bWriteCpu = rss.cpuSec;
  dropCaches();
  rss.start();
  const c0 = now();
  const hr = await fsp.open(bpath, 'r');
  const buf = Buffer.alloc(MiB);
  for (let i = 0; i < BIG_MIB; i++) {
    const { bytesRead } = await hr.read(buf, 0, MiB, i * MiB);
    if (bytesRead !== MiB || buf.readUInt32LE(0) !== i) bad++;
  }
  await hr.close();
  const c1 = now();
  const bReadRss = rss.stop();
  const bReadCpu = rss.cpuSec;
  if (bad) throw new Error(`baseline: ${bad} MiB read back wrong`);
  const silt = {
    writeMBperSec: BIG_MIB / ((t1 - t0) / 1000),
    readColdMBperSec: BIG_MIB / ((r1 - r0) / 1000),
    puts,
    putsPerGiB: (puts / BIG_MIB) * 1024,
    dataSegmentPuts: store.segPuts - put0.segPuts,
    commitPuts: store.logPuts - put0.logPuts,
    readGets: store2.gets,
    writePeakRssMiB: mb(writeRss),
    readPeakRssMiB: mb(readRss),
    writeCpuSec: writeCpu,
    readCpuSec: readCpu,
  };
  const baseline = {
    writeMBperSec: BIG_MIB / ((b1 - b0) / 1000),
    readColdMBperSec: BIG_MIB / ((c1 - c0) / 1000),
    writePeakRssMiB: mb(bWriteRss),
    readPeakRssMiB: mb(bReadRss),
    writeCpuSec: bWriteCpu,
    readCpuSec: bReadCpu,
  };
  results.push({
    name: `one ${BIG_MIB} MiB file: 1 MiB sequential writes + fsync, then a cold sequential read (fs reopened)`,
    silt,
    baseline,
    ratio: { writeMBperSec: silt.writeMBperSec / baseline.writeMBperSec, readColdMBperSec: silt.readColdMBperSec / baseline.readColdMBperSec },
  });
}

// ------------------------------------------------------------------ main

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function print(r: PhaseResult): void {
  console.log(`\n${r.name}`);
  const keys = [...new Set([...Object.keys(r.silt), ...Object.keys(r.baseline)])];
  const w = Math.max(...keys.map((k) => k.length));
  console.log(`  ${''.padEnd(w)}  ${'silt'.padStart(12)}  ${'node:fs'.padStart(12)}  ${'silt/node:fs'.padStart(12)}`);
  for (const k of keys) {
    const s = r.silt[k];
    const b = r.baseline[k];
    const q = r.ratio[k];
    console.log(`  ${k.padEnd(w)}  ${(s === undefined ? '' : fmt(s)).padStart(12)}  ${(b === undefined ? '' : fmt(b)).padStart(12)}  ${(q === undefined ? '' : fmt(q) + 'x').padStart(12)}`);
  }
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'silt-bench-'));
  const started = new Date();
  console.log(`silt engine benchmark: ${base} (node ${process.version}, ${FILES} files, ${SYNC_FILES} fsync files, ${BIG_MIB} MiB file)`);
  try {
    await smallFilesPeriodic(base);
    print(results[results.length - 1]!);
    await smallFilesFsync(base, 1);
    print(results[results.length - 1]!);
    await smallFilesFsync(base, 8);
    print(results[results.length - 1]!);
    await bigFile(base);
    print(results[results.length - 1]!);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const outDir = resolve(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `engine-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const load = (await fsp.readFile('/proc/loadavg', 'utf8').catch(() => '')).trim();
  writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'bench/engine.ts',
        startedAt: started.toISOString(),
        node: process.version,
        loadavg: load,
        params: { files: FILES, syncFiles: SYNC_FILES, bigMiB: BIG_MIB, fileBytes: FILE_BYTES, dropCaches: process.env.BENCH_DROP_CACHES === '1' },
        results,
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`\nresults: ${out}`);
}

await main();
