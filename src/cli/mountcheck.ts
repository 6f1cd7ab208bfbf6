/**
 * What `silt mount` checks before it starts a server, so a mistake is one line naming the fix
 * instead of a failure deep in mount(8) or in a background server's log: /dev/fuse present and
 * usable, the right to mount, and a mountpoint that is a directory, not mounted, and empty.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError } from './common.ts';

export interface MountCheckOptions {
  /** Allow a mountpoint holding files (hidden while mounted). */
  nonEmpty: boolean;
  /** The FUSE device (tests point it elsewhere). */
  device?: string;
  /** /proc/self/status text (tests). */
  procStatus?: string;
}

/** CAP_SYS_ADMIN (bit 21 of CapEff): what mount(2) of a FUSE file system needs. */
function hasSysAdmin(status: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) return false;
  return (BigInt('0x' + m[1]!) & (1n << 21n)) !== 0n;
}

export async function checkCanMount(mountpoint: string, o: MountCheckOptions): Promise<void> {
  const device = o.device ?? '/dev/fuse';
  if (!fs.existsSync(device)) {
    throw new CliError(
      `no ${device}: this machine has no FUSE device. Install fuse3 and load the module (modprobe fuse); ` +
        `in a container, start it with --device /dev/fuse --cap-add SYS_ADMIN`,
    );
  }
  try {
    fs.accessSync(device, fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    throw new CliError(
      `no permission to open ${device} (${(e as NodeJS.ErrnoException).code ?? 'error'}): run silt mount as root (sudo), ` +
        `or give this user read/write access to ${device}`,
    );
  }
  let status = o.procStatus;
  if (status === undefined) {
    try {
      status = fs.readFileSync('/proc/self/status', 'utf8');
    } catch {
      status = undefined; // not Linux /proc: let mount(8) decide
    }
  }
  if (status !== undefined && process.getuid?.() !== 0 && !hasSysAdmin(status)) {
    throw new CliError(
      `no permission to mount: silt mount calls mount(8), which needs root (CAP_SYS_ADMIN) and this process ` +
        `runs as uid ${process.getuid?.()} without it. Run it as root (sudo silt mount ...), or use silt serve and ` +
        `mount from a machine where you are root`,
    );
  }
  const abs = path.resolve(mountpoint);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // created by the mount
    if (code === 'ENOTCONN' || code === 'EIO') return; // a dead FUSE mount: runMount cleans it
    throw new CliError(`cannot use mountpoint ${abs}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new CliError(`mountpoint ${abs} is not a directory: mount on an empty directory`);
  if (o.nonEmpty) return;
  let entries: string[];
  try {
    entries = fs.readdirSync(abs);
  } catch {
    return; // unreadable (a stale or foreign mount): runMount says what it is
  }
  if (entries.length === 0) return;
  if (isMountPoint(abs)) return; // runMount reports a live mount as busy ("already mounted")
  const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, ... (${entries.length} entries)` : '');
  throw new CliError(
    `mountpoint ${abs} is not empty (it holds ${shown}): mount on an empty directory, or pass --non-empty ` +
      `to hide those files while the volume is mounted`,
  );
}

/** Whether `abs` is the target of a mount in /proc/self/mountinfo. */
function isMountPoint(abs: string): boolean {
  try {
    const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    return info.split('\n').some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === abs);
  } catch {
    return false;
  }
}
