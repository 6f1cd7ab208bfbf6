/**
 * Test helpers for `silt smb`: install Samba's Debian packages (through scripts/ensure-packages.sh;
 * a failure fails the test loudly), start `silt smb` as a child process and wait for its banner,
 * run smbclient and Debian's python3 with libsmbclient (python3-smbc), and remove the system users
 * a test made. Nothing here blocks the test runner's event loop on the mount: every tool runs as
 * a child process, and the mount is served by `silt smb`'s own background mount server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidFile } from '../../src/cli/mount.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const siltBin = path.join(repoRoot, 'bin', 'silt.mjs');
/** Debian's python (python3-smbc is installed for it, not for a pyenv python on $PATH). */
export const debianPython = '/usr/bin/python3';

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a program asynchronously; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ShResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export function sh(cmd: string, opts: Parameters<typeof run>[2] = {}): Promise<ShResult> {
  return run('bash', ['-c', cmd], opts);
}

export async function shOk(cmd: string, opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${cmd}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** samba-testsuite brings smbtorture (the SMB2 byte-range lock cases). */
export const SAMBA_PACKAGES = ['samba', 'samba-vfs-modules', 'smbclient', 'python3-smbc', 'samba-testsuite', 'attr'];

let sambaReady: Promise<void> | undefined;

/** Install the Samba packages the tests use when missing; throws with the installer's output otherwise. */
export function ensureSamba(): Promise<void> {
  sambaReady ??= (async () => {
    const r = await run('bash', [path.join(repoRoot, 'scripts', 'ensure-packages.sh'), ...SAMBA_PACKAGES], { timeoutMs: 10 * 60_000 });
    if (r.code !== 0) {
      sambaReady = undefined;
      throw new Error(`scripts/ensure-packages.sh ${SAMBA_PACKAGES.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    }
  })();
  return sambaReady;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ShareUser {
  name: string;
  password: string;
  readOnly?: boolean;
}

export interface SiltSmbOptions {
  /** A fresh directory: the store is DIR/store unless `store` is given, Samba state DIR/state. */
  dir: string;
  share: string;
  users: ShareUser[];
  store?: string;
  /** Extra environment for the silt process (store credentials). */
  env?: NodeJS.ProcessEnv;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

export interface SiltSmb {
  readonly store: string;
  readonly stateDir: string;
  readonly mountpoint: string;
  readonly port: number;
  readonly share: string;
  readonly proc: ChildProcess;
  /** Everything silt smb printed so far (stdout and stderr). */
  log(): string;
  readonly exited: Promise<number | string>;
  /** The pid of the FUSE server behind the mount. */
  mountServerPid(): number | undefined;
  /** SIGTERM; resolves with the exit code once silt smb stopped smbd, committed and unmounted. */
  stop(): Promise<number | string>;
  /** smbclient against the share as `user` (a name from the options, or any name%password). */
  smbclient(user: string, commands: string, opts?: { timeoutMs?: number; cwd?: string }): Promise<ShResult>;
}

export async function startSiltSmb(o: SiltSmbOptions): Promise<SiltSmb> {
  const port = await freePort();
  const store = o.store ?? `file:${path.join(o.dir, 'store')}`;
  const stateDir = path.join(o.dir, 'state');
  const args = [siltBin, 'smb', '--store', store, '--mkfs', '--share', o.share, '--port', String(port), '--listen', '127.0.0.1', '--state', stateDir];
  for (const u of o.users) {
    args.push('--user', `${u.name}:${u.password}`);
    if (u.readOnly) args.push('--read-only', u.name);
  }
  args.push(...(o.extraArgs ?? []));
  const proc = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`silt smb was not ready in time; its output:\n${log}`));
    }, o.readyTimeoutMs ?? 90_000);
    const onData = (): void => {
      if (log.includes(' is ready ')) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`silt smb exited (${c}) before it was ready; its output:\n${log}`));
    });
  });
  const mountpoint = path.join(stateDir, 'mnt');
  const passwords = new Map(o.users.map((u) => [u.name, u.password]));
  return {
    store,
    stateDir,
    mountpoint,
    port,
    share: o.share,
    proc,
    log: () => log,
    exited,
    mountServerPid() {
      try {
        return (JSON.parse(fs.readFileSync(pidFile(mountpoint), 'utf8')) as { pid: number }).pid;
      } catch {
        return undefined;
      }
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 120_000);
      const c = await exited;
      clearTimeout(t);
      return c;
    },
    smbclient(user, commands, opts = {}) {
      const cred = user.includes('%') ? user : `${user}%${passwords.get(user) ?? ''}`;
      return run('smbclient', [`//127.0.0.1/${o.share}`, '-p', String(port), '-U', cred, '-c', commands], { timeoutMs: opts.timeoutMs ?? 120_000, ...(opts.cwd && { cwd: opts.cwd }) });
    },
  };
}

/** Names of `names` that are system users now. */
export async function existingUsers(names: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const n of names) if ((await run('getent', ['passwd', n])).code === 0) out.add(n);
  return out;
}

/** Delete the system users of `names` that did not exist before (`before`). */
export async function removeUsersCreated(names: readonly string[], before: Set<string>): Promise<void> {
  for (const n of names) {
    if (before.has(n)) continue;
    await run('userdel', [n]);
  }
}

/** Lines of smbclient's `ls` output naming files (not . and ..), as names. */
export function lsNames(out: string): string[] {
  const names: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^ {2}(.+?)\s+([A-Z]*)\s+(\d+)\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.exec(line);
    if (m && m[1] !== '.' && m[1] !== '..') names.push(m[1]!);
  }
  return names;
}

/** Deterministic pseudo-random bytes (xorshift), fast enough for hundreds of MiB. */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < n; i++) b[i] = i & 0xff;
  return b;
}
