/**
 * `silt serve`: own a volume and serve it over JSON-RPC (docs/RPC.md).
 *
 * Takes the volume's owner lease (one writer per volume: a second serve or mount is refused while
 * the owner's heartbeat is fresh, unless --takeover), opens the store and the volume (creating it
 * with --mkfs), listens on 127.0.0.1:12345 unless --rpc says otherwise, and prints where. With
 * --mount it also mounts the volume through FUSE in this process. Every connection presents a token: --token, else SILT_TOKEN
 * (or SILT_RPC_TOKEN), else a fresh random one written to a file readable only by its owner
 * (mode 0600), whose path is printed. SIGINT/SIGTERM (or `silt umount` of the --mount) unmount,
 * stop accepting, let in-flight calls finish, commit (fs.close()), release the lease and exit 0.
 * If another server took the volume over (a higher lease, or a commit that fences ours), this one
 * stops serving and exits 2.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { MountTable, openFileSystem, type SiltFileSystem } from '../fs/index.ts';
import { DEFAULT_RPC_PORT, parseAddress, startRpcServer } from '../rpc/index.ts';
import { FsError } from '../util/index.ts';
import { CliError, DEFAULT_STORE, DEFAULT_VOLUME, connect, describe, logger } from './common.ts';
import { engineTuning } from './config.ts';
import { parseListen, serveMetrics } from '../util/index.ts';
import { addHttpOptions, startHttp, type HttpFlags } from './objapi.ts';
import { addAdminOptions, startAdmin, type AdminFlags } from './admin-web.ts';
import { mountLocal, openOwned, type LocalMount } from './mount.ts';

export interface ServeFlags extends HttpFlags, AdminFlags {
  store: string;
  volume: string;
  mkfs: boolean;
  /** --rpc HOST:PORT */
  rpc: string;
  /** Deprecated spelling of --rpc (hidden). */
  listen?: string;
  /** Also mount the volume here through FUSE (this process serves both). */
  mount?: string;
  takeover: boolean;
  token?: string;
  tokenFile?: string;
  syncOnClose: boolean;
  flushIntervalMs?: string;
  logLevel?: string;
  /** Serve Prometheus metrics at HOST:PORT (GET /metrics). */
  metrics?: string;
}

/** Where a generated token goes unless --token-file says otherwise. */
export function defaultTokenFile(host: string, port: number): string {
  const dir = process.env['SILT_RUN_DIR'] ?? path.join(os.homedir(), '.silt');
  return path.join(dir, `rpc-token-${host.replace(/[^A-Za-z0-9.-]/g, '_')}-${port}`);
}

function writeTokenFile(file: string, token: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

export async function runServe(o: ServeFlags): Promise<void> {
  const log = logger(o.logLevel);
  const rpcAddress = o.listen ?? o.rpc;
  // Caches, queues and timeouts from flags, SILT_* or the configuration file (src/cli/config.ts).
  const tuning = engineTuning(o as unknown as Record<string, unknown>);
  if (o.metrics !== undefined) {
    // First: a busy port fails before the volume is opened.
    const { host, port } = parseListen(o.metrics, 9464);
    const m = await serveMetrics(host, port);
    log.info('metrics served', { url: `http://${m.address}/metrics` });
  }
  let addr: { host: string; port: number };
  try {
    addr = parseAddress(rpcAddress);
  } catch (e) {
    throw new CliError(`--rpc: ${(e as Error).message}`);
  }
  let flushIntervalMs: number | undefined;
  if (o.flushIntervalMs !== undefined) {
    flushIntervalMs = Number(o.flushIntervalMs);
    if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0) {
      throw new CliError(`--flush-interval-ms must be a whole number of milliseconds, not ${o.flushIntervalMs}`);
    }
  }
  let token = o.token ?? process.env['SILT_TOKEN'] ?? process.env['SILT_RPC_TOKEN'];
  if (token !== undefined && token.length === 0) throw new CliError('the token must not be empty');

  const store = await connect(o.store, o.mkfs);
  let fsys: SiltFileSystem;
  let lease: Awaited<ReturnType<typeof openOwned>>['lease'];
  try {
    ({ fsys, lease } = await openOwned({
      store,
      storeUrl: o.store,
      volume: o.volume,
      role: 'silt serve',
      address: rpcAddress,
      takeover: o.takeover,
      logger: log,
      open: () =>
        openFileSystem({
          store,
          volume: o.volume,
          create: o.mkfs,
          syncOnClose: o.syncOnClose,
          logger: log,
          ...(flushIntervalMs !== undefined && { flushIntervalMs }),
          volumeOptions: tuning.volume,
          inode: tuning.inode,
          ...(tuning.gcIntervalMs !== undefined && { gcIntervalMs: tuning.gcIntervalMs }),
        }),
    }));
  } catch (e) {
    if (e instanceof FsError && e.errno === 'ENOENT' && !o.mkfs) {
      throw new CliError(`volume '${o.volume}' does not exist in ${o.store} (create it with --mkfs)`);
    }
    throw describe(e, `cannot open volume '${o.volume}'`);
  }

  let tokenNote = '';
  if (token === undefined) {
    token = randomBytes(24).toString('base64url');
    // Written once the port is known (an --rpc port of 0 picks one).
  }
  const mounts = new MountTable([[o.volume, fsys]]);
  let server: Awaited<ReturnType<typeof startRpcServer>>;
  try {
    server = await startRpcServer({ mounts, token, host: addr.host, port: addr.port, logger: log, limits: tuning.rpc });
  } catch (e) {
    await fsys.close().catch(() => {});
    await lease.release().catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot listen on ${rpcAddress}: ${code === 'EADDRINUSE' ? 'address in use (another silt serve?)' : (e as Error).message}`);
  }
  if (o.token === undefined && !process.env['SILT_TOKEN'] && !process.env['SILT_RPC_TOKEN']) {
    const file = o.tokenFile ?? defaultTokenFile(server.host, server.port);
    writeTokenFile(file, token);
    tokenNote = `; token in ${file} (mode 0600)`;
  } else {
    tokenNote = '; token as given (--token, SILT_TOKEN or the configuration file)';
  }
  const where = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  lease.setAddress(where);
  void lease.renew(); // tell would-be second owners the real address now, not at the first heartbeat
  process.stdout.write(`silt: serving volume '${o.volume}' from ${o.store} over JSON-RPC on ${where} (pid ${process.pid})${tokenNote}\n`);
  if (!['127.0.0.1', '::1', 'localhost'].includes(server.host)) {
    log.warn('listening beyond loopback: the token and all data travel unencrypted; use a private network or a TLS tunnel');
  }
  let http: Awaited<ReturnType<typeof startHttp>>;
  try {
    http = await startHttp(o, fsys, o.volume, log);
  } catch (e) {
    await server.close();
    await fsys.close().catch(() => {});
    await lease.release().catch(() => {});
    throw e;
  }
  if (http) process.stdout.write(http.line);
  let local: LocalMount | undefined;
  if (o.mount !== undefined) {
    try {
      local = await mountLocal(fsys, o.mount, { store: o.store, volume: o.volume, logger: log });
    } catch (e) {
      await http?.api.close();
      await server.close();
      await fsys.close().catch(() => {});
      await lease.release().catch(() => {});
      throw describe(e, `cannot mount at ${o.mount}`);
    }
    // Changes made through the object API invalidate what the kernel cached for this mount.
    http?.api.notifyChanges(local.server);
    process.stdout.write(`silt: volume '${o.volume}' also mounted at ${local.server.mountpoint}\n`);
  }

  let exitCode = 0;
  let stopping: Promise<void> | undefined;
  let markStopped = (): void => {};
  const stopped = new Promise<void>((resolve) => {
    markStopped = resolve;
  });
  const stop = (why: string, fenced = false): Promise<void> => {
    stopping ??= (async () => {
      log.info(`${why}: stopping`, { volume: o.volume });
      clearInterval(fenceWatch);
      // The local mount first (lazily if busy: open files are served until they close).
      http?.api.notifyChanges(undefined);
      await local?.unmount();
      await admin?.server.close();
      await http?.api.close();
      await server.close();
      if (fenced) {
        exitCode = 2;
        log.error('stopped: another server took this volume over (fenced); nothing more was committed', { volume: o.volume });
        await fsys.close().catch(() => {});
        local?.forget();
        await lease.release().catch(() => {});
        return;
      }
      try {
        await fsys.close();
        log.info('committed and closed', { volume: o.volume, commit: fsys.volume.lastCommit.seq });
      } catch (e) {
        exitCode = 2;
        log.error('final commit failed', { err: (e as Error).message });
      }
      local?.forget();
      await lease.release().catch((e: unknown) => log.warn('could not release the owner lease', { err: String(e) }));
    })().finally(markStopped);
    return stopping;
  };
  const fenceWatch = setInterval(() => {
    if (fsys.volume.fenced) void stop('volume fenced', true);
  }, 500);
  lease.start(() => void stop('the owner lease was taken over by another process', true));
  // `silt umount` of the local mount (or umount(8)) stops the whole server, as for a plain mount.
  void local?.server.closed.then(() => void stop('local mount unmounted'));
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    admin = await startAdmin(o, fsys, o.volume, log, { 'JSON-RPC': where, ...(http && { 'object API': http.api.url }) });
  } catch (e) {
    await stop('the admin pages could not start');
    throw e;
  }
  if (stopping) await admin?.server.close(); // stopped (fenced) while the pages were starting
  else if (admin) process.stdout.write(admin.line);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      log.warn(`${sig} again: exiting without waiting for the commit`);
      process.exit(130);
    }
    void stop(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await stopped;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = exitCode;
  if (exitCode !== 0) throw new CliError(`stopped serving volume '${o.volume}'`, exitCode);
  // Whatever handle a backend may still hold must not keep a stopped server alive.
  setTimeout(() => process.exit(exitCode), 5000).unref();
}

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('own a volume and serve it over JSON-RPC (docs/RPC.md) until SIGINT/SIGTERM')
    .addOption(new Option('-s, --store <url>', 'object store URL').default(process.env['SILT_STORE'] ?? DEFAULT_STORE))
    .addOption(new Option('-v, --volume <name>', 'volume name').default(process.env['SILT_VOLUME'] ?? DEFAULT_VOLUME))
    .option('--mkfs', 'create the volume first if it does not exist', false)
    .option('--rpc <host:port>', 'serve JSON-RPC at this address (port 0 picks a free one)', process.env['SILT_RPC_LISTEN'] ?? `127.0.0.1:${DEFAULT_RPC_PORT}`)
    .addOption(new Option('--listen <host:port>', 'deprecated spelling of --rpc').hideHelp())
    .option('--mount <mountpoint>', 'also mount the volume there through FUSE (this process serves both)')
    .option('--takeover', "take the volume's owner lease even from a live owner (waits its lease out, about 30 s, then fences it)", false)
    .option('--token <token>', 'shared secret clients present (default: $SILT_TOKEN, else a generated one written to a 0600 file)')
    .option('--token-file <path>', 'where to write a generated token (default ~/.silt/rpc-token-HOST-PORT)')
    .option('--sync-on-close', 'RpcRelease of a written file returns after a durable commit', false)
    .option('--flush-interval-ms <ms>', 'commit dirty state at least this often (default 1000)')
    .option('--log-level <level>', 'debug, info, warn or error')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics');
  addAdminOptions(addHttpOptions(cmd))
    .addHelpText(
      'after',
      `
One writer per volume: the owner holds a lease in the store (<volume>/owner/) and renews it every
10 s (SILT_LEASE_INTERVAL_MS). A second serve or mount of the volume is refused while that lease is
fresh; it may start once the owner released it (SIGTERM), once it is stale (no heartbeat for 3
intervals), at once if the owner ran on this host and is gone, or with --takeover. A takeover
commits once before serving, so the old owner's next commit fails (fenced) and it stops (exit 2).

Examples:
  silt serve --store file:/srv/silt --mkfs
  silt serve --store file:/srv/silt --mount /mnt/silt      # RPC and a local FUSE mount
  SILT_TOKEN=secret silt serve --store file:/srv/silt --rpc 0.0.0.0:12345
  silt serve --store file:/srv/silt --http --http-user test:tester --http-key testing
  silt serve --store file:/srv/silt --admin --http-user ops --http-key secret   # web pages on 127.0.0.1:8099`,
    )
    .action(async (o: ServeFlags) => {
      await runServe(o);
    });
}
