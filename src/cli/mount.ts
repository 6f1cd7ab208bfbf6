/**
 * `silt mount` and `silt umount`: serve a volume through the kernel FUSE module.
 *
 * runMount (foreground): cleans a stale mount left by a killed server, opens the store and the
 * volume (creating it only with mkfs), mounts with allow_other,default_permissions, serves until
 * unmounted (by `silt umount`, umount(8), or SIGINT/SIGTERM, which unmount), then commits
 * (fs.close()) and returns. With `background` it starts itself as a detached child and returns
 * once that child's mount answers. runUmount unmounts and waits until the server has committed
 * and exited.
 *
 * A mount of the store (not --remote, not --snapshot) takes the volume's owner lease first
 * (openOwned, shared with `silt serve`): a second writer is refused at start while the owner's
 * heartbeat is fresh, unless --takeover; a process that finds its lease taken over stops.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SiltFileSystem, openFileSystem, type FileSystem } from '../fs/index.ts';
import { LeaseHeldError, VolumeLease, describeHolder, type LeaseView } from '../headhunter/index.ts';
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
import { InstrumentedStore, openStore, type ObjectStore } from '../objstore/index.ts';
import { FsError, parseListen, serveMetrics } from '../util/index.ts';
import { ConfigError, type EngineTuning } from './config.ts';
import { defaultLogLevel, stderrLogger, type Logger } from '../util/index.ts';

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
  /** Take the volume's owner lease even from a live owner (which is then fenced). */
  takeover?: boolean;
  /** Caches, queues and timeouts from the settings (src/cli/config.ts); absent ones keep the layers' defaults. */
  tuning?: EngineTuning;
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
  fuseReadersFromEnv(); // a bad value fails before anything is opened or spawned
  if (opts.background) return startBackground({ ...opts, mountpoint });
  const log = opts.logger;

  const stale = await cleanStaleMount(mountpoint);
  if (stale === 'live') throw new Error(`${mountpoint} is already mounted (see 'silt umount ${mountpoint}')`);
  if (stale === 'cleaned') log.warn('cleaned a stale mount left by a server that died', { mountpoint });
  await fs.promises.mkdir(mountpoint, { recursive: true });

  // Metrics first: a port in use fails the mount before anything is opened or mounted.
  if (opts.metrics !== undefined) {
    const { host, port } = parseListen(opts.metrics, 9464);
    const m = await serveMetrics(host, port);
    log.info('metrics served', { url: `http://${m.address}/metrics` });
  }

  // --remote: the volume is owned by a `silt serve` elsewhere; this mount is an agent over RPC.
  if (opts.remote !== undefined) return serveMounted(opts, mountpoint, await connectRemote(opts, log), log);
  const { fsys, lease } = await openLocal(opts, mountpoint, log);
  return serveMounted(opts, mountpoint, fsys, log, lease);
}

/** The owner lease's heartbeat interval: SILT_LEASE_INTERVAL_MS (tests shorten it), else the default. */
export function leaseIntervalMs(): number | undefined {
  const v = process.env['SILT_LEASE_INTERVAL_MS'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`SILT_LEASE_INTERVAL_MS must be a positive whole number of milliseconds, not ${v}`);
  return n;
}

export interface OwnedOptions {
  store: ObjectStore;
  /** The store's URL, for messages. */
  storeUrl: string;
  volume: string;
  /** "silt serve", "silt mount": what others are told holds the volume. */
  role: string;
  address?: string;
  takeover: boolean;
  logger: Logger;
  /** Open the volume's file system (called after the lease is held; again if a claim lost a race). */
  open: () => Promise<SiltFileSystem>;
}

/**
 * One writer per volume: take the volume's owner lease, then open it. After a takeover (the old
 * owner died, went stale, or --takeover, which first waits out the old owner's lease) commit once
 * before serving, so that every later commit of the old owner fails its conditional create. The
 * caller starts the heartbeat (lease.start) once it serves and releases the lease after its final
 * commit.
 */
export async function openOwned(o: OwnedOptions): Promise<{ fsys: SiltFileSystem; lease: VolumeLease }> {
  const log = o.logger;
  const intervalMs = leaseIntervalMs();
  let lease: VolumeLease;
  try {
    lease = await VolumeLease.acquire(o.store, o.volume, {
      role: o.role,
      takeover: o.takeover,
      logger: log,
      ...(o.address !== undefined && { address: o.address }),
      ...(intervalMs !== undefined && { intervalMs }),
    });
  } catch (e) {
    if (!(e instanceof LeaseHeldError)) throw e;
    const h = e.view.holder;
    const staleS = ((h.intervalMs * h.staleAfterIntervals) / 1000).toFixed(0);
    throw new Error(
      `volume '${o.volume}' in ${o.storeUrl} is ${describeHolder(e.view)}. One writer per volume: stop that process ` +
        `(SIGTERM commits), wait until its lease goes stale (no heartbeat for ${staleS} s), or pass --takeover ` +
        `(it waits the owner's lease out, then fences it)`,
      { cause: e },
    );
  }
  const prev = lease.previous;
  if (prev && lease.tookOver) log.warn(`taking volume '${o.volume}' over: ${tookOverBecause(prev)}`, { previous: describeHolder(prev) });
  let fsys: SiltFileSystem;
  try {
    fsys = await o.open();
  } catch (e) {
    // A volume that does not exist keeps no lease object behind.
    const missing = e instanceof FsError && e.errno === 'ENOENT';
    await lease.release({ forget: missing }).catch(() => {});
    throw e;
  }
  // Holding the lease, commits need no read-back (Volume's OwnershipGuard); the claim after a
  // takeover is made without it, so it would catch an old owner's late commit.
  if (!lease.tookOver) {
    fsys.volume.setOwnership(lease);
    return { fsys, lease };
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await lease.claim(fsys.volume);
      fsys.volume.setOwnership(lease);
      return { fsys, lease };
    } catch (e) {
      await fsys.close().catch(() => {});
      // The old owner committed between our open and our claim: open its newer state and claim again.
      if (fsys.volume.fenced === null || attempt >= 3) {
        await lease.release().catch(() => {});
        throw e;
      }
      log.warn('the previous owner committed during the takeover; reopening', { attempt });
      try {
        fsys = await o.open();
      } catch (e2) {
        await lease.release().catch(() => {});
        throw e2;
      }
    }
  }
}

function tookOverBecause(v: LeaseView): string {
  switch (v.state) {
    case 'dead':
      return `its owner (pid ${v.holder.pid} on this host) is gone`;
    case 'stale':
      return `its owner's lease is stale (last heartbeat ${(v.ageMs / 1000).toFixed(1)} s ago, stale after ${((v.holder.intervalMs * v.holder.staleAfterIntervals) / 1000).toFixed(0)} s)`;
    default:
      return "taken over on request (--takeover) once the old owner's lease ran out; it is fenced at its next commit";
  }
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

async function openLocal(opts: RunMountOptions, mountpoint: string, log: Logger): Promise<{ fsys: SiltFileSystem; lease?: VolumeLease }> {
  const t = opts.tuning;
  const store = new InstrumentedStore(await openStore(opts.store, { create: opts.mkfs, ...t?.store }));
  const open = (): Promise<SiltFileSystem> =>
    openFileSystem({
      store,
      volume: opts.volume,
      create: opts.mkfs && opts.snapshot === undefined,
      ...(opts.snapshot !== undefined && { snapshot: opts.snapshot }),
      syncOnClose: opts.syncOnClose,
      logger: log,
      ...(opts.flushIntervalMs !== undefined && { flushIntervalMs: opts.flushIntervalMs }),
      ...(t && { volumeOptions: t.volume, inode: t.inode }),
      ...(t?.gcIntervalMs !== undefined && { gcIntervalMs: t.gcIntervalMs }),
    });
  try {
    // A snapshot is read-only: it writes nothing, so it needs no lease.
    if (opts.snapshot !== undefined) return { fsys: await open() };
    return await openOwned({
      store,
      storeUrl: opts.store,
      volume: opts.volume,
      role: 'silt mount',
      address: `${os.hostname()}:${mountpoint}`,
      takeover: opts.takeover ?? false,
      logger: log,
      open,
    });
  } catch (e) {
    if (e instanceof FsError && e.errno === 'ENOENT' && !opts.mkfs) {
      throw new Error(`volume '${opts.volume}' does not exist in ${opts.store} (create it with --mkfs)`, { cause: e });
    }
    throw e;
  }
}

/** A FUSE mount of a file system this process serves, with its pid file (what `silt umount` waits for). */
export interface LocalMount {
  readonly server: FuseServer;
  /** Unmount (lazily if busy: open files are served until closed); resolves once the connection ended. */
  unmount(): Promise<void>;
  /** Remove the pid file (after the final commit). */
  forget(): void;
}

/** Mount `fsys` at `mountpoint` in this process: clean a stale mount, mount, write the pid file. */
export async function mountLocal(
  fsys: FileSystem & { readonly syncOnClose: boolean },
  mountpoint: string,
  o: { store: string; volume: string; logger: Logger },
): Promise<LocalMount> {
  const mp = path.resolve(mountpoint);
  const stale = await cleanStaleMount(mp);
  if (stale === 'live') throw new Error(`${mp} is already mounted (see 'silt umount ${mp}')`);
  if (stale === 'cleaned') o.logger.warn('cleaned a stale mount left by a server that died', { mountpoint: mp });
  await fs.promises.mkdir(mp, { recursive: true });
  const readers = fuseReadersFromEnv();
  const server = await serveFuse(fsys, mp, { logger: o.logger, fsname: `silt:${o.volume}`, syncOnClose: fsys.syncOnClose, ...(readers !== undefined && { readers }) });
  const pf = pidFile(mp);
  const info: PidInfo = { pid: process.pid, mountpoint: mp, store: o.store, volume: o.volume };
  fs.mkdirSync(path.dirname(pf), { recursive: true });
  fs.writeFileSync(pf, JSON.stringify(info) + '\n');
  let ended = false;
  void server.closed.then(() => (ended = true));
  return {
    server,
    async unmount() {
      if (ended) return; // unmounted already (silt umount, umount(8))
      await server.unmount().catch(async (e: unknown) => {
        if (ended) return;
        o.logger.warn('unmount refused; detaching lazily (open files are still served)', { error: String(e) });
        const r = await unmountFuse(mp, { lazy: true });
        if (!r.ok) o.logger.error('lazy unmount failed', { mountpoint: mp, error: r.message });
      });
      await server.closed;
    },
    forget() {
      try {
        if (readPid(mp)?.pid === process.pid) fs.unlinkSync(pf);
      } catch {
        // already gone
      }
    },
  };
}

async function serveMounted(opts: RunMountOptions, mountpoint: string, fsys: MountedFileSystem, log: Logger, lease?: VolumeLease): Promise<void> {
  let server: FuseServer;
  try {
    const readers = fuseReadersFromEnv();
    server = await serveFuse(fsys, mountpoint, {
      logger: log,
      fsname: `silt:${opts.volume}`,
      syncOnClose: fsys.syncOnClose,
      ...(readers !== undefined && { readers }),
    });
  } catch (e) {
    await fsys.close().catch(() => {});
    await lease?.release().catch(() => {});
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
  // Another process took the volume over: stop serving (its claim commit fences ours).
  let lostTo: LeaseView | undefined;
  lease?.start((by) => {
    lostTo = by ?? lease.previous;
    log.error('another process took this volume over; unmounting', { by: by ? describeHolder(by) : 'unknown' });
    onSignal('SIGTERM');
  });


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
  } catch (e) {
    if (!lease?.lost) throw e;
  } finally {
    try {
      if (readPid(mountpoint)?.pid === process.pid) fs.unlinkSync(pf);
    } catch {
      // already gone
    }
    await lease?.release().catch((e: unknown) => log.warn('could not release the owner lease', { err: String(e) }));
  }
  if (lease?.lost) {
    throw new Error(`volume '${opts.volume}' was taken over by another process (${lostTo ? describeHolder(lostTo) : 'unknown'}); stopped`);
  }
  log.info('committed and closed', { volume: opts.volume });
}

/**
 * SILT_FUSE_READERS (docs/CONFIG.md): how the server reads /dev/fuse. Unset: on the event loop
 * (the default); 1-16: that many blocking reader threads, the earlier design, kept as a fallback.
 */
function fuseReadersFromEnv(): number | undefined {
  const v = process.env['SILT_FUSE_READERS'];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 16) {
    throw new ConfigError([`SILT_FUSE_READERS=${v}: must be an integer from 0 (read on the event loop, the default) to 16 (blocking reader threads)`]);
  }
  return n;
}

/** Start a detached server process running runMount in the foreground; resolve once it answers. */
async function startBackground(opts: RunMountOptions): Promise<void> {
  const { logger: _logger, onReady: _onReady, onServer: _onServer, ...plain } = opts;
  const childOpts = { ...plain, background: false };
  const lf = logFile(opts.mountpoint);
  fs.mkdirSync(path.dirname(lf), { recursive: true });
  const out = fs.openSync(lf, 'a');
  const self = fileURLToPath(import.meta.url);
  // The compiled build runs as is; the TypeScript sources need tsx's loader in the child too.
  const args = self.endsWith('.js') ? [self] : ['--import', process.env['SILT_TSX_IMPORT'] ?? import.meta.resolve('tsx'), self];
  const child = spawn(process.execPath, args, {
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
  // The parent's --log-level/--log-format arrive as SILT_LOG_LEVEL/SILT_LOG_FORMAT.
  const logger = stderrLogger(defaultLogLevel());
  runMount({ ...o, background: false, logger }).then(
    () => process.exit(0),
    (e: unknown) => {
      logger.error('mount failed', { error: e instanceof Error ? e.message : String(e) });
      process.exit(1);
    },
  );
}
