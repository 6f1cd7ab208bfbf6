/**
 * `silt mount` and `silt umount`: serve a volume through the kernel FUSE module.
 *
 * runMount (foreground): cleans a stale mount left by a killed server, opens the store and the
 * volume (creating it only with mkfs), mounts with allow_other,default_permissions, serves until
 * unmounted (by `silt umount`, umount(8), or SIGINT/SIGTERM, which unmount), then commits
 * (fs.close()) and returns. With `background` it starts itself as a detached child and returns
 * once that child's mount answers. runUmount unmounts and waits until the server has committed
 * and exited.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SiltFileSystem, openFileSystem, type FileSystem } from '../fs/index.ts';
import { RpcClient } from '../rpc/index.ts';
import {
  abortConnection,
  cleanStaleMount,
  findMount,
  probeMount,
  serveFuse,
  statWithTimeout,
  unmountFuse,
  type FuseServer,
} from '../fuse/index.ts';
import { InstrumentedStore, openStore } from '../objstore/index.ts';
import { FsError, parseListen, serveMetrics } from '../util/index.ts';
import { stderrLogger, type Logger } from '../util/index.ts';

export interface RunMountOptions {
  /** Store URL: file:PATH, memory:NAME, swift+http://..., s3+http://... */
  store: string;
  volume: string;
  mountpoint: string;
  /** Create the volume if it does not exist (otherwise a missing volume is an error). */
  mkfs: boolean;
  /** Detach: start a server process and return once its mount answers. */
  background: boolean;
  /** Close of a written file waits for a durable commit. */
  syncOnClose: boolean;
  flushIntervalMs?: number;
  /** Mount this snapshot read-only instead of the newest state. */
  snapshot?: string;
  /** Serve Prometheus metrics at this HOST:PORT (GET /metrics). */
  metrics?: string;
  /** Mount a volume served by `silt serve` at HOST:PORT (an agent over RPC) instead of opening the store. */
  remote?: string;
  /** The server's RPC token (--remote); default SILT_TOKEN. */
  token?: string;
  logger: Logger;
  /** Called once the mount answers (foreground), e.g. to print where it is. */
  onReady?: (info: { mountpoint: string; pid: number }) => void;
  /** Called with the live server and file system once mounted (foreground; tests, stats). */
  onServer?: (server: FuseServer, fs: SiltFileSystem) => void;
}

/** Where pid files of running servers live (one per mountpoint). */
export function runDir(): string {
  const env = process.env['SILT_RUN_DIR'];
  if (env) return env;
  try {
    fs.mkdirSync('/run/silt', { recursive: true });
    fs.accessSync('/run/silt', fs.constants.W_OK);
    return '/run/silt';
  } catch {
    return path.join(os.tmpdir(), 'silt-run');
  }
}

function keyOf(mountpoint: string): string {
  return createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 16);
}

export function pidFile(mountpoint: string): string {
  return path.join(runDir(), `mount-${keyOf(mountpoint)}.json`);
}

export function logFile(mountpoint: string): string {
  return path.join(runDir(), `mount-${keyOf(mountpoint)}.log`);
}

interface PidInfo {
  pid: number;
  mountpoint: string;
  store: string;
  volume: string;
}

function readPid(mountpoint: string): PidInfo | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(pidFile(mountpoint), 'utf8')) as PidInfo;
    return typeof v.pid === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const CHILD_ENV = 'SILT_MOUNT_CHILD_OPTS';

export async function runMount(opts: RunMountOptions): Promise<void> {
  const mountpoint = path.resolve(opts.mountpoint);
  if (opts.background) return startBackground({ ...opts, mountpoint });
  const log = opts.logger;

  const stale = await cleanStaleMount(mountpoint);
  if (stale === 'live') throw new Error(`${mountpoint} is already mounted (see 'silt umount ${mountpoint}')`);
  if (stale === 'cleaned') log.warn('cleaned a stale mount left by a server that died', { mountpoint });
  await fs.promises.mkdir(mountpoint, { recursive: true });

  // --remote: the volume is owned by a `silt serve` elsewhere; this mount is an agent over RPC.
  const fsys: MountedFileSystem =
    opts.remote !== undefined ? await connectRemote(opts, log) : await openLocal(opts, log);
  return serveMounted(opts, mountpoint, fsys, log);
}

/** What a mount serves: the engine itself, or an RPC client of a remote server. */
type MountedFileSystem = FileSystem & { close(): Promise<void>; readonly syncOnClose: boolean };

async function connectRemote(opts: RunMountOptions, log: Logger): Promise<MountedFileSystem> {
  const token = opts.token ?? process.env['SILT_TOKEN'] ?? process.env['SILT_RPC_TOKEN'];
  if (!token) throw new Error('--remote needs the server token: --token or SILT_TOKEN');
  const client = await RpcClient.connect({ address: opts.remote!, token, volume: opts.volume, logger: log });
  // The server decides when data is durable; close waits for it only if asked to here.
  return Object.assign(client, { syncOnClose: opts.syncOnClose });
}

async function openLocal(opts: RunMountOptions, log: Logger): Promise<SiltFileSystem> {
  const store = new InstrumentedStore(await openStore(opts.store, { create: opts.mkfs }));
  let fsys: SiltFileSystem;
  try {
    fsys = await openFileSystem({
      store,
      volume: opts.volume,
      create: opts.mkfs && opts.snapshot === undefined,
      ...(opts.snapshot !== undefined && { snapshot: opts.snapshot }),
      syncOnClose: opts.syncOnClose,
      logger: log,
      ...(opts.flushIntervalMs !== undefined && { flushIntervalMs: opts.flushIntervalMs }),
    });
  } catch (e) {
    if (e instanceof FsError && e.errno === 'ENOENT' && !opts.mkfs) {
      throw new Error(`volume '${opts.volume}' does not exist in ${opts.store} (create it with --mkfs)`, { cause: e });
    }
    throw e;
  }
  return fsys;
}

async function serveMounted(opts: RunMountOptions, mountpoint: string, fsys: MountedFileSystem, log: Logger): Promise<void> {
  let server: FuseServer;
  try {
    server = await serveFuse(fsys, mountpoint, {
      logger: log,
      fsname: `silt:${opts.volume}`,
      syncOnClose: fsys.syncOnClose,
    });
  } catch (e) {
    await fsys.close().catch(() => {});
    throw e;
  }

  const pf = pidFile(mountpoint);
  const info: PidInfo = { pid: process.pid, mountpoint, store: opts.store, volume: opts.volume };
  fs.mkdirSync(path.dirname(pf), { recursive: true });
  fs.writeFileSync(pf, JSON.stringify(info) + '\n');

  // SIGINT/SIGTERM: unmount (lazily if busy; the server keeps serving open files until the last
  // one closes). A second signal aborts the connection. Either way the commit follows below.
  let signals = 0;
  const device = findMount(mountpoint)?.device;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    log.info(`${sig}: unmounting`, { mountpoint });
    if (signals > 1) {
      if (!abortConnection(mountpoint) && device) {
        try {
          fs.writeFileSync(`/sys/fs/fuse/connections/${device.split(':')[1]}/abort`, '1');
        } catch {
          // nothing else to do
        }
      }
      return;
    }
    void server.unmount().catch(async (e: unknown) => {
      log.warn('unmount refused; detaching lazily (open files are still served)', { error: String(e) });
      await unmountFuse(mountpoint, { lazy: true });
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (opts.metrics !== undefined) {
    const { host, port } = parseListen(opts.metrics, 9464);
    const m = await serveMetrics(host, port);
    log.info('metrics served', { url: `http://${m.address}/metrics` });
  }

  const st = await statWithTimeout(mountpoint, 10_000);
  if (!st.ok) log.warn('the new mount does not answer stat', { code: st.code });
  log.info('mounted', { volume: opts.volume, store: opts.store, mountpoint, pid: process.pid, syncOnClose: fsys.syncOnClose });
  if (fsys instanceof SiltFileSystem) opts.onServer?.(server, fsys);
  opts.onReady?.({ mountpoint, pid: process.pid });
  if (process.env[CHILD_ENV] && process.send) {
    process.send({ ready: true, pid: process.pid });
    process.disconnect?.();
  }

  await server.closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  log.info('unmounted; committing', { mountpoint });
  try {
    await fsys.close();
  } finally {
    try {
      if (readPid(mountpoint)?.pid === process.pid) fs.unlinkSync(pf);
    } catch {
      // already gone
    }
  }
  log.info('committed and closed', { volume: opts.volume });
}

/** Start a detached server process running runMount in the foreground; resolve once it answers. */
async function startBackground(opts: RunMountOptions): Promise<void> {
  const { logger: _logger, onReady: _onReady, onServer: _onServer, ...plain } = opts;
  const childOpts = { ...plain, background: false };
  const lf = logFile(opts.mountpoint);
  fs.mkdirSync(path.dirname(lf), { recursive: true });
  const out = fs.openSync(lf, 'a');
  const tsx = process.env['SILT_TSX_IMPORT'] ?? import.meta.resolve('tsx');
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', tsx, self], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [CHILD_ENV]: JSON.stringify(childOpts), UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16' },
  });
  fs.closeSync(out);
  const result = await new Promise<{ ok: true; pid: number } | { ok: false; why: string }>((resolve) => {
    child.on('message', (m: { ready?: boolean; pid?: number }) => {
      if (m.ready) resolve({ ok: true, pid: m.pid ?? child.pid ?? 0 });
    });
    child.on('exit', (code, sig) => resolve({ ok: false, why: `server exited (${sig ?? code})` }));
    child.on('error', (e) => resolve({ ok: false, why: String(e) }));
  });
  if (!result.ok) {
    let tail = '';
    try {
      tail = fs.readFileSync(lf, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      // no log
    }
    throw new Error(`mount failed: ${result.why}\n${tail}`);
  }
  child.unref();
  if (child.connected) child.disconnect();
  opts.logger.info('mounted in the background', { mountpoint: opts.mountpoint, pid: result.pid, log: lf });
  opts.onReady?.({ mountpoint: opts.mountpoint, pid: result.pid });
}

/**
 * Unmount `mountpoint` and wait for its server to commit and exit. A stale mount (server killed)
 * is just unmounted. Throws when the mount is busy.
 */
export async function runUmount(mountpoint: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<void> {
  const abs = path.resolve(mountpoint);
  const log = opts.logger;
  const m = findMount(abs);
  const info = readPid(abs);
  if (!m) {
    if (info && alive(info.pid)) await waitExit(info.pid, opts.timeoutMs ?? 120_000);
    throw new Error(`${abs} is not mounted`);
  }
  if ((await probeMount(abs, 5000)) === 'stale') {
    await cleanStaleMount(abs);
    log?.info('cleaned a stale mount', { mountpoint: abs });
    return;
  }
  const r = await unmountFuse(abs);
  if (!r.ok) throw new Error(`cannot unmount ${abs}: ${r.message}`);
  if (info && alive(info.pid)) {
    log?.info('waiting for the server to commit', { pid: info.pid });
    if (!(await waitExit(info.pid, opts.timeoutMs ?? 120_000))) {
      throw new Error(`server ${info.pid} did not exit after unmount`);
    }
  }
}

async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

// Run as the detached server of `runMount({background: true})`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.env[CHILD_ENV]) {
  const o = JSON.parse(process.env[CHILD_ENV]) as Omit<RunMountOptions, 'logger'>;
  const logger = stderrLogger('info');
  runMount({ ...o, background: false, logger }).then(
    () => process.exit(0),
    (e: unknown) => {
      logger.error('mount failed', { error: e instanceof Error ? e.message : String(e) });
      process.exit(1);
    },
  );
}
