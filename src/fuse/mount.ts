/**
 * Mounting and unmounting without libfuse: open /dev/fuse, hand the descriptor to
 * `mount -i -t fuse.silt -o fd=3,...` as its fd 3 (mount(8) passes "fd=3" to mount(2), which
 * resolves it in mount's own process), and later `umount`. Every child process is spawned
 * asynchronously: a serving process must never block its event loop on something that touches the
 * mount (umount stats the mountpoint and waits for a GETATTR only this loop can answer).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MountOptions {
  /** Shown as the source in /proc/mounts and df. Default "silt". */
  fsname?: string;
  /** Let other users (and Samba) in. Default true. */
  allowOther?: boolean;
  /** The kernel checks permissions from the attributes we return. Default true. */
  defaultPermissions?: boolean;
  /** Extra comma-separated mount options. */
  extraOptions?: string[];
}

export interface MountInfo {
  mountId: number;
  /** major:minor of the mount's anonymous device (the bdi name in /sys/class/bdi). */
  device: string;
  mountpoint: string;
  fstype: string;
  source: string;
}

/** Run a command without blocking the event loop; resolves with exit code and output. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { stdio3?: number; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (opts.stdio3 !== undefined) stdio.push(opts.stdio3);
    const child = spawn(cmd, args, { stdio });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts listed in /proc/self/mountinfo (reading it never touches a FUSE mount). */
export function listMounts(): MountInfo[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    out.push({
      mountId: Number(l[0]),
      device: l[2] ?? '',
      mountpoint: unescapeMountinfo(l[4] ?? ''),
      fstype: r[0] ?? '',
      source: unescapeMountinfo(r[1] ?? ''),
    });
  }
  return out;
}

/** The topmost mount at exactly `mountpoint`, if any. */
export function findMount(mountpoint: string): MountInfo | undefined {
  const abs = path.resolve(mountpoint);
  const all = listMounts().filter((m) => m.mountpoint === abs);
  return all[all.length - 1];
}

/** Open /dev/fuse and mount it at `mountpoint`; returns the device descriptor to serve. */
export async function mountFuse(mountpoint: string, opts: MountOptions = {}): Promise<number> {
  const abs = path.resolve(mountpoint);
  const fd = fs.openSync('/dev/fuse', 'r+');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const o = [`fd=3`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`];
  if (opts.allowOther ?? true) o.push('allow_other');
  if (opts.defaultPermissions ?? true) o.push('default_permissions');
  o.push(...(opts.extraOptions ?? []));
  try {
    const r = await run('mount', ['-i', '-t', 'fuse.silt', '-o', o.join(','), opts.fsname ?? 'silt', abs], { stdio3: fd });
    if (r.code !== 0) throw new Error(`mount ${abs} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * Unmount. `lazy` detaches at once even if busy (umount -l). Resolves true when it was unmounted
 * (or was not mounted), false with the reason when umount refused (busy).
 */
export async function unmountFuse(mountpoint: string, opts: { lazy?: boolean } = {}): Promise<{ ok: boolean; message: string }> {
  const abs = path.resolve(mountpoint);
  if (!findMount(abs)) return { ok: true, message: 'not mounted' };
  const r = await run('umount', opts.lazy ? ['-l', abs] : [abs], { timeoutMs: 60_000 });
  if (r.code === 0) return { ok: true, message: '' };
  return { ok: false, message: (r.stderr || r.stdout).trim() };
}

/**
 * Raise the kernel read-ahead of a FUSE mount (its bdi), so sequential READs arrive as large as
 * max_pages allows instead of 128 KiB. Best effort.
 */
export function setReadAhead(mountpoint: string, kib: number): boolean {
  const m = findMount(mountpoint);
  if (!m) return false;
  try {
    fs.writeFileSync(`/sys/class/bdi/${m.device}/read_ahead_kb`, String(kib));
    return true;
  } catch {
    return false;
  }
}

/** stat with a timeout (a hung FUSE server makes stat hang). */
export function statWithTimeout(p: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ ok: false, code: 'ETIMEDOUT' }), timeoutMs);
    fs.promises.stat(p).then(
      () => {
        clearTimeout(t);
        resolve({ ok: true });
      },
      (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve({ ok: false, code: e.code ?? 'EIO' });
      },
    );
  });
}

/**
 * Does a FUSE mount answer? Looks up a name that cannot be in the kernel's caches (a stat of the
 * mountpoint itself may be answered from cached attributes for a while after the server died).
 * 'live': the server answered; 'stale': ENOTCONN/ECONNABORTED (server gone); 'hung': no answer.
 */
export async function probeMount(mountpoint: string, timeoutMs = 3000): Promise<'live' | 'stale' | 'hung'> {
  const probe = path.join(path.resolve(mountpoint), `.silt-probe-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const st = await statWithTimeout(probe, timeoutMs);
  if (st.ok) return 'live';
  if (st.code === 'ENOTCONN' || st.code === 'ECONNABORTED') return 'stale';
  if (st.code === 'ETIMEDOUT') return 'hung';
  return 'live'; // ENOENT (the usual answer), EACCES, ...: someone answered
}

/**
 * A mount left by a killed server answers "Transport endpoint is not connected" (ENOTCONN); a
 * plain umount clears it. Returns what it found: 'none', 'cleaned', or 'live' (someone serves it,
 * or it hangs: we do not unmount a server that may only be slow).
 */
export async function cleanStaleMount(mountpoint: string): Promise<'none' | 'cleaned' | 'live'> {
  const abs = path.resolve(mountpoint);
  const m = findMount(abs);
  if (!m) return 'none';
  if (!m.fstype.startsWith('fuse')) return 'live';
  if ((await probeMount(abs)) !== 'stale') return 'live';
  let r = await unmountFuse(abs);
  if (!r.ok) r = await unmountFuse(abs, { lazy: true });
  if (!r.ok) throw new Error(`cannot clean stale mount at ${abs}: ${r.message}`);
  return 'cleaned';
}

/** Abort a FUSE connection through /sys/fs/fuse/connections (the server is wedged). */
export function abortConnection(mountpoint: string): boolean {
  const m = findMount(mountpoint);
  if (!m) return false;
  const minor = m.device.split(':')[1];
  try {
    fs.writeFileSync(`/sys/fs/fuse/connections/${minor}/abort`, '1');
    return true;
  } catch {
    return false;
  }
}
