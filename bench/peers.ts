/**
 * Silt beside its peers over the same Swift, in one run: raw Swift (a plain HTTP client: the
 * ceiling), Silt mounted on Swift (default mode, and --sync-on-close for the small-file
 * workloads), s3fs on Swift's S3 layer, rclone mount on Swift (--vfs-cache-mode writes, and
 * --vfs-cache-mode off, which streams each write into its PUT) and a local directory (the
 * reference).
 *
 *   npm run bench:peers                  (full size: about 30-40 minutes on 2 cores)
 *   SILT_BENCH_SCALE=0.05 npm run bench:peers     (a quick run: a couple of minutes)
 *
 * Every system talks to Swift directly; the requests each sent (PUTs, all requests, request bytes,
 * GETs in flight) are counted at the store, from Swift's own proxy access log (bench/swift-log.ts),
 * so nothing but Swift is in the data path. Each repetition runs every workload on every system,
 * interleaved (the order of systems rotates per repetition); the tables report medians. Every
 * (workload, system) run has a time cap: a run that hits it is stopped (its mount killed and
 * remounted), is reported as "timed out after N s" with the progress it made, and is not repeated.
 *
 * Beside the speeds, the load-independent costs of each FUSE server (the child process the bench
 * spawns): its CPU seconds (utime + stime from /proc/PID/stat, all threads) around the small-file,
 * sequential-write and cold-read workloads, per file or per GiB; its RSS after the big write and
 * read, and its peak RSS (VmHWM) over the run. On a shared machine the speeds follow the load; CPU
 * seconds and memory much less.
 *
 * Environment (see bench/README.md):
 *   SILT_BENCH_SCALE (1)     sizes: 1,000 small files, 1 GiB big file, 10,000-entry tree, 2,048
 *                            random writes at 1; multiplied by the scale
 *   SILT_BENCH_REPS (3)      repetitions
 *   SILT_BENCH_CAP_S         time cap per run, seconds (default max(30, 150 x scale))
 *   SILT_BENCH_OUT           output folder (default bench/results/peers-<timestamp>)
 *   SILT_BENCH_SYSTEMS       comma list to run a subset (raw,silt,silt-soc,s3fs,rclone,rclone-off,local)
 *   SILT_BENCH_WORKLOADS     comma list to run a subset of the workloads (small1,small8,seqWrite,coldRead,
 *                            stat,lsl,rename,randomWrite; coldRead and randomWrite read the file
 *                            seqWrite wrote, so they need it); the 10,000-entry tree is made only
 *                            for stat, lsl and rename
 *   BENCH_DIR                where mountpoints, rclone's cache and the local directory go
 */
process.env['UV_THREADPOOL_SIZE'] ??= '24';

// Benchmarks run Swift without its updaters: their sweeps (a few CPU-seconds each on a store full
// of test containers) land at random in the timed runs. (scripts/swift-saio.sh restarts Swift
// when the setting differs from the running one.)
process.env['SWIFT_UPDATERS'] ??= '0';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { SwiftLog, type LogMark } from './swift-log.ts';
import { renderChartPng } from './chart.ts';
import { ensureSwift, purgeInBackground, swiftStateDir } from '../test/support/swift.ts';

// ------------------------------------------------------------------------------------ sizes

const SCALE = Number(process.env['SILT_BENCH_SCALE'] ?? 1);
if (!(SCALE > 0)) throw new Error(`SILT_BENCH_SCALE must be a positive number, not ${process.env['SILT_BENCH_SCALE']}`);
const REPS = Math.max(1, Math.floor(Number(process.env['SILT_BENCH_REPS'] ?? 3)));
const CAP_S = Number(process.env['SILT_BENCH_CAP_S'] ?? Math.max(30, Math.round(150 * SCALE)));
const MiB = 1024 * 1024;
const SMALL_FILES = Math.max(20, Math.round(1000 * SCALE));
const SMALL_BYTES = 4096;
const BIG_MIB = Math.max(16, Math.round(1024 * SCALE));
const TREE_FILES = Math.max(100, Math.round(10_000 * SCALE));
const RANDOM_WRITES = Math.max(64, Math.round(2048 * SCALE));
const FSYNC_EVERY = 32;
const SETUP_CAP_S = Math.max(120, CAP_S * 4);

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const siltBin = join(repo, 'bin', 'silt.mjs');
const base = mkdtempSync(join(process.env['BENCH_DIR'] ?? tmpdir(), 'silt-bench-peers-'));
const logFile = join(base, 'servers.log');
const started = new Date();
const stamp = started.toISOString().replace(/[:.]/g, '-');
const outDir = resolve(process.env['SILT_BENCH_OUT'] ?? join(repo, 'bench', 'results', `peers-${stamp}`));
const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

const now = () => performance.now();
const log = (m: string) => process.stderr.write(`[peers ${((now() / 1000) | 0).toString().padStart(5)}s] ${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------ helpers

/** Run n tasks with at most `conc` in flight; stops starting new ones once ctl.aborted. */
async function pool(n: number, conc: number, ctl: Ctl, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n && !ctl.aborted) {
      await task(next++);
      ctl.done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

/** A workload's control block: the cap sets `aborted`; workloads count `done` units of work. */
interface Ctl {
  aborted: boolean;
  done: number;
}

function sh(cmd: string, args: string[], timeoutMs = 120_000): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Clock ticks per second of the times in /proc/PID/stat (100 on practically every Linux). */
const CLK_TCK = (() => {
  const n = Number(sh('getconf', ['CLK_TCK']).out.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds (user + system) a process has used so far: fields 14 and 15 of /proc/PID/stat, which
 * sum all its threads (Silt's worker threads and libuv pool, rclone's and s3fs's threads) but not
 * its children. Undefined once it is gone.
 */
function processCpuS(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from after its last ')',
    // where field 3 starts.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[14 - 3]) + Number(f[15 - 3]);
    return Number.isFinite(ticks) ? ticks / CLK_TCK : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS (resident now) or VmHWM (the most it was resident) of a process, in MiB; undefined once it is gone. */
function processMemMiB(pid: number | undefined, key: 'VmRSS' | 'VmHWM'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function isMounted(dir: string): boolean {
  const want = resolve(dir);
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp !== undefined && mp.replace(/\\040/g, ' ') === want) return true;
  }
  return false;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = now();
  while (!(await cond())) {
    if (now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (see ${logFile})`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

function dropCaches(): void {
  sh('sync', []);
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch (e) {
    log(`could not drop the page cache (${String(e)}): cold reads may be warm`);
  }
}

function fileLogFd(): number {
  return openSync(logFile, 'a');
}

const bigChunk = (() => {
  const b = Buffer.alloc(MiB);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
})();
const smallPayload = Buffer.alloc(SMALL_BYTES, 0x5a);

// ------------------------------------------------------------------------------------ systems

type SystemName = 'raw' | 'silt' | 'silt-soc' | 's3fs' | 'rclone' | 'rclone-off' | 'local';
const ALL_SYSTEMS: SystemName[] = ['raw', 'silt', 'silt-soc', 's3fs', 'rclone', 'rclone-off', 'local'];
const LABEL: Record<SystemName, string> = {
  raw: 'raw Swift',
  silt: 'Silt',
  'silt-soc': 'Silt sync-on-close',
  s3fs: 's3fs',
  rclone: 'rclone writes',
  'rclone-off': 'rclone off',
  local: 'local dir',
};

interface FsSystem {
  name: SystemName;
  /** The container (or bucket) its objects go to: what the requests are counted under. */
  container: string;
  /** Where its files are (for mounts, a folder inside the mountpoint). */
  root: string;
  start(): Promise<void>;
  /** Orderly stop (commits, uploads finish). */
  stop(): Promise<void>;
  /** After a cap: kill whatever is stuck and mount again. */
  recover(): Promise<void>;
  /** Wait until everything written so far is in the store (rclone's write-back, Silt's commit). */
  settle(dir: string): Promise<void>;
  /** The process serving the mount, for its CPU time and memory (none for the local directory). */
  readonly pid: number | undefined;
}

interface Env {
  /** Swift's proxy, http://127.0.0.1:PORT: every system talks to it directly. */
  endpoint: string;
  /** Its access log, where the requests are counted. */
  log: SwiftLog;
  swiftUser: string;
  swiftKey: string;
}

/** A FUSE mount served by a child process we started (foreground), so we hold its pid. */
abstract class MountedSystem implements FsSystem {
  abstract name: SystemName;
  container: string;
  mnt: string;
  root: string;
  child: ChildProcess | undefined;
  /** The highest VmHWM seen of any of its server processes (each restart starts a new one). */
  peakRssMiB: number | undefined;

  constructor(tag: string) {
    this.container = `bench-${tag}-${runId}`;
    this.mnt = join(base, `mnt-${tag}`);
    this.root = join(this.mnt, 'bench');
    mkdirSync(this.mnt, { recursive: true });
  }

  protected abstract command(): { cmd: string; args: string[]; env: NodeJS.ProcessEnv };

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Fold the server's VmHWM into the run's peak. Called before every stop, restart or kill: the
   * kernel keeps the high-water mark only as long as the process lives.
   */
  notePeak(): void {
    const hwm = processMemMiB(this.pid, 'VmHWM');
    if (hwm !== undefined) this.peakRssMiB = Math.max(this.peakRssMiB ?? 0, hwm);
  }

  async start(): Promise<void> {
    const { cmd, args, env } = this.command();
    const fd = fileLogFd();
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    this.child = child;
    let exited = false;
    child.on('exit', () => (exited = true));
    await waitFor(`${this.name} to mount ${this.mnt}`, () => {
      if (exited) throw new Error(`${this.name} exited before mounting (see ${logFile})`);
      return isMounted(this.mnt);
    }, 60_000);
    await fsp.mkdir(this.root, { recursive: true });
  }

  protected async waitExit(ms: number): Promise<boolean> {
    const c = this.child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return true;
    return await new Promise<boolean>((res) => {
      const t = setTimeout(() => res(false), ms);
      c.once('exit', () => {
        clearTimeout(t);
        res(true);
      });
    });
  }

  async stop(): Promise<void> {
    this.notePeak();
    if (isMounted(this.mnt)) sh('fusermount3', ['-u', this.mnt]);
    if (!(await this.waitExit(60_000))) {
      log(`${this.name}: server did not exit after unmount; killing it`);
      this.child?.kill('SIGKILL');
      await this.waitExit(5_000);
    }
    if (isMounted(this.mnt)) sh('fusermount3', ['-uz', this.mnt]);
    this.child = undefined;
  }

  async recover(): Promise<void> {
    this.notePeak();
    this.child?.kill('SIGKILL');
    await this.waitExit(10_000);
    if (isMounted(this.mnt)) sh('fusermount3', ['-uz', this.mnt]);
    await waitFor(`${this.mnt} to be unmounted`, () => !isMounted(this.mnt), 30_000);
    this.child = undefined;
    await sleep(500);
    await this.start();
  }

  async settle(_dir: string): Promise<void> {}
}

class SiltSystem extends MountedSystem {
  constructor(
    public name: SystemName,
    private readonly env: Env,
    private readonly syncOnClose: boolean,
  ) {
    super(name);
  }

  protected command() {
    const url = `swift+${this.env.endpoint}/auth/v1.0?container=${this.container}`;
    const args = [siltBin, 'mount', '--store', url, this.mnt, '--mkfs', '--volume', 'bench', '--log-level', 'warn'];
    if (this.syncOnClose) args.push('--sync-on-close');
    return { cmd: process.execPath, args, env: { SILT_SWIFT_USER: this.env.swiftUser, SILT_SWIFT_KEY: this.env.swiftKey } };
  }

  override async stop(): Promise<void> {
    // SIGTERM: the server unmounts, makes a final commit and exits.
    this.notePeak();
    this.child?.kill('SIGTERM');
    if (!(await this.waitExit(120_000))) log('silt: server did not exit within 120 s of SIGTERM');
    await super.stop();
  }

  /** FSYNCDIR on a Silt mount commits the whole volume: one durable commit. */
  override async settle(dir: string): Promise<void> {
    if (this.syncOnClose) return;
    const dh = await fsp.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

class S3fsSystem extends MountedSystem {
  name: SystemName = 's3fs';
  constructor(private readonly env: Env) {
    super('s3fs');
  }

  protected command() {
    // -f: foreground, so this process is the server. Defaults otherwise (no local data cache).
    return {
      cmd: 's3fs',
      args: [this.container, this.mnt, '-f', '-o', `url=${this.env.endpoint}`, '-o', 'use_path_request_style', '-o', 'dbglevel=warn'],
      env: { AWSACCESSKEYID: this.env.swiftUser, AWSSECRETACCESSKEY: this.env.swiftKey },
    };
  }
}

/**
 * rclone mount on Swift. `writes`: files open for writing go to a local cache folder, close
 * returns at once and the upload follows (write-back). `off`: no cache; a sequential write streams
 * straight into the object's PUT and close returns once the PUT has (no random writes, no
 * read-write opens).
 */
class RcloneSystem extends MountedSystem {
  name: SystemName;
  rcPort = 0;
  cacheDir: string;
  constructor(
    private readonly env: Env,
    readonly mode: 'writes' | 'off',
  ) {
    const tag = mode === 'off' ? 'rclone-off' : 'rclone';
    super(tag);
    this.name = tag;
    this.cacheDir = join(base, `${tag}-cache`);
  }

  protected command() {
    return {
      cmd: 'rclone',
      args: [
        'mount', `sb:${this.container}`, this.mnt,
        '--vfs-cache-mode', this.mode,
        '--cache-dir', this.cacheDir,
        '--rc', '--rc-addr', `127.0.0.1:${this.rcPort}`, '--rc-no-auth',
        '--config', '/dev/null',
        '--log-level', 'NOTICE',
      ],
      env: {
        RCLONE_CONFIG_SB_TYPE: 'swift',
        RCLONE_CONFIG_SB_USER: this.env.swiftUser,
        RCLONE_CONFIG_SB_KEY: this.env.swiftKey,
        RCLONE_CONFIG_SB_AUTH: `${this.env.endpoint}/auth/v1.0`,
      },
    };
  }

  override async start(): Promise<void> {
    this.rcPort = await freePort();
    await super.start();
  }

  /** Uploads queued or running in rclone's write-back cache (its remote-control API). */
  async pendingUploads(): Promise<number> {
    const r = await fetch(`http://127.0.0.1:${this.rcPort}/vfs/stats`, { method: 'POST' });
    const j = (await r.json()) as { diskCache?: { uploadsInProgress?: number; uploadsQueued?: number } };
    return (j.diskCache?.uploadsInProgress ?? 0) + (j.diskCache?.uploadsQueued ?? 0);
  }

  /** rclone acknowledges close before it uploads (write-back, 5 s by default): wait for the uploads. */
  override async settle(_dir: string): Promise<void> {
    if (this.mode === 'off') return; // close returned after the PUT: nothing is pending
    await waitFor('rclone uploads to finish', async () => (await this.pendingUploads()) === 0, SETUP_CAP_S * 1000);
  }

  override async stop(): Promise<void> {
    try {
      await this.settle(this.root);
    } catch (e) {
      log(`${this.name}: ${String(e)}`);
    }
    await super.stop();
  }

  override async recover(): Promise<void> {
    // A fresh cache: whatever the killed mount had not uploaded is dropped with it.
    this.notePeak();
    this.child?.kill('SIGKILL');
    await this.waitExit(10_000);
    rmSync(this.cacheDir, { recursive: true, force: true });
    if (isMounted(this.mnt)) sh('fusermount3', ['-uz', this.mnt]);
    this.child = undefined;
    await sleep(500);
    await this.start();
  }

  /** Remount with an empty cache (cold reads must come from Swift, not rclone's disk cache). */
  async restartCold(): Promise<void> {
    await this.stop();
    rmSync(this.cacheDir, { recursive: true, force: true });
    await this.start();
  }
}

class LocalSystem implements FsSystem {
  name: SystemName = 'local';
  container = '(none)';
  root = join(base, 'local');
  readonly pid = undefined;
  async start(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
  }
  async stop(): Promise<void> {}
  async recover(): Promise<void> {}
  async settle(dir: string): Promise<void> {
    sh('sync', ['-f', dir]);
  }
}

/** The ceiling: a plain HTTP client (undici) speaking Swift's API. */
class RawSwift {
  name: SystemName = 'raw';
  container = `bench-raw-${runId}`;
  pool!: Pool;
  token = '';
  basePath = '';
  constructor(private readonly env: Env) {}

  async start(): Promise<void> {
    const auth = await fetch(`${this.env.endpoint}/auth/v1.0`, { headers: { 'x-auth-user': this.env.swiftUser, 'x-auth-key': this.env.swiftKey } });
    await auth.arrayBuffer();
    this.token = auth.headers.get('x-auth-token') ?? '';
    const storage = new URL(auth.headers.get('x-storage-url') ?? '');
    this.pool = new Pool(storage.origin, { connections: 16, pipelining: 1, bodyTimeout: 0, headersTimeout: 0 });
    this.basePath = `${storage.pathname}/${this.container}`;
    await this.req('PUT', '', Buffer.alloc(0));
  }

  async req(method: 'PUT' | 'GET' | 'HEAD' | 'DELETE', key: string, body?: Buffer | AsyncIterable<Buffer>, headers: Record<string, string> = {}, length?: number): Promise<Buffer> {
    const h: Record<string, string> = { 'x-auth-token': this.token, ...headers };
    if (Buffer.isBuffer(body)) h['content-length'] = String(body.length);
    else if (length !== undefined) h['content-length'] = String(length);
    const r = await this.pool.request({ method, path: key === '' ? this.basePath : `${this.basePath}/${key}`, headers: h, body: body === undefined ? null : Buffer.isBuffer(body) ? body : Readable.from(body) });
    const b = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode >= 300) throw new Error(`raw ${method} ${key}: HTTP ${r.statusCode}`);
    return b;
  }

  /** An empty object in any container of the account. */
  async putIn(container: string, key: string, headers: Record<string, string>): Promise<void> {
    const path = `${this.basePath.slice(0, this.basePath.lastIndexOf('/'))}/${container}/${key}`;
    const r = await this.pool.request({ method: 'PUT', path, headers: { 'x-auth-token': this.token, 'content-length': '0', ...headers } });
    await r.body.arrayBuffer();
    if (r.statusCode >= 300) throw new Error(`PUT ${container}/${key}: HTTP ${r.statusCode}`);
  }

  /** Another container of the same account (an S3 bucket is a container of the same name). */
  async createContainer(name: string): Promise<void> {
    const path = `${this.basePath.slice(0, this.basePath.lastIndexOf('/'))}/${name}`;
    const r = await this.pool.request({ method: 'PUT', path, headers: { 'x-auth-token': this.token, 'content-length': '0' } });
    await r.body.arrayBuffer();
    if (r.statusCode >= 300) throw new Error(`PUT container ${name}: HTTP ${r.statusCode}`);
  }

  async stop(): Promise<void> {
    await this.pool.close();
  }
}

// ------------------------------------------------------------------------------------ workloads

type WorkloadName = 'small1' | 'small8' | 'seqWrite' | 'coldRead' | 'stat' | 'lsl' | 'rename' | 'randomWrite';

interface Figure {
  /** The headline value (see WORKLOADS[..].unit). */
  value: number;
  /** Secondary figures: durable rate, PUTs, request counts. */
  extra?: Record<string, number>;
  /** The workload's requests to count from Swift's access log (done by countRequests, then dropped). */
  store?: StoreWindow;
}

/**
 * A workload's window in Swift's access log: its requests are counted after the run (and after
 * its CPU time is taken: reading the log is not the client's work), by countRequests.
 */
interface StoreWindow {
  container: string;
  from: LogMark;
  to: LogMark;
  /** small: PUTs, all requests and request bytes per file; read: GETs and the most in flight at once. */
  kind: 'small' | 'read';
}

/** Fill a figure's request counts from Swift's access log (client requests only: see bench/swift-log.ts). */
async function countRequests(f: Figure, env: Env): Promise<void> {
  const w = f.store;
  if (w === undefined) return;
  delete f.store;
  const win = await env.log.window(w.from, w.to, [w.container]);
  const x = (f.extra ??= {});
  if (w.kind === 'small') {
    const puts = win.requests(w.container, 'PUT');
    x['puts'] = puts;
    x['requests'] = win.requests(w.container);
    x['putsPer1000Files'] = (puts * 1000) / SMALL_FILES;
    // Request bodies of every method that reached the store, per file: 4,096 is the floor; what is
    // above it is the system's own bookkeeping (Silt's commits, s3fs's and rclone's metadata).
    x['bytesPerFile'] = win.bytesIn(w.container) / SMALL_FILES;
  } else {
    // How the system fetched the file: GETs at the store and the most in flight at once.
    x['gets'] = win.requests(w.container, 'GET');
    x['getsInFlightMax'] = win.inflightPeak(w.container, 'GET');
  }
}

interface WorkloadDef {
  label: string;
  unit: string;
  lowerIsBetter?: boolean;
  systems: SystemName[];
}

const WORKLOADS: Record<WorkloadName, WorkloadDef> = {
  small1: { label: `${SMALL_FILES} x 4 KiB files, 1 writer (create, write, close)`, unit: 'files/s', systems: ALL_SYSTEMS },
  small8: { label: `${SMALL_FILES} x 4 KiB files, 8 writers`, unit: 'files/s', systems: ALL_SYSTEMS },
  seqWrite: { label: `sequential write ${BIG_MIB} MiB + fsync`, unit: 'MiB/s', systems: ['raw', 'silt', 's3fs', 'rclone', 'rclone-off', 'local'] },
  coldRead: { label: `cold sequential read ${BIG_MIB} MiB`, unit: 'MiB/s', systems: ['raw', 'silt', 's3fs', 'rclone', 'rclone-off', 'local'] },
  stat: { label: `stat of ${TREE_FILES} files`, unit: 'stats/s', systems: ['raw', 'silt', 's3fs', 'rclone', 'rclone-off', 'local'] },
  lsl: { label: `ls -l of ${TREE_FILES} entries`, unit: 's', lowerIsBetter: true, systems: ['raw', 'silt', 's3fs', 'rclone', 'rclone-off', 'local'] },
  rename: { label: `rename of a directory of ${TREE_FILES} files`, unit: 'ms', lowerIsBetter: true, systems: ['raw', 'silt', 's3fs', 'rclone', 'rclone-off', 'local'] },
  randomWrite: {
    label: `random 4 KiB overwrites in ${BIG_MIB} MiB, fsync every ${FSYNC_EVERY} (${RANDOM_WRITES} writes)`,
    unit: 'writes/s',
    // Not rclone-off: without its cache rclone cannot write into the middle of an existing file.
    systems: ['silt', 's3fs', 'rclone', 'local'],
  },
};
const ALL_WORKLOADS: WorkloadName[] = ['small1', 'small8', 'seqWrite', 'coldRead', 'stat', 'lsl', 'rename', 'randomWrite'];
const ORDER: WorkloadName[] = (() => {
  const v = process.env['SILT_BENCH_WORKLOADS'];
  if (v === undefined || v === '') return ALL_WORKLOADS;
  const want = v.split(',').map((s) => s.trim()) as WorkloadName[];
  for (const w of want) if (!ALL_WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} in SILT_BENCH_WORKLOADS (${ALL_WORKLOADS.join(', ')})`);
  if ((want.includes('coldRead') || want.includes('randomWrite')) && !want.includes('seqWrite')) {
    throw new Error('SILT_BENCH_WORKLOADS: coldRead and randomWrite need seqWrite (the file they read)');
  }
  return ALL_WORKLOADS.filter((w) => want.includes(w));
})();
/** The 10,000-entry tree is made (untimed) only for the workloads that use it. */
const NEEDS_TREE = ORDER.some((w) => w === 'stat' || w === 'lsl' || w === 'rename');

/** The workloads whose CPU cost is reported: per file written, or per GiB written or read. */
const CPU_WORKLOADS: readonly WorkloadName[] = ['small1', 'small8', 'seqWrite', 'coldRead'];

/**
 * Put a run's CPU seconds into its figure, per unit of the data it moved: milliseconds per small
 * file, seconds per GiB of the big file. Unlike the speeds, these barely move with the machine's
 * load (a loaded machine costs some cache misses and context switches, not whole seconds).
 */
function addCpuCost(f: Figure, w: WorkloadName, cpuS: number): void {
  const x = (f.extra ??= {});
  x['cpuS'] = cpuS;
  if (w === 'seqWrite' || w === 'coldRead') x['cpuSPerGiB'] = cpuS / (BIG_MIB / 1024);
  else x['cpuMsPerFile'] = (cpuS * 1000) / SMALL_FILES;
}

/** Tree folder names alternate between repetitions, since rename moves it. */
const treeName = (renames: number) => (renames % 2 === 0 ? 'tree' : 'tree-renamed');

/** Deterministic offsets for the random overwrites (same on every system). */
function randomOffsets(): number[] {
  let x = 0x9e3779b9;
  const blocks = (BIG_MIB * MiB) / 4096;
  const out: number[] = [];
  for (let i = 0; i < RANDOM_WRITES; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(((x >>> 0) % blocks) * 4096);
  }
  return out;
}
const OFFSETS = randomOffsets();

// ---- on a file system (mounts and the local directory)

async function fsSmall(sys: FsSystem, dir: string, conc: number, ctl: Ctl, env: Env): Promise<Figure> {
  await fsp.mkdir(dir);
  const from = env.log.mark();
  const t0 = now();
  await pool(SMALL_FILES, conc, ctl, async (i) => {
    const fh = await fsp.open(join(dir, `f${i}`), 'wx');
    try {
      await fh.write(smallPayload, 0, SMALL_BYTES, 0);
    } finally {
      await fh.close();
    }
  });
  const closed = (now() - t0) / 1000;
  await sys.settle(dir);
  const durable = (now() - t0) / 1000;
  const to = env.log.mark();
  return {
    value: SMALL_FILES / closed,
    extra: { filesPerSecInStore: SMALL_FILES / durable },
    ...(sys.container === '(none)' ? {} : { store: { container: sys.container, from, to, kind: 'small' as const } }),
  };
}

async function fsSeqWrite(sys: FsSystem, file: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  const fh = await fsp.open(file, 'w');
  try {
    for (let i = 0; i < BIG_MIB && !ctl.aborted; i++) {
      await fh.write(bigChunk, 0, MiB, i * MiB);
      ctl.done++;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const returned = (now() - t0) / 1000;
  await sys.settle(dirname(file));
  const durable = (now() - t0) / 1000;
  return { value: BIG_MIB / returned, extra: { MiBperSecInStore: BIG_MIB / durable } };
}

async function fsRead(sys: FsSystem, file: string, ctl: Ctl, env: Env): Promise<Figure> {
  const buf = Buffer.alloc(MiB);
  const from = env.log.mark();
  const t0 = now();
  const fh = await fsp.open(file, 'r');
  let total = 0;
  try {
    while (!ctl.aborted) {
      const { bytesRead } = await fh.read(buf, 0, MiB, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      ctl.done = Math.floor(total / MiB);
    }
  } finally {
    await fh.close();
  }
  if (!ctl.aborted && total !== BIG_MIB * MiB) throw new Error(`read ${total} bytes of ${file}, expected ${BIG_MIB * MiB}`);
  const value = BIG_MIB / ((now() - t0) / 1000);
  const to = env.log.mark();
  return sys.container === '(none)' ? { value } : { value, store: { container: sys.container, from, to, kind: 'read' } };
}

async function fsStat(dir: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  for (let i = 0; i < TREE_FILES && !ctl.aborted; i++) {
    await fsp.lstat(join(dir, `s${i}`));
    ctl.done++;
  }
  return { value: TREE_FILES / ((now() - t0) / 1000) };
}

async function fsLsl(dir: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  const child = spawn('ls', ['-l', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    for (const b of d) if (b === 10) lines++;
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setInterval(() => {
    if (ctl.aborted) child.kill('SIGKILL');
  }, 200);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(timer);
  ctl.done = lines;
  if (!ctl.aborted && code !== 0) throw new Error(`ls -l ${dir} failed (${code}): ${err}`);
  if (!ctl.aborted && lines - 1 !== TREE_FILES) throw new Error(`ls -l ${dir} listed ${lines - 1} entries, expected ${TREE_FILES}`);
  return { value: (now() - t0) / 1000 };
}

async function fsRename(from: string, to: string): Promise<Figure> {
  const t0 = now();
  await fsp.rename(from, to);
  return { value: now() - t0 };
}

async function fsRandomWrite(file: string, ctl: Ctl): Promise<Figure> {
  const block = Buffer.alloc(4096, 0xa5);
  const t0 = now();
  const fh = await fsp.open(file, 'r+');
  try {
    for (let i = 0; i < RANDOM_WRITES && !ctl.aborted; i++) {
      block.writeUInt32LE(i, 0);
      await fh.write(block, 0, 4096, OFFSETS[i]!);
      if ((i + 1) % FSYNC_EVERY === 0) await fh.sync();
      ctl.done++;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { value: RANDOM_WRITES / ((now() - t0) / 1000) };
}

/** Untimed setup: TREE_FILES empty files, 16 at a time. */
async function fsMakeTree(sys: FsSystem, dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const ctl: Ctl = { aborted: false, done: 0 };
  const t0 = now();
  await pool(TREE_FILES, 16, ctl, async (i) => (await fsp.open(join(dir, `s${i}`), 'w')).close());
  await sys.settle(dir);
  log(`${sys.name}: ${TREE_FILES} files created in ${((now() - t0) / 1000).toFixed(1)} s (setup)`);
}

// ---- raw Swift

async function rawSmall(raw: RawSwift, prefix: string, conc: number, ctl: Ctl, env: Env): Promise<Figure> {
  const from = env.log.mark();
  const t0 = now();
  await pool(SMALL_FILES, conc, ctl, async (i) => void (await raw.req('PUT', `${prefix}/f${i}`, smallPayload)));
  const s = (now() - t0) / 1000;
  const to = env.log.mark();
  return { value: SMALL_FILES / s, extra: { filesPerSecInStore: SMALL_FILES / s }, store: { container: raw.container, from, to, kind: 'small' } };
}

async function* bigStream(ctl: Ctl): AsyncIterable<Buffer> {
  for (let i = 0; i < BIG_MIB; i++) {
    if (ctl.aborted) throw new Error('aborted');
    ctl.done++;
    yield bigChunk;
  }
}

async function rawSeqWrite(raw: RawSwift, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  await raw.req('PUT', 'big', bigStream(ctl), {}, BIG_MIB * MiB);
  const s = (now() - t0) / 1000;
  return { value: BIG_MIB / s, extra: { MiBperSecInStore: BIG_MIB / s } };
}

async function rawRead(raw: RawSwift, ctl: Ctl, env: Env): Promise<Figure> {
  const from = env.log.mark();
  const t0 = now();
  const r = await raw.pool.request({ method: 'GET', path: `${raw.basePath}/big`, headers: { 'x-auth-token': raw.token } });
  let total = 0;
  for await (const chunk of r.body) {
    total += (chunk as Buffer).length;
    ctl.done = Math.floor(total / MiB);
    if (ctl.aborted) {
      r.body.destroy();
      break;
    }
  }
  if (!ctl.aborted && (r.statusCode !== 200 || total !== BIG_MIB * MiB)) throw new Error(`raw GET big: HTTP ${r.statusCode}, ${total} bytes`);
  const value = BIG_MIB / ((now() - t0) / 1000);
  return { value, store: { container: raw.container, from, to: env.log.mark(), kind: 'read' } };
}

async function rawStat(raw: RawSwift, prefix: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  for (let i = 0; i < TREE_FILES && !ctl.aborted; i++) {
    await raw.req('HEAD', `${prefix}/s${i}`);
    ctl.done++;
  }
  return { value: TREE_FILES / ((now() - t0) / 1000) };
}

/** A listing with sizes and dates (what ls -l shows), paged by Swift's 10,000-name limit. */
async function rawList(raw: RawSwift, prefix: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  let marker = '';
  let n = 0;
  for (;;) {
    const q = new URLSearchParams({ format: 'json', prefix: `${prefix}/`, limit: '10000', ...(marker ? { marker } : {}) });
    const r = await raw.pool.request({ method: 'GET', path: `${raw.basePath}?${q}`, headers: { 'x-auth-token': raw.token } });
    const rows = (await r.body.json()) as Array<{ name: string }>;
    if (rows.length === 0) break;
    n += rows.length;
    ctl.done = n;
    marker = rows[rows.length - 1]!.name;
    if (rows.length < 10000) break;
  }
  if (n !== TREE_FILES) throw new Error(`raw listing of ${prefix}/ found ${n} objects, expected ${TREE_FILES}`);
  return { value: (now() - t0) / 1000 };
}

/** Swift has no rename: a server-side copy and a delete per object (8 at a time). */
async function rawRename(raw: RawSwift, from: string, to: string, ctl: Ctl): Promise<Figure> {
  const t0 = now();
  await pool(TREE_FILES, 8, ctl, async (i) => {
    await raw.req('PUT', `${to}/s${i}`, Buffer.alloc(0), { 'x-copy-from': `/${raw.container}/${from}/s${i}` });
    await raw.req('DELETE', `${from}/s${i}`);
  });
  return { value: now() - t0 };
}

/**
 * Untimed setup straight through Swift's API: TREE_FILES empty objects `<prefix>/s<i>` in a
 * container, 16 at a time. For s3fs and rclone this is far faster than creating them through
 * their mounts (s3fs needs several requests per create; on a loaded 2-core machine 10,000 take
 * most of an hour). `fileHeaders` carry s3fs's metadata (mode, uid, gid, mtime as
 * X-Object-Meta-*, which Swift's S3 layer shows as x-amz-meta-*); `markers` are s3fs's directory
 * objects ("dir/") made first.
 */
async function rawMakeTree(raw: RawSwift, container: string, prefix: string, fileHeaders: Record<string, string> = {}, markers: string[] = []): Promise<void> {
  const t0 = now();
  for (const m of markers) await raw.putIn(container, m, { 'content-type': 'application/x-directory', 'x-object-meta-mode': String(0o40755), 'x-object-meta-uid': '0', 'x-object-meta-gid': '0', 'x-object-meta-mtime': String(Math.floor(Date.now() / 1000)) });
  await pool(TREE_FILES, 16, { aborted: false, done: 0 }, async (i) => raw.putIn(container, `${prefix}/s${i}`, fileHeaders));
  log(`${container}: ${TREE_FILES} objects created through Swift in ${((now() - t0) / 1000).toFixed(1)} s (setup)`);
}

// ------------------------------------------------------------------------------------ the run

interface RunResult {
  figure?: Figure;
  timedOut?: { capS: number; done: number };
  error?: string;
  seconds: number;
}

type Results = Partial<Record<WorkloadName, Partial<Record<SystemName, RunResult[]>>>>;

async function capped(sysName: SystemName, what: WorkloadName, fn: (ctl: Ctl) => Promise<Figure>, recover: () => Promise<void>): Promise<RunResult> {
  const ctl: Ctl = { aborted: false, done: 0 };
  const t0 = now();
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<'cap'>((r) => (timer = setTimeout(() => r('cap'), CAP_S * 1000)));
  const work = fn(ctl);
  try {
    const r = await Promise.race([work, cap]);
    if (r === 'cap') {
      ctl.aborted = true;
      log(`${sysName} ${what}: timed out after ${CAP_S} s (${ctl.done} units done); recovering`);
      await recover();
      await Promise.race([work.catch(() => undefined), sleep(30_000)]);
      return { timedOut: { capS: CAP_S, done: ctl.done }, seconds: (now() - t0) / 1000 };
    }
    return { figure: r, seconds: (now() - t0) / 1000 };
  } catch (e) {
    log(`${sysName} ${what}: ERROR ${String(e)}`);
    return { error: String(e).slice(0, 300), seconds: (now() - t0) / 1000 };
  } finally {
    clearTimeout(timer);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function version(cmd: string, args: string[]): string {
  return (sh(cmd, args, 10_000).out.split('\n')[0] ?? '').trim();
}

async function main(): Promise<void> {
  const wanted = (process.env['SILT_BENCH_SYSTEMS'] ?? ALL_SYSTEMS.join(',')).split(',').map((s) => s.trim()) as SystemName[];
  for (const s of wanted) if (!ALL_SYSTEMS.includes(s)) throw new Error(`unknown system ${s} in SILT_BENCH_SYSTEMS`);
  const uptimeStart = sh('uptime', []).out.trim();
  const loadStart = loadavg();
  log(`scale ${SCALE}: ${SMALL_FILES} small files, ${BIG_MIB} MiB big file, ${TREE_FILES}-entry tree, ${RANDOM_WRITES} random writes; ${REPS} repetitions; cap ${CAP_S} s; work folder ${base}`);
  const swift = await ensureSwift();
  // Requests are counted from the proxy's access log: make sure it logs them where we look.
  const swiftLog = new SwiftLog(join(swiftStateDir, 'log', 'proxy.log'));
  await swiftLog.probe(swift.endpoint, runId);
  const env: Env = { endpoint: swift.endpoint, log: swiftLog, swiftUser: swift.user, swiftKey: swift.key };
  const swiftInfo = (await (await fetch(`${swift.endpoint}/info`)).json()) as { swift?: { version?: string } };

  const raw = wanted.includes('raw') ? new RawSwift(env) : undefined;
  const fsSystems = new Map<SystemName, FsSystem>();
  if (wanted.includes('silt')) fsSystems.set('silt', new SiltSystem('silt', env, false));
  if (wanted.includes('silt-soc')) fsSystems.set('silt-soc', new SiltSystem('silt-soc', env, true));
  if (wanted.includes('s3fs')) fsSystems.set('s3fs', new S3fsSystem(env));
  if (wanted.includes('rclone')) fsSystems.set('rclone', new RcloneSystem(env, 'writes'));
  if (wanted.includes('rclone-off')) fsSystems.set('rclone-off', new RcloneSystem(env, 'off'));
  if (wanted.includes('local')) fsSystems.set('local', new LocalSystem());
  const containers = [...(raw ? [raw.container] : []), ...[...fsSystems.values()].map((s) => s.container).filter((c) => c !== '(none)')];

  const results: Results = {};
  const renames = new Map<SystemName, number>();
  const gaveUp = new Set<string>(); // `${workload}/${system}` that timed out: not repeated
  try {
    // Containers (an S3 bucket is a Swift container of the same name) exist before mounting.
    if (raw) await raw.start();
    const admin = raw ?? new RawSwift(env);
    if (!raw) await admin.start();
    for (const s of fsSystems.values()) if (s.container !== '(none)') await admin.createContainer(s.container);
    // Untimed setup: the 10,000-entry tree on every system. For raw Swift, s3fs and both rclones
    // the objects are PUT straight into their containers before the mounts start (so rclone's
    // directory cache sees them); Silt and the local directory make theirs through the file system.
    const mtime = String(Math.floor(Date.now() / 1000));
    const s3 = fsSystems.get('s3fs');
    const rcs = [...fsSystems.values()].filter((s) => s instanceof RcloneSystem);
    await Promise.all(NEEDS_TREE ? [
      raw ? rawMakeTree(raw, raw.container, 'tree') : undefined,
      s3 ? rawMakeTree(admin, s3.container, 'bench/tree', { 'content-type': 'application/octet-stream', 'x-object-meta-mode': String(0o100644), 'x-object-meta-uid': '0', 'x-object-meta-gid': '0', 'x-object-meta-mtime': mtime }, ['bench/', 'bench/tree/']) : undefined,
      ...rcs.map((rc) => rawMakeTree(admin, rc.container, 'bench/tree')),
    ] : []);
    if (!raw) await admin.stop();
    for (const s of fsSystems.values()) {
      log(`starting ${s.name}`);
      await s.start();
    }
    if (NEEDS_TREE) for (const s of fsSystems.values()) if (s.name !== 's3fs' && !(s instanceof RcloneSystem)) await fsMakeTree(s, join(s.root, 'tree'));
    for (const s of NEEDS_TREE ? fsSystems.values() : []) {
      const n = (await fsp.readdir(join(s.root, 'tree'))).length;
      if (n !== TREE_FILES) throw new Error(`${s.name}: the tree has ${n} entries, expected ${TREE_FILES}`);
    }

    for (let rep = 0; rep < REPS; rep++) {
      const names: SystemName[] = [...(raw ? ['raw' as SystemName] : []), ...fsSystems.keys()];
      const rotated = names.map((_, i) => names[(i + rep) % names.length]!);
      log(`repetition ${rep + 1} of ${REPS}: order ${rotated.join(', ')}`);
      for (const w of ORDER) {
        if (w === 'coldRead') {
          // Cold: every mount restarted (its caches gone), then the kernel's page cache dropped
          // (which also makes Swift's object files cold on disk).
          for (const n of rotated) {
            const s = fsSystems.get(n);
            if (s === undefined || !WORKLOADS.coldRead.systems.includes(n)) continue;
            if (s instanceof RcloneSystem) await s.restartCold();
            else {
              await s.stop();
              await s.start();
            }
          }
          dropCaches();
        }
        for (const n of rotated) {
          if (!WORKLOADS[w].systems.includes(n) || gaveUp.has(`${w}/${n}`)) continue;
          const row = ((results[w] ??= {})[n] ??= []);
          let r: RunResult;
          if (n === 'raw') {
            const tree = treeName(renames.get(n) ?? 0);
            const fn = (ctl: Ctl): Promise<Figure> => {
              switch (w) {
                case 'small1': return rawSmall(raw!, `small1-r${rep}`, 1, ctl, env);
                case 'small8': return rawSmall(raw!, `small8-r${rep}`, 8, ctl, env);
                case 'seqWrite': return rawSeqWrite(raw!, ctl);
                case 'coldRead': return rawRead(raw!, ctl, env);
                case 'stat': return rawStat(raw!, tree, ctl);
                case 'lsl': return rawList(raw!, tree, ctl);
                case 'rename': return rawRename(raw!, tree, treeName((renames.get(n) ?? 0) + 1), ctl);
                default: throw new Error(`raw has no ${w}`);
              }
            };
            // The raw client runs in this process: its cost is this process's CPU (the requests are
            // counted after, from Swift's log).
            const u0 = process.cpuUsage();
            r = await capped(n, w, fn, async () => {});
            const u = process.cpuUsage(u0);
            if (r.figure !== undefined && CPU_WORKLOADS.includes(w)) addCpuCost(r.figure, w, (u.user + u.system) / 1e6);
            if (r.figure !== undefined) await countRequests(r.figure, env).catch((e: unknown) => log(`${n} ${w}: counting requests: ${String(e)}`));
          } else {
            const s = fsSystems.get(n)!;
            const tree = join(s.root, treeName(renames.get(n) ?? 0));
            const big = join(s.root, 'big');
            const fn = (ctl: Ctl): Promise<Figure> => {
              switch (w) {
                case 'small1': return fsSmall(s, join(s.root, `small1-r${rep}`), 1, ctl, env);
                case 'small8': return fsSmall(s, join(s.root, `small8-r${rep}`), 8, ctl, env);
                case 'seqWrite': return fsSeqWrite(s, big, ctl);
                case 'coldRead': return fsRead(s, big, ctl, env);
                case 'stat': return fsStat(tree, ctl);
                case 'lsl': return fsLsl(tree, ctl);
                case 'rename': return fsRename(tree, join(s.root, treeName((renames.get(n) ?? 0) + 1)));
                case 'randomWrite': return fsRandomWrite(big, ctl);
              }
            };
            // The server's CPU time right before and after: the workloads that wait until the
            // data is in the store (small files, the big write) include the uploads that follow
            // close (rclone's write-back, Silt's commit).
            const pid = s.pid;
            const cpu0 = processCpuS(pid);
            r = await capped(n, w, fn, () => s.recover());
            const cpu1 = s.pid === pid ? processCpuS(pid) : undefined; // a recovered mount is another process
            if (r.figure !== undefined && cpu0 !== undefined && cpu1 !== undefined && CPU_WORKLOADS.includes(w)) addCpuCost(r.figure, w, cpu1 - cpu0);
            if (r.figure !== undefined && (w === 'seqWrite' || w === 'coldRead')) {
              const rss = processMemMiB(s.pid, 'VmRSS');
              if (rss !== undefined) (r.figure.extra ??= {})['rssMiB'] = rss;
            }
            if (s instanceof MountedSystem) s.notePeak();
            if (r.figure !== undefined) await countRequests(r.figure, env).catch((e: unknown) => log(`${n} ${w}: counting requests: ${String(e)}`));
            // rclone and Silt's default mode acknowledge before the store has the data: let the
            // uploads finish before the next system's run, so it does not compete with them.
            if (r.figure !== undefined && (w === 'randomWrite' || w === 'rename')) await s.settle(s.root).catch(() => undefined);
          }
          row.push(r);
          if (w === 'rename' && r.figure !== undefined) renames.set(n, (renames.get(n) ?? 0) + 1);
          if (r.timedOut !== undefined || r.error !== undefined) {
            gaveUp.add(`${w}/${n}`);
            // A cut-off rename leaves the tree half moved: stat and ls -l of it mean nothing now.
            if (w === 'rename') for (const x of ['stat', 'lsl', 'rename'] as const) gaveUp.add(`${x}/${n}`);
            // A cut-off big write leaves no whole file to read or overwrite.
            if (w === 'seqWrite') for (const x of ['coldRead', 'randomWrite'] as const) gaveUp.add(`${x}/${n}`);
          }
          const f = r.figure;
          log(`  ${w.padEnd(11)} ${n.padEnd(10)} ${f ? `${fmt(f.value)} ${WORKLOADS[w].unit}${f.extra ? ' ' + JSON.stringify(roundAll(f.extra)) : ''}` : r.timedOut ? `timed out after ${CAP_S} s (${r.timedOut.done} done)` : `error`}`);
        }
      }
    }
  } finally {
    for (const s of fsSystems.values()) {
      try {
        await s.stop();
      } catch (e) {
        log(`stopping ${s.name}: ${String(e)}`);
      }
    }
    if (raw) await raw.stop().catch(() => undefined);
    purgeInBackground(swift, containers, '');
  }

  const uptimeEnd = sh('uptime', []).out.trim();
  // Every server's VmHWM was folded in before each stop, restart and kill (the last in the stops above).
  const peakRssMiB: Partial<Record<SystemName, number>> = {};
  for (const s of fsSystems.values()) if (s instanceof MountedSystem && s.peakRssMiB !== undefined) peakRssMiB[s.name] = s.peakRssMiB;
  const report = buildReport(results, peakRssMiB, {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    scale: SCALE,
    reps: REPS,
    capS: CAP_S,
    sizes: { smallFiles: SMALL_FILES, smallBytes: SMALL_BYTES, bigMiB: BIG_MIB, treeFiles: TREE_FILES, randomWrites: RANDOM_WRITES, fsyncEvery: FSYNC_EVERY },
    machine: {
      nproc: cpus().length,
      memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
      kernel: release(),
      cpu: cpus()[0]?.model ?? '',
      uptimeStart,
      uptimeEnd,
      loadavgStart: loadStart,
      loadavgEnd: loadavg(),
    },
    versions: {
      node: process.version,
      silt: sh('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']).out.trim(),
      s3fs: version('s3fs', ['--version']),
      rclone: version('rclone', ['version']),
      swift: swiftInfo.swift?.version ?? 'unknown',
    },
  });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'peers.json'), JSON.stringify(report.json, null, 2) + '\n');
  writeFileSync(join(outDir, 'peers.md'), report.markdown);
  try {
    await renderChartPng(report.chart, join(outDir, 'peers.png'));
  } catch (e) {
    log(`chart: ${String(e)}`);
  }
  process.stdout.write(report.markdown);
  process.stdout.write(`\nwritten: ${outDir}/peers.{md,json,png}\n`);
  rmSync(base, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------ report

const fmt = (n: number) => (!Number.isFinite(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : n.toPrecision(2));
const roundAll = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, +v.toPrecision(4)]));

interface Cell {
  median?: number;
  extra?: Record<string, number>;
  runs: number;
  timedOut?: { capS: number; done: number };
  error?: string;
}

export interface ChartData {
  title: string;
  subtitle: string;
  panels: { title: string; unit: string; lowerIsBetter: boolean; bars: { system: string; value?: number; note?: string }[] }[];
}

function summarise(rs: RunResult[] | undefined): Cell | undefined {
  if (rs === undefined || rs.length === 0) return undefined;
  const ok = rs.filter((r) => r.figure !== undefined).map((r) => r.figure!);
  const cell: Cell = { runs: ok.length };
  if (ok.length > 0) {
    cell.median = median(ok.map((f) => f.value));
    const keys = new Set(ok.flatMap((f) => Object.keys(f.extra ?? {})));
    if (keys.size > 0) cell.extra = Object.fromEntries([...keys].map((k) => [k, median(ok.map((f) => f.extra?.[k] ?? NaN))]));
  }
  const to = rs.find((r) => r.timedOut)?.timedOut;
  if (to) cell.timedOut = to;
  const err = rs.find((r) => r.error)?.error;
  if (err) cell.error = err;
  return cell;
}

function cellText(c: Cell | undefined, w: WorkloadName): string {
  if (c === undefined) return '-';
  if (c.median !== undefined) return fmt(c.median);
  if (c.timedOut) {
    const unitWork = w === 'seqWrite' || w === 'coldRead' ? 'MiB' : w === 'lsl' ? 'lines' : w === 'rename' ? '' : 'done';
    return `timed out after ${c.timedOut.capS} s${unitWork ? ` (${c.timedOut.done} ${unitWork})` : ''}`;
  }
  return `error`;
}

/**
 * Speed of `a` relative to `b` (above 1: a is faster). A peer that timed out gives a lower bound
 * ">= x" from the progress it made before the cap (rename: the cap itself).
 */
function ratio(a: Cell | undefined, b: Cell | undefined, w: WorkloadName): { text: string; value?: number; lowerBound?: boolean } {
  const lower = WORKLOADS[w].lowerIsBetter === true;
  if (a?.median === undefined || b === undefined) return { text: '-' };
  if (b.median !== undefined) {
    const v = lower ? b.median / a.median : a.median / b.median;
    return { text: v.toFixed(2), value: v };
  }
  if (b.timedOut) {
    const cap = b.timedOut.capS;
    let peerBound: number; // the peer's value can be no better than this
    if (lower) peerBound = w === 'lsl' ? cap : cap * 1000;
    else {
      const units = w === 'seqWrite' || w === 'coldRead' ? b.timedOut.done : b.timedOut.done;
      peerBound = Math.max(units, 1) / cap;
    }
    const v = lower ? peerBound / a.median : a.median / peerBound;
    return { text: `>= ${v.toFixed(1)}`, value: v, lowerBound: true };
  }
  return { text: '-' };
}

function buildReport(results: Results, peakRssMiB: Partial<Record<SystemName, number>>, meta: Record<string, unknown> & { machine: Record<string, unknown>; versions: Record<string, string>; capS: number }) {
  const cells: Partial<Record<WorkloadName, Partial<Record<SystemName, Cell>>>> = {};
  for (const w of ORDER) for (const s of ALL_SYSTEMS) {
    const c = summarise(results[w]?.[s]);
    if (c) (cells[w] ??= {})[s] = c;
  }
  const get = (w: WorkloadName, s: SystemName) => cells[w]?.[s];
  const m = meta.machine;
  const v = meta.versions;
  const L: string[] = [];
  L.push(`# Silt beside its peers over the same Swift`, '');
  L.push(`Run ${String(meta['started'])} to ${String(meta['finished'])}; scale ${String(meta['scale'])}, ${String(meta['reps'])} repetitions (medians), cap ${meta.capS} s per run.`, '');
  L.push(`Machine: ${String(m['nproc'])} CPUs (${String(m['cpu'])}), ${String(m['memoryGiB'])} GiB, Linux ${String(m['kernel'])}. Versions: node ${v['node']}, Silt ${v['silt']}, ${v['s3fs']}, ${v['rclone']}, Swift ${v['swift']}.`, '');
  L.push(`Load: \`${String(m['uptimeStart'])}\` at the start, \`${String(m['uptimeEnd'])}\` at the end. The machine was shared with other jobs; figures move with the load.`, '');
  const present = ALL_SYSTEMS.filter((s) => ORDER.some((w) => get(w, s)));
  L.push(`| workload | unit | ${present.map((s) => LABEL[s]).join(' | ')} |`);
  L.push(`|---|---|${present.map(() => '---:').join('|')}|`);
  for (const w of ORDER) {
    if (!cells[w]) continue;
    L.push(`| ${WORKLOADS[w].label} | ${WORKLOADS[w].unit}${WORKLOADS[w].lowerIsBetter ? ' (lower is better)' : ''} | ${present.map((s) => cellText(get(w, s), w)).join(' | ')} |`);
  }
  // Secondary figures of the small-file and write workloads.
  const extraRow = (w: WorkloadName, key: string, label: string, unit: string) => {
    if (!cells[w]) return;
    L.push(`| ${label} | ${unit} | ${present.map((s) => { const x = get(w, s)?.extra?.[key]; return x === undefined ? '-' : fmt(x); }).join(' | ')} |`);
  };
  extraRow('small1', 'filesPerSecInStore', `${SMALL_FILES} files, 1 writer, until in the store`, 'files/s');
  extraRow('small8', 'filesPerSecInStore', `${SMALL_FILES} files, 8 writers, until in the store`, 'files/s');
  extraRow('seqWrite', 'MiBperSecInStore', `sequential write, until in the store`, 'MiB/s');
  extraRow('small1', 'puts', `PUTs at the store, ${SMALL_FILES} files, 1 writer`, 'requests');
  extraRow('small8', 'puts', `PUTs at the store, ${SMALL_FILES} files, 8 writers`, 'requests');
  extraRow('small1', 'requests', `all requests at the store, ${SMALL_FILES} files, 1 writer`, 'requests');
  extraRow('small8', 'requests', `all requests at the store, ${SMALL_FILES} files, 8 writers`, 'requests');
  extraRow('small1', 'bytesPerFile', `bytes sent to the store per file (request bodies), 1 writer`, 'bytes');
  extraRow('small8', 'bytesPerFile', `bytes sent to the store per file (request bodies), 8 writers`, 'bytes');
  extraRow('coldRead', 'gets', `GETs at the store for the cold read`, 'requests');
  extraRow('coldRead', 'getsInFlightMax', `most GETs in flight at once during the cold read`, 'requests');
  L.push('');
  L.push('"Until in the store": the clock runs until the data is in Swift: for Silt\'s default mode an fsync of');
  L.push('the directory (one commit), for rclone writes until its write-back cache has uploaded everything');
  L.push('(it acknowledges close before it uploads), for the local directory `sync -f`. s3fs, rclone off');
  L.push('(which streams each write into the object\'s PUT), raw Swift and Silt sync-on-close have the data');
  L.push('in the store when close (or the PUT) returns. Raw Swift has no random overwrite (objects are');
  L.push('immutable) and its "rename" is a server-side copy and a delete per object; its "ls -l" is a JSON');
  L.push('container listing (names, sizes, dates) and its stat a HEAD per object. Bytes sent are request');
  L.push('bodies of every method.', '');

  // What the servers themselves cost: CPU per unit of data, and memory. Unlike the speeds above,
  // these barely depend on the machine's load. The local directory has no server of its own.
  const served = present.filter((s) => s !== 'local');
  const val = (x: number | undefined) => (x === undefined ? '-' : fmt(x));
  if (CPU_WORKLOADS.some((w) => served.some((s) => get(w, s)?.extra?.['cpuS'] !== undefined))) {
    L.push('## CPU cost of the server process', '');
    L.push(`| workload | unit | ${served.map((s) => (s === 'raw' ? `${LABEL[s]} (client)` : LABEL[s])).join(' | ')} |`);
    L.push(`|---|---|${served.map(() => '---:').join('|')}|`);
    for (const w of CPU_WORKLOADS) {
      if (!cells[w]) continue;
      const perGiB = w === 'seqWrite' || w === 'coldRead';
      L.push(`| ${WORKLOADS[w].label} | ${perGiB ? 'CPU s per GiB' : 'CPU ms per file'} | ${served.map((s) => val(get(w, s)?.extra?.[perGiB ? 'cpuSPerGiB' : 'cpuMsPerFile'])).join(' | ')} |`);
    }
    L.push('');
    L.push('User + system CPU time of the FUSE server process (all its threads; /proc/PID/stat) from right');
    L.push('before to right after the workload, which for the small files and the sequential write includes');
    L.push('the wait until the data is in the store (rclone writes\' uploads, Silt\'s commit). It leaves out the');
    L.push('kernel\'s FUSE work done in the writer\'s own system calls. Raw Swift: the CPU time of the bench');
    L.push('process (`process.cpuUsage()`) during the workload, which is the client\'s own work (undici, the');
    L.push('buffers): every system talks to Swift directly, and the requests are counted afterwards from');
    L.push('Swift\'s access log.', '');
  }
  const mounted = served.filter((s) => s !== 'raw');
  if (mounted.length > 0) {
    L.push('## Memory of the server process', '');
    L.push(`| figure | unit | ${mounted.map((s) => LABEL[s]).join(' | ')} |`);
    L.push(`|---|---|${mounted.map(() => '---:').join('|')}|`);
    L.push(`| peak RSS over the whole run (VmHWM, highest of its server processes) | MiB | ${mounted.map((s) => val(peakRssMiB[s])).join(' | ')} |`);
    L.push(`| RSS right after the ${WORKLOADS.seqWrite.label} | MiB | ${mounted.map((s) => val(get('seqWrite', s)?.extra?.['rssMiB'])).join(' | ')} |`);
    L.push(`| RSS right after the ${WORKLOADS.coldRead.label} | MiB | ${mounted.map((s) => val(get('coldRead', s)?.extra?.['rssMiB'])).join(' | ')} |`);
    L.push('');
    L.push('VmHWM is read from /proc/PID/status before every stop, restart (the cold reads restart every');
    L.push('mount) and kill; VmRSS right after the workload (medians).', '');
  }

  // Ratios.
  const peers: SystemName[] = (['raw', 's3fs', 'rclone', 'rclone-off', 'local'] as SystemName[]).filter((p) => present.includes(p));
  const ratioTable = (silt: SystemName, ws: WorkloadName[]) => {
    L.push(`| workload | ${peers.map((p) => `${LABEL[silt]} / ${LABEL[p]}`).join(' | ')} |`);
    L.push(`|---|${peers.map(() => '---:').join('|')}|`);
    for (const w of ws) {
      if (!get(w, silt)) continue;
      L.push(`| ${WORKLOADS[w].label} | ${peers.map((p) => ratio(get(w, silt), get(w, p), w).text).join(' | ')} |`);
    }
    L.push('');
  };
  L.push('## Ratios (above 1: Silt is faster; for times, the peer\'s time / Silt\'s)', '');
  if (present.includes('silt')) ratioTable('silt', ORDER);
  if (present.includes('silt-soc')) ratioTable('silt-soc', ['small1', 'small8']);
  L.push('">= x": the peer hit the time cap; x is a lower bound from the work it finished in the cap.', '');

  // Targets (issue 9).
  interface Target {
    name: string;
    value?: number;
    text: string;
    met?: boolean;
  }
  const targets: Target[] = [];
  const T = (name: string, a: SystemName, b: SystemName, w: WorkloadName, min: number, list = targets) => {
    const r = ratio(get(w, a), get(w, b), w);
    list.push({ name: `${name} >= ${min}x`, ...(r.value !== undefined ? { value: r.value } : {}), text: r.text, ...(r.value !== undefined ? { met: r.value >= min } : {}) });
  };
  T('small files, default, 1 writer, vs s3fs', 'silt', 's3fs', 'small1', 20);
  T('small files, default, 8 writers, vs s3fs', 'silt', 's3fs', 'small8', 20);
  T('small files, default, 1 writer, vs rclone writes', 'silt', 'rclone', 'small1', 3);
  T('small files, default, 8 writers, vs rclone writes', 'silt', 'rclone', 'small8', 3);
  // rclone acknowledges close before it uploads: the same comparison with both clocks running
  // until the files are in the store.
  const inStore = (w: WorkloadName, s: SystemName): Cell | undefined => {
    const x = get(w, s)?.extra?.['filesPerSecInStore'];
    return x === undefined ? undefined : { median: x, runs: 1 };
  };
  for (const w of ['small1', 'small8'] as const) {
    const r = ratio(inStore(w, 'silt'), inStore(w, 'rclone'), w);
    targets.push({ name: `small files, default, ${w === 'small1' ? '1 writer' : '8 writers'}, vs rclone writes, both until in the store >= 3x`, ...(r.value !== undefined ? { value: r.value, met: r.value >= 3 } : {}), text: r.text });
  }
  T('small files, sync-on-close, 1 writer, vs s3fs', 'silt-soc', 's3fs', 'small1', 1);
  T('small files, sync-on-close, 8 writers, vs s3fs', 'silt-soc', 's3fs', 'small8', 4);
  const putsPer4MiB = (w: WorkloadName) => {
    const p = get(w, 'silt')?.extra?.['puts'];
    return p === undefined ? undefined : p / ((SMALL_FILES * SMALL_BYTES) / (4 * MiB));
  };
  for (const w of ['small1', 'small8'] as const) {
    const x = putsPer4MiB(w);
    targets.push({ name: `PUTs per 4 MiB of small files (default mode, ${w === 'small1' ? '1 writer' : '8 writers'}) <= 1`, ...(x !== undefined ? { value: x, met: x <= 1 } : {}), text: x === undefined ? '-' : x.toFixed(2) });
  }
  T('sequential write vs raw PUT', 'silt', 'raw', 'seqWrite', 0.8);
  T('cold read vs raw GET', 'silt', 'raw', 'coldRead', 0.8);
  T('sequential write vs s3fs', 'silt', 's3fs', 'seqWrite', 1);
  T('sequential write vs rclone writes', 'silt', 'rclone', 'seqWrite', 1);
  T('cold read vs s3fs', 'silt', 's3fs', 'coldRead', 1);
  T('cold read vs rclone writes', 'silt', 'rclone', 'coldRead', 1);
  T('stat vs s3fs', 'silt', 's3fs', 'stat', 10);
  const rn = get('rename', 'silt')?.median;
  targets.push({ name: 'directory rename < 50 ms', ...(rn !== undefined ? { value: rn, met: rn < 50 } : {}), text: rn === undefined ? '-' : `${fmt(rn)} ms` });
  T('random overwrite vs s3fs', 'silt', 's3fs', 'randomWrite', 50);

  // Targets (issue 16: the data path). Speeds against the ceiling and the peers, and the costs of
  // Silt's own server, which must hold whatever the load.
  const targets16: Target[] = [];
  const limit = (name: string, x: number | undefined, op: '<=' | '>=', bound: number, boundText: string, unit: string) => {
    targets16.push({ name: `${name} ${op} ${boundText}`, ...(x !== undefined ? { value: x, met: op === '<=' ? x <= bound : x >= bound } : {}), text: x === undefined ? '-' : `${fmt(x)}${unit ? ` ${unit}` : ''}` });
  };
  T('cold sequential read vs raw GET', 'silt', 'raw', 'coldRead', 0.8, targets16);
  T('cold sequential read vs s3fs', 'silt', 's3fs', 'coldRead', 1.5, targets16);
  T('cold sequential read vs rclone writes', 'silt', 'rclone', 'coldRead', 1.5, targets16);
  T('cold sequential read vs rclone off', 'silt', 'rclone-off', 'coldRead', 1.5, targets16);
  T('sequential write + fsync vs raw PUT', 'silt', 'raw', 'seqWrite', 0.8, targets16);
  T('sequential write + fsync vs s3fs', 'silt', 's3fs', 'seqWrite', 1.5, targets16);
  T('small files, sync-on-close, 1 writer, vs raw PUTs, 1 writer', 'silt-soc', 'raw', 'small1', 0.8, targets16);
  T('small files, sync-on-close, 8 writers, vs raw PUTs, 8 writers', 'silt-soc', 'raw', 'small8', 2, targets16);
  limit('small files, default, 1 writer, until in the store', get('small1', 'silt')?.extra?.['filesPerSecInStore'], '>=', 1000, '1,000 files/s', 'files/s');
  limit('CPU of Silt\'s server per GiB read (cold read)', get('coldRead', 'silt')?.extra?.['cpuSPerGiB'], '<=', 2, '2 s', 's');
  limit('CPU of Silt\'s server per GiB written (sequential write + fsync)', get('seqWrite', 'silt')?.extra?.['cpuSPerGiB'], '<=', 3, '3 s', 's');
  for (const s of ['silt', 'silt-soc'] as const) {
    if (s === 'silt' || present.includes(s)) limit(`peak RSS of ${LABEL[s]}'s server`, peakRssMiB[s], '<=', 256, '256 MiB', 'MiB');
  }
  for (const w of ['small1', 'small8'] as const) {
    const x = get(w, 'silt-soc')?.extra;
    const writers = w === 'small1' ? '1 writer' : '8 writers';
    limit(`store requests per 4 KiB file durable at close, sync-on-close, ${writers}`, x?.['requests'] === undefined ? undefined : x['requests'] / SMALL_FILES, '<=', 1, '1', '');
    limit(`bytes sent to the store per 4 KiB file durable at close, sync-on-close, ${writers}`, x?.['bytesPerFile'], '<=', 8192, '8 KiB', 'bytes');
  }
  L.push('## Targets', '');
  const targetTable = (title: string, list: Target[]) => {
    L.push(`### ${title}`, '');
    L.push('| target | measured | met |', '|---|---:|---|');
    for (const t of list) L.push(`| ${t.name} | ${t.text} | ${t.met === undefined ? '-' : t.met ? 'yes' : '**no**'} |`);
    L.push('');
  };
  targetTable('Issue 9', targets);
  targetTable('Issue 16: the data path', targets16);
  L.push('Requests and bytes per file count everything that reached the store during the workload (every');
  L.push('method; bytes are request bodies), divided by the number of files. They come from Swift\'s proxy');
  L.push('access log: each request a client sent, once (an S3 request as the S3 request, not the Swift');
  L.push('requests Swift made for it).', '');

  const chart: ChartData = {
    title: 'Silt beside its peers over the same Swift',
    subtitle: `scale ${String(meta['scale'])}, medians of ${String(meta['reps'])}; ${String(m['nproc'])} CPUs; load ${(m['loadavgStart'] as number[])[0]?.toFixed(1)} -> ${(m['loadavgEnd'] as number[])[0]?.toFixed(1)} (shared machine); Silt ${v['silt']}`,
    panels: ORDER.filter((w) => cells[w]).map((w) => ({
      title: WORKLOADS[w].label,
      unit: WORKLOADS[w].unit,
      lowerIsBetter: WORKLOADS[w].lowerIsBetter === true,
      bars: present.filter((s) => get(w, s)).map((s) => {
        const c = get(w, s)!;
        return { system: LABEL[s], ...(c.median !== undefined ? { value: c.median } : { note: cellText(c, w) }) };
      }),
    })),
  };
  return { markdown: L.join('\n') + '\n', json: { ...meta, cells, serverPeakRssMiB: peakRssMiB, runs: results, targets: [...targets.map((t) => ({ issue: 9, ...t })), ...targets16.map((t) => ({ issue: 16, ...t }))] }, chart };
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
