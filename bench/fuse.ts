/**
 * FUSE benchmark: the same workloads through a real Silt mount (local store `file:` in a temp
 * directory) and on a plain local directory of the same disk, in the same run, in both close modes
 * (default, then remounted with --sync-on-close).
 *
 *   npx tsx bench/fuse.ts [--quick]      (see bench/README.md; not part of npm test)
 *
 * The workloads run in this process (async node:fs calls); the Silt server is a separate background
 * process started with `silt mount --background` and stopped with `silt umount`.
 * Environment: BENCH_DIR (os.tmpdir()): where the temp directories go.
 */
// More libuv threads so 8 concurrent async fs calls really are 8 outstanding kernel requests.
process.env.UV_THREADPOOL_SIZE ??= '16';

import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const QUICK = process.argv.includes('--quick');
const SMALL_FILES = 1000;
const SMALL_BYTES = 4096;
const STAT_FILES = 10_000;
const BIG_MIB = QUICK ? 256 : 1024;
const MiB = 1024 * 1024;

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const silt = join(repo, 'bin', 'silt.mjs');
const base = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'silt-bench-fuse-'));
const storeDir = join(base, 'store');
const mnt = join(base, 'mnt');
const localRoot = join(base, 'local');
const logFile = join(base, 'mount.log');
mkdirSync(storeDir);
mkdirSync(mnt);
mkdirSync(localRoot);

const now = () => performance.now();
const secs = (t0: number) => (now() - t0) / 1000;

function run(cmd: string, args: string[]): void {
  const fd = openSync(logFile, 'a');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout: 300_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}); see ${logFile}`);
  } finally {
    closeSync(fd);
  }
}

let mounted = false;
function mount(syncOnClose: boolean): void {
  const args = [silt, 'mount', '--store', `file:${storeDir}`, mnt, '--mkfs', '--background'];
  if (syncOnClose) args.push('--sync-on-close');
  run(process.execPath, args);
  mounted = true;
}
function umount(): void {
  run(process.execPath, [silt, 'umount', mnt]);
  mounted = false;
}

/**
 * Evict a file (or every file of at least 1 MiB under a directory: the data segments, not the
 * thousands of small commit objects) from the kernel page cache: GNU dd iflag=nocache.
 */
function evict(path: string): void {
  const files: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else if (st.isFile() && (st.size >= MiB || p === path)) files.push(p);
  };
  walk(path);
  for (const f of files) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** Run n tasks with at most `conc` in flight. */
async function pool(n: number, conc: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: conc }, worker));
}

const payload = Buffer.alloc(SMALL_BYTES, 0x5a);

/**
 * Small files: create+write+close of SMALL_FILES files of 4 KiB with `conc` writers.
 * `perFileSync` (the local baseline of sync-on-close): fsync before close.
 * Then make everything durable: fsync of the directory on Silt (FSYNCDIR commits the whole volume),
 * `sync -f` (syncfs) on the local directory. Returns files/s until the last close returned and until
 * everything was durable.
 */
async function smallFiles(dir: string, conc: number, perFileSync: boolean, siltSide: boolean) {
  await fsp.mkdir(dir);
  const t0 = now();
  await pool(SMALL_FILES, conc, async (i) => {
    const fh = await fsp.open(join(dir, `f${i}`), 'wx');
    try {
      await fh.write(payload, 0, payload.length, 0);
      if (perFileSync) await fh.sync();
    } finally {
      await fh.close();
    }
  });
  const returned = secs(t0);
  if (siltSide) {
    const dh = await fsp.open(dir, 'r');
    await dh.sync();
    await dh.close();
  } else {
    run('sync', ['-f', dir]);
  }
  const durable = secs(t0);
  return { filesPerSecClosed: SMALL_FILES / returned, filesPerSecDurable: SMALL_FILES / durable };
}

/** Sequential write of BIG_MIB MiB in 1 MiB writes, fsync, close (dd conv=fsync). MB/s (MiB/s). */
async function bigWrite(file: string) {
  const buf = Buffer.alloc(MiB);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((i * 2654435761) >>> 0, i);
  const t0 = now();
  const fh = await fsp.open(file, 'w');
  for (let i = 0; i < BIG_MIB; i++) {
    buf.writeUInt32LE(i, 0);
    await fh.write(buf, 0, MiB, i * MiB);
  }
  await fh.sync();
  await fh.close();
  return BIG_MIB / secs(t0);
}

/** Sequential read in 1 MiB reads; checks the length. MiB/s. */
async function bigRead(file: string) {
  const buf = Buffer.alloc(MiB);
  const t0 = now();
  const fh = await fsp.open(file, 'r');
  let total = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, MiB, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  await fh.close();
  if (total !== BIG_MIB * MiB) throw new Error(`read ${total} bytes of ${file}, expected ${BIG_MIB * MiB}`);
  return BIG_MIB / secs(t0);
}

/** Create STAT_FILES empty files (8 at a time; not timed). */
async function makeTree(dir: string) {
  await fsp.mkdir(dir);
  await pool(STAT_FILES, 8, async (i) => (await fsp.open(join(dir, `s${i}`), 'wx')).close());
}

/** lstat of every file, one after another. stats/s. */
async function statAll(dir: string) {
  const t0 = now();
  for (let i = 0; i < STAT_FILES; i++) await fsp.lstat(join(dir, `s${i}`));
  return STAT_FILES / secs(t0);
}

/** `ls -l` of the directory (output discarded). Seconds. */
function lsl(dir: string) {
  const t0 = now();
  const r = spawnSync('ls', ['-l', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`ls -l ${dir} failed`);
  return secs(t0);
}

type Figures = Record<string, number>;
type Side = { silt: Figures; local: Figures };

/** One close mode: every workload on Silt then on the local directory, interleaved per phase. */
async function mode(syncOnClose: boolean): Promise<Side> {
  const tag = syncOnClose ? 'sync' : 'default';
  const s = join(mnt, tag);
  const l = join(localRoot, tag);
  const S: Figures = {};
  const L: Figures = {};
  const log = (m: string) => console.error(`[${tag}] ${m}`);
  mount(syncOnClose);
  await fsp.mkdir(s);
  await fsp.mkdir(l);
  for (const conc of [1, 8]) {
    log(`small files, ${conc} writer(s)`);
    const a = await smallFiles(join(s, `small${conc}`), conc, false, true);
    const b = await smallFiles(join(l, `small${conc}`), conc, syncOnClose, false);
    S[`small${conc}FilesPerSecClosed`] = a.filesPerSecClosed;
    S[`small${conc}FilesPerSecDurable`] = a.filesPerSecDurable;
    L[`small${conc}FilesPerSecClosed`] = b.filesPerSecClosed;
    L[`small${conc}FilesPerSecDurable`] = b.filesPerSecDurable;
  }
  log(`creating ${STAT_FILES} files for stat / ls -l`);
  await makeTree(join(s, 'tree'));
  await makeTree(join(l, 'tree'));
  log(`big file ${BIG_MIB} MiB: write + fsync`);
  S.bigWriteMBperSec = await bigWrite(join(s, 'big'));
  L.bigWriteMBperSec = await bigWrite(join(l, 'big'));
  log('big file: warm read');
  S.bigReadWarmMBperSec = await bigRead(join(s, 'big'));
  L.bigReadWarmMBperSec = await bigRead(join(l, 'big'));
  log('umount + remount; big file: cold read');
  umount();
  evict(storeDir);
  evict(join(l, 'big'));
  mount(syncOnClose);
  S.bigReadColdMBperSec = await bigRead(join(s, 'big'));
  L.bigReadColdMBperSec = await bigRead(join(l, 'big'));
  log(`stat of ${STAT_FILES} files (Silt: first access after the remount)`);
  S.statPerSec = await statAll(join(s, 'tree'));
  L.statPerSec = await statAll(join(l, 'tree'));
  log(`ls -l of ${STAT_FILES} entries`);
  S.lsLongSec = lsl(join(s, 'tree'));
  L.lsLongSec = lsl(join(l, 'tree'));
  umount();
  return { silt: S, local: L };
}

const ROWS: [key: string, label: string, unit: string, lowerIsBetter?: boolean][] = [
  ['small1FilesPerSecClosed', 'small files, 1 writer: close returned', 'files/s'],
  ['small1FilesPerSecDurable', 'small files, 1 writer: close-to-durable', 'files/s'],
  ['small8FilesPerSecClosed', 'small files, 8 writers: close returned', 'files/s'],
  ['small8FilesPerSecDurable', 'small files, 8 writers: close-to-durable', 'files/s'],
  ['bigWriteMBperSec', `write ${BIG_MIB} MiB + fsync`, 'MiB/s'],
  ['bigReadWarmMBperSec', 'sequential read, warm', 'MiB/s'],
  ['bigReadColdMBperSec', 'sequential read, cold (after remount)', 'MiB/s'],
  ['statPerSec', `stat of ${STAT_FILES} files`, 'stats/s'],
  ['lsLongSec', `ls -l of ${STAT_FILES} entries`, 's', true],
];

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

async function main() {
  const started = new Date();
  const load0 = loadavg();
  const results: { default?: Side; syncOnClose?: Side } = {};
  try {
    results.default = await mode(false);
    results.syncOnClose = await mode(true);
  } finally {
    if (mounted) {
      try {
        umount();
      } catch (e) {
        console.error(String(e));
      }
    }
  }
  const load1 = loadavg();

  const out: string[] = [];
  out.push(`# Silt FUSE benchmark${QUICK ? ' (--quick)' : ''}`, '');
  out.push(`${started.toISOString()}; big file ${BIG_MIB} MiB; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end`, '');
  out.push('| workload | close mode | Silt | local dir | unit | Silt / local |');
  out.push('|---|---|---:|---:|---|---:|');
  for (const [m, r] of Object.entries(results) as [string, Side][]) {
    for (const [k, label, unit, lower] of ROWS) {
      const a = r.silt[k] ?? NaN;
      const b = r.local[k] ?? NaN;
      // Ratio is "how fast Silt is relative to local": above 1 means Silt was faster.
      const ratio = lower ? b / a : a / b;
      out.push(`| ${label} | ${m} | ${fmt(a)} | ${fmt(b)} | ${unit} | ${ratio.toFixed(2)} |`);
    }
  }
  out.push('');
  out.push('Ratios are Silt / local (for `ls -l`, local time / Silt time): above 1 means Silt was faster.');
  out.push('Local baseline: default mode closes without fsync and then runs `sync -f`; sync-on-close mode');
  out.push('fsyncs each file before close. Silt is made durable by an fsync of the directory (one commit).');
  out.push('');
  const soc = results.syncOnClose;
  const dflt = results.default;
  const within5 = (k: string) => {
    const r = (soc.silt[k] ?? NaN) / (soc.local[k] ?? NaN);
    return `${r.toFixed(2)} (${r >= 0.2 ? 'met' : 'NOT met'})`;
  };
  out.push('Targets (issue 3):');
  out.push(`- small-file close-to-durable rate within 5x of local (ratio >= 0.2), sync-on-close mode: 1 writer ${within5('small1FilesPerSecDurable')}, 8 writers ${within5('small8FilesPerSecDurable')}`);
  const warm = (Math.max(dflt.silt.bigReadWarmMBperSec ?? NaN, soc.silt.bigReadWarmMBperSec ?? NaN) * MiB) / 1e9;
  out.push(`- sequential read >= 1 GB/s warm: best ${warm.toFixed(2)} GB/s (${warm >= 1 ? 'met' : 'NOT met'})`);
  console.log(out.join('\n'));

  const resDir = join(repo, 'bench', 'results');
  mkdirSync(resDir, { recursive: true });
  const file = join(resDir, `fuse-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ started: started.toISOString(), quick: QUICK, bigMiB: BIG_MIB, smallFiles: SMALL_FILES, statFiles: STAT_FILES, loadavgStart: load0, loadavgEnd: load1, results }, null, 2) + '\n');
  console.log(`\nJSON: ${file}`);
  rmSync(base, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  console.error(`temp directory kept: ${base}`);
  process.exitCode = 1;
});
