/**
 * `silt smb`: share a volume over SMB with the real Debian smbd.
 *
 * Mounts the volume with sync-on-close (unless --mount names an existing Silt mount), writes a
 * self-contained smb.conf and all Samba state under --state, adds the users, runs smbd in the
 * foreground, and on SIGINT/SIGTERM/SIGHUP stops smbd, then unmounts, which returns after the
 * final commit. See src/smb/index.ts for the invariants and docs/SMB.md for the user's view.
 */
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findMount, statWithTimeout } from '../fuse/index.ts';
import {
  SHARE_GROUP,
  Smbd,
  buildInfo,
  clientAddress,
  deleteSmbUser,
  ensureGroup,
  ensureInGroup,
  ensureSystemUser,
  findSamba,
  groupId,
  invalidShareName,
  listSmbUsers,
  listensEverywhere,
  missingVfsModules,
  parseSmbOption,
  parseUserSpec,
  portFree,
  renderSmbConf,
  setSmbPassword,
  stateLayout,
  type SmbUser,
} from '../smb/index.ts';
import type { Logger } from '../util/log.ts';
import { processAlive } from '../util/index.ts';
import { CliError, DEFAULT_STORE, DEFAULT_VOLUME, logger as makeLogger } from './common.ts';

export const DEFAULT_VFS_OBJECTS = 'streams_xattr acl_xattr';

export interface RunSmbOptions {
  store: string;
  volume: string;
  share: string;
  port: number;
  listen?: string | undefined;
  users: SmbUser[];
  readOnly: string[];
  /** Serve this directory; an existing Silt mount is used as it is, anything else is mounted here. */
  mount?: string | undefined;
  stateDir: string;
  mkfs: boolean;
  flushIntervalMs?: number | undefined;
  vfsObjects: string[];
  /** Extra `name = value` share parameters for smb.conf (--smb-option). */
  smbOptions?: string[] | undefined;
  smbLogLevel?: number | undefined;
  logger: Logger;
  /** Called once smbd accepts connections. */
  onReady?: (info: { mountpoint: string; host: string; port: number; smbdPid: number }) => void;
  /** Resolving it stops the share as a signal does (tests, embedding). */
  stop?: Promise<unknown>;
}

interface PidInfo {
  pid: number;
  store: string;
  volume: string;
}

function readPidInfo(file: string): PidInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PidInfo;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Run the share until a signal (or opts.stop). Throws CliError on anything a person must fix. */
export async function runSmb(opts: RunSmbOptions): Promise<void> {
  const log = opts.logger;
  const bad = invalidShareName(opts.share);
  if (bad) throw new CliError(bad);
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new CliError(`--port ${opts.port} is not a TCP port`);
  if (process.getuid?.() !== 0) throw new CliError('silt smb must run as root (smbd switches to each user, and mounting needs root)');
  let tools: ReturnType<typeof findSamba>;
  try {
    tools = findSamba();
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  if (opts.users.length === 0) throw new CliError('give at least one --user NAME:PASSWORD');
  const names = opts.users.map((u) => u.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new CliError(`--user ${dup} is given twice`);
  for (const r of opts.readOnly) {
    if (!names.includes(r)) throw new CliError(`--read-only ${r}: not one of the --user names (${names.join(', ')})`);
  }
  const missing = await missingVfsModules(tools.smbd, opts.vfsObjects);
  if (missing.length > 0) {
    throw new CliError(
      `smbd cannot load the VFS module${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: Debian ships them in the package ` +
        `samba-vfs-modules (apt-get install samba-vfs-modules); or choose others with --vfs-objects`,
    );
  }
  const probeAddr = listensEverywhere(opts.listen) ? undefined : opts.listen === 'lo' ? '127.0.0.1' : opts.listen;
  if ((probeAddr === undefined || /^[0-9.]+$|:/.test(probeAddr)) && !(await portFree(probeAddr, opts.port))) {
    throw new CliError(`port ${opts.port}${probeAddr ? ` on ${probeAddr}` : ''} is in use (another smbd?); choose one with --port`);
  }

  // Stop requests from here on unwind whatever has been set up.
  let stopReason: string | undefined;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const requestStop = (why: string): void => {
    if (stopReason === undefined) {
      stopReason = why;
      log.info(`${why}: stopping smbd, then committing and unmounting`);
    }
    wake();
  };
  const onSignal = (sig: NodeJS.Signals): void => requestStop(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  void opts.stop?.then(() => requestStop('stop requested'));

  const layout = stateLayout(opts.stateDir);
  let ownMount = false;
  let mountpoint = '';
  let smbd: Smbd | undefined;
  let failure: unknown;
  try {
    mountpoint = path.resolve(opts.mount ?? layout.mnt);
    checkReachable(mountpoint);
    for (const d of [layout.root, layout.lock, layout.state, layout.cache, layout.pid, layout.ncalrpc, layout.binddns, layout.log]) {
      fs.mkdirSync(d, { recursive: true });
    }
    fs.mkdirSync(layout.private, { recursive: true, mode: 0o700 });
    fs.chmodSync(layout.private, 0o700);
    fs.chmodSync(layout.root, 0o755);
    checkReachable(mountpoint); // directories just made follow the umask

    // smb.conf first: smbpasswd and pdbedit find the passdb through it.
    const listen = opts.listen;
    fs.writeFileSync(
      layout.conf,
      renderSmbConf({
        layout,
        share: opts.share,
        path: mountpoint,
        port: opts.port,
        listen,
        users: names,
        readOnlyUsers: opts.readOnly,
        vfsObjects: opts.vfsObjects,
        ...(opts.smbOptions && { shareOptions: opts.smbOptions }),
        ...(opts.smbLogLevel !== undefined && { logLevel: opts.smbLogLevel }),
      }),
      { mode: 0o644 },
    );

    // The mount and the users are independent: set them up side by side (each takes seconds).
    const mounting = (async (): Promise<boolean> => {
      const existing = findMount(mountpoint);
      if (existing) {
        if (existing.fstype !== 'fuse.silt') throw new CliError(`${mountpoint} is a ${existing.fstype} mount, not a Silt mount`);
        const st = await statWithTimeout(mountpoint, 5000);
        if (!st.ok) throw new CliError(`the Silt mount at ${mountpoint} does not answer (${st.code}); clean it with 'silt umount ${mountpoint}'`);
        const { pidFile } = await import('./mount.ts');
        const info = readPidInfo(pidFile(mountpoint));
        if (opts.mount) {
          log.info('sharing an existing Silt mount as it is (its close durability is what it was mounted with)', { mountpoint, source: existing.source });
          return false;
        }
        if (info && info.store === opts.store && info.volume === opts.volume) {
          log.warn('reusing the mount an earlier silt smb left running; it is unmounted when this one stops', { mountpoint, pid: info.pid });
          return true;
        }
        throw new CliError(`${mountpoint} is already a Silt mount of another volume; unmount it ('silt umount ${mountpoint}') or pass --mount`);
      }
      const { runMount, logFile } = await import('./mount.ts');
      await runMount({
        store: opts.store,
        volume: opts.volume,
        mountpoint,
        mkfs: opts.mkfs,
        background: true,
        syncOnClose: true,
        ...(opts.flushIntervalMs !== undefined && { flushIntervalMs: opts.flushIntervalMs }),
        logger: log,
      });
      log.info('mounted with sync-on-close', { mountpoint, serverLog: logFile(mountpoint) });
      return true;
    })();

    // Users: system users, the share group, Samba passwords; users no longer named are removed.
    const addingUsers = (async (): Promise<void> => {
      if (await ensureGroup(SHARE_GROUP)) log.info(`created the system group ${SHARE_GROUP} (all share users join it)`);
      for (const u of opts.users) {
        if (await ensureSystemUser(u.name)) {
          log.info(`created the system user ${u.name} (useradd --no-create-home --shell /usr/sbin/nologin): Samba users must be system users`);
        }
        if (await ensureInGroup(u.name, SHARE_GROUP)) log.info(`added ${u.name} to the group ${SHARE_GROUP}`);
        await setSmbPassword(layout.conf, u);
      }
      for (const old of await listSmbUsers(layout.conf)) {
        if (!names.includes(old)) {
          await deleteSmbUser(layout.conf, old);
          log.info(`removed the Samba user ${old} (no longer given with --user)`);
        }
      }
    })();
    const [m, u] = await Promise.allSettled([mounting, addingUsers]);
    if (m.status === 'fulfilled') ownMount = m.value;
    if (m.status === 'rejected') throw m.reason;
    if (u.status === 'rejected') throw u.reason;
    if (stopReason) return;

    // The share root: writable by the share's users unless someone already chose its group.
    const st = await fs.promises.stat(mountpoint);
    if (st.gid === 0) {
      const gid = await groupId(SHARE_GROUP);
      await fs.promises.chown(mountpoint, st.uid, gid);
      await fs.promises.chmod(mountpoint, (st.mode & 0o7777) | 0o2070);
      log.info(`the share root now belongs to group ${SHARE_GROUP}, mode g+rwxs, so every share user can create files in it`, { mountpoint });
    }
    if (stopReason) return;

    const host = clientAddress(listen);
    let aclNoteShown = false;
    const info = await buildInfo(tools.smbd);
    smbd = await Smbd.start({
      smbd: tools.smbd,
      conf: layout.conf,
      stdinFifo: path.join(layout.root, 'smbd.stdin'),
      host,
      port: opts.port,
      onLine: (line) => {
        // Silt has no POSIX ACLs: Samba then maps ACLs to mode bits, but says so on every create.
        if (/sys_acl_set_(file|fd).*Operation not supported/.test(line)) {
          if (aclNoteShown) return;
          aclNoteShown = true;
          log.info('Silt stores no POSIX ACLs: Samba keeps Windows ACLs in security.NTACL and maps them to mode bits (its "Operation not supported" lines about sys_acl_set are hidden)');
          return;
        }
        process.stderr.write(`smbd: ${line}\n`);
      },
    });
    const where = listensEverywhere(listen) ? `port ${opts.port} on every interface` : `${listen}:${opts.port}`;
    const portArg = opts.port === 445 ? '' : ` -p ${opts.port}`;
    const u0 = names[0]!;
    process.stdout.write(
      `silt smb: share \\\\${listensEverywhere(listen) ? os.hostname() : host}\\${opts.share} is ready ` +
        `(smbd ${info.version}, ${where}; volume ${opts.volume} of ${opts.store} at ${mountpoint})\n` +
        `  Linux:   smbclient //${host}/${opts.share}${portArg} -U ${u0}\n` +
        `  macOS:   Finder > Go > Connect to Server: smb://${u0}@${host}${opts.port === 445 ? '' : `:${opts.port}`}/${opts.share}\n` +
        `  Windows: net use S: \\\\${host}\\${opts.share} /user:${u0}${opts.port === 445 ? '' : '   (Windows clients need port 445)'}\n` +
        `  Stop:    Ctrl-C (stops smbd, commits and unmounts)\n`,
    );
    opts.onReady?.({ mountpoint, host, port: opts.port, smbdPid: smbd.pid });

    // Serve until a stop request, smbd's exit, or the death of the mount's server (smbd would
    // then answer every request with an error: better to stop loudly).
    const { pidFile, logFile } = await import('./mount.ts');
    const serverPid = readPidInfo(pidFile(mountpoint))?.pid;
    let watch: NodeJS.Timeout | undefined;
    const serverDied = new Promise<'server'>((resolve) => {
      if (serverPid === undefined) return;
      watch = setInterval(() => {
        if (!processAlive(serverPid)) resolve('server');
      }, 1000);
    });
    const ended = await Promise.race([stopped.then(() => 'stop' as const), smbd.exited, serverDied]);
    clearInterval(watch);
    if (ended === 'server') {
      failure = new CliError(`the Silt mount server (pid ${serverPid}) died; stopping the share. Its log: ${logFile(mountpoint)}`);
    } else if (ended !== 'stop') {
      failure = new CliError(`smbd exited unexpectedly (${ended.signal ?? `code ${ended.code}`}). Its last output:\n${smbd.tail()}`);
    }
  } catch (e) {
    failure = e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    // A signal during cleanup must not kill us half way: keep a handler that only logs.
    const late = (sig: NodeJS.Signals): void => log.warn(`${sig} during shutdown: still committing, please wait`);
    process.on('SIGINT', late);
    process.on('SIGTERM', late);
    try {
      if (smbd) {
        const e = await smbd.stop();
        log.info('smbd stopped', { code: e.code, signal: e.signal });
      }
      if (ownMount) await unmountWithRetry(mountpoint, log);
    } catch (e) {
      failure ??= e;
    } finally {
      process.off('SIGINT', late);
      process.off('SIGTERM', late);
    }
  }
  if (failure !== undefined) throw failure;
}

/** smbd enters the share as each user: every existing directory above it must be searchable by them. */
function checkReachable(mountpoint: string): void {
  for (let d = path.dirname(mountpoint); ; d = path.dirname(d)) {
    const st = fs.statSync(d, { throwIfNoEntry: false });
    if (st && (st.mode & 0o001) === 0) {
      throw new CliError(
        `share users cannot reach ${mountpoint}: ${d} is mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')} ` +
          `(run chmod o+x ${d}, or choose a --state or --mount elsewhere)`,
      );
    }
    if (d === path.dirname(d)) break;
  }
}

async function unmountWithRetry(mountpoint: string, log: Logger): Promise<void> {
  const { runUmount } = await import('./mount.ts');
  for (let i = 0; ; i++) {
    try {
      await runUmount(mountpoint, { logger: log });
      log.info('committed and unmounted', { mountpoint });
      return;
    } catch (e) {
      const msg = (e as Error).message;
      if (/is not mounted/.test(msg)) return;
      if (i >= 40 || !/busy/i.test(msg)) {
        throw new CliError(`${msg} (the volume is still mounted; run 'silt umount ${mountpoint}' once nothing uses it)`);
      }
      if (i === 0) log.info('the mount is still busy; retrying', { mountpoint });
      await sleep(250);
    }
  }
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface SmbFlags {
  store: string;
  volume: string;
  share: string;
  port: string;
  listen?: string;
  user: string[];
  readOnly: string[];
  mount?: string;
  state?: string;
  mkfs: boolean;
  flushIntervalMs?: string;
  vfsObjects: string;
  smbOption: string[];
  smbLogLevel?: string;
  logLevel?: string;
}

function wholeNumber(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`${flag} must be a whole number from ${min} to ${max}, not ${v}`);
  return n;
}

export function registerSmbCommand(program: Command): void {
  program
    .command('smb')
    .description('share a volume over SMB: mount it (sync-on-close) and run the Debian smbd over the mount; Ctrl-C stops both')
    .addOption(new Option('-s, --store <url>', 'object store URL').default(process.env['SILT_STORE'] ?? DEFAULT_STORE))
    .addOption(new Option('-v, --volume <name>', 'volume name').default(process.env['SILT_VOLUME'] ?? DEFAULT_VOLUME))
    .requiredOption('--share <name>', 'SMB share name (what clients connect to)')
    .option('--port <port>', 'TCP port (Windows clients only use 445)', '445')
    .option('--listen <addr>', 'address or interface to listen on (default: every interface)')
    .option('--user <name:password>', 'a Samba user, repeatable (NAME alone reads $SILT_SMB_PASSWORD_<NAME>)', collect, [])
    .option('--read-only <name>', 'this --user may only read, repeatable', collect, [])
    .option('--mount <dir>', 'share this directory: an existing Silt mount is used as it is, otherwise the volume is mounted here')
    .option('--state <dir>', 'smb.conf and all Samba state (default /var/lib/silt/smb/<share>)')
    .option('--mkfs', 'create the volume first if it does not exist', false)
    .option('--flush-interval-ms <ms>', 'commit dirty state at least this often (default 1000)')
    .option('--vfs-objects <list>', 'Samba VFS modules of the share', DEFAULT_VFS_OBJECTS)
    .option('--smb-option <name=value>', 'an extra smb.conf share parameter, repeatable (it wins over Silt\'s choice)', collect, [])
    .option('--smb-log-level <n>', 'smbd debug level, 0-10 (default 1)')
    .option('--log-level <level>', 'debug, info, warn or error')
    .addHelpText(
      'after',
      `
Example:
  silt smb --store file:/srv/silt --mkfs --share files --user alice:secret --user bob:pw --read-only bob
  smbclient //127.0.0.1/files -U alice%secret -c 'put report.pdf; ls'

Runs as root. Samba users are system users (created when missing, without home or login shell);
files they create are owned by them. Everything Samba writes stays under --state. See docs/SMB.md.`,
    )
    .action(async (o: SmbFlags) => {
      let users: SmbUser[];
      try {
        users = o.user.map((s) => parseUserSpec(s));
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const bad = invalidShareName(o.share);
      if (bad) throw new CliError(bad);
      await runSmb({
        store: o.store,
        volume: o.volume,
        share: o.share,
        port: wholeNumber('--port', o.port, 1, 65535),
        listen: o.listen,
        users,
        readOnly: o.readOnly,
        mount: o.mount,
        stateDir: o.state ?? path.join('/var/lib/silt/smb', o.share),
        mkfs: o.mkfs,
        flushIntervalMs: o.flushIntervalMs === undefined ? undefined : wholeNumber('--flush-interval-ms', o.flushIntervalMs, 0, 3_600_000),
        vfsObjects: o.vfsObjects.split(/[\s,]+/).filter(Boolean),
        smbOptions: o.smbOption.map((x) => {
          try {
            return parseSmbOption(x);
          } catch (e) {
            throw new CliError((e as Error).message);
          }
        }),
        smbLogLevel: o.smbLogLevel === undefined ? undefined : wholeNumber('--smb-log-level', o.smbLogLevel, 0, 10),
        logger: makeLogger(o.logLevel),
      });
    });
}
