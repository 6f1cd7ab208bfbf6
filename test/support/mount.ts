/**
 * Test helpers for real FUSE mounts: start a server in a child process (never in the test runner,
 * which makes blocking calls on the mount), stop it cleanly or kill -9 it, run shell tools without
 * blocking the runner's event loop, and install missing Debian tools (or fail loudly).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
const serverScript = path.join(here, 'mount-server.ts');

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `bash -c cmd` asynchronously. */
export function sh(cmd: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', cmd], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
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
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}

/** Run a shell command; throw with its output unless it exits 0. Returns stdout. */
export async function shOk(cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${cmd}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Single-quote a string for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The tools the POSIX cases use, by command -> Debian package. */
const TOOLS: Record<string, string> = {
  setfattr: 'attr',
  getfattr: 'attr',
  flock: 'util-linux',
  setpriv: 'util-linux',
  fallocate: 'util-linux',
  tar: 'tar',
  diff: 'diffutils',
  sha256sum: 'coreutils',
  python3: 'python3',
};

let toolsReady: Promise<void> | undefined;

/** Install missing tools with apt-get; throws (failing the test loudly) if that does not work. */
export function ensureTools(): Promise<void> {
  toolsReady ??= (async () => {
    const missing = new Set<string>();
    for (const [cmd, pkg] of Object.entries(TOOLS)) {
      if ((await sh(`command -v ${cmd}`)).code !== 0) missing.add(pkg);
    }
    if (missing.size === 0) return;
    const pkgs = [...missing].join(' ');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await sh(`apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 ${pkgs}`, { env, timeoutMs: 300_000 });
    if (r.code !== 0) {
      await sh('apt-get update -o DPkg::Lock::Timeout=120', { env, timeoutMs: 300_000 });
      r = await sh(`apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 ${pkgs}`, { env, timeoutMs: 300_000 });
    }
    if (r.code !== 0) throw new Error(`the FUSE tests need ${pkgs}; apt-get install failed:\n${r.stderr}`);
  })();
  return toolsReady;
}

/** Preconditions of a real mount: root and /dev/fuse. Returns a reason to skip, or undefined. */
export function fuseUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'FUSE tests need root (mount -i)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  return undefined;
}

/** A fresh directory under the system temp dir, traversable by other users (mounts go inside). */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755);
  return d;
}

export interface ServerOptions {
  mountpoint: string;
  /** Store URL (file:PATH). Required for the real engine. */
  store?: string;
  volume?: string;
  mkfs?: boolean;
  syncOnClose?: boolean;
  flushIntervalMs?: number;
  /** 'silt' = the real engine through runMount (default). 'devfs' = the development double. */
  engine?: 'silt' | 'devfs';
  /** How long to wait for READY. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface ServerHandle {
  readonly mountpoint: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything the server wrote to stdout and stderr so far. */
  log(): string;
  /** Resolves with the exit code (or signal name) once the process exits. */
  readonly exited: Promise<number | string>;
  /** umount the mountpoint (as `silt umount` does) and wait for the server to commit and exit. */
  unmount(): Promise<void>;
  /** SIGTERM: the server unmounts, commits and exits. */
  stop(): Promise<void>;
  /** kill -9: leaves a stale mount behind. */
  kill9(): Promise<void>;
  /** The server's STATS (SIGUSR1): INIT results, requests by opcode, sizes, handles. */
  stats(): Promise<ServerStats>;
  /** Run engine-side commands behind the kernel's back, with invalidation (SIGUSR2). */
  control(cmds: ReadonlyArray<{ op: 'write' | 'create'; path: string; text: string }>): Promise<void>;
}

export interface ServerStats {
  connection: { minor: number; flags: number; maxWriteBytes: number; maxPages: number; maxReadaheadBytes: number };
  counts: Record<string, number>;
  sizes: { maxWriteBytes: number; maxReadBytes: number };
  lookups: number;
  openHandles: number;
  pending: number;
}

/** Start a FUSE server child process and wait until its mount answers. */
export async function startServer(opts: ServerOptions): Promise<ServerHandle> {
  try {
    fs.mkdirSync(opts.mountpoint, { recursive: true });
  } catch (e) {
    // A stale mount (killed server) answers ENOTCONN; the server cleans it up.
    if ((e as NodeJS.ErrnoException).code !== 'ENOTCONN') throw e;
  }
  const args = ['--import', 'tsx', serverScript, '--mountpoint', opts.mountpoint, '--engine', opts.engine ?? 'silt'];
  if (opts.store) args.push('--store', opts.store);
  if (opts.volume) args.push('--volume', opts.volume);
  if (opts.mkfs) args.push('--mkfs');
  if (opts.syncOnClose) args.push('--sync-on-close');
  if (opts.flushIntervalMs !== undefined) args.push('--flush-interval-ms', String(opts.flushIntervalMs));
  const controlFile = path.join(os.tmpdir(), `silt-control-${process.pid}-${path.basename(opts.mountpoint)}-${Date.now()}.json`);
  const env = { ...process.env, SILT_TEST_CONTROL: controlFile };
  const proc = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready in time:\n${log}`)), opts.readyTimeoutMs ?? 30_000);
    const onData = (): void => {
      if (log.includes('READY ')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${c}) before it was ready:\n${log}`));
    });
  });
  const handle: ServerHandle = {
    mountpoint: opts.mountpoint,
    proc,
    pid: proc.pid!,
    log: () => log,
    exited,
    async unmount() {
      let r = await sh(`umount ${q(opts.mountpoint)}`);
      for (let i = 0; r.code !== 0 && i < 50; i++) {
        // Busy for a moment after a test's last close (release is asynchronous): retry.
        await new Promise((res) => setTimeout(res, 100));
        r = await sh(`umount ${q(opts.mountpoint)}`);
      }
      if (r.code !== 0) throw new Error(`umount failed: ${r.stderr}`);
      const c = await withTimeout(exited, 60_000, 'server exit after umount');
      if (c !== 0) throw new Error(`server exited with ${c}:\n${log}`);
    },
    async stop() {
      proc.kill('SIGTERM');
      const c = await withTimeout(exited, 60_000, 'server exit after SIGTERM');
      if (c !== 0) throw new Error(`server exited with ${c}:\n${log}`);
    },
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    async stats() {
      const mark = log.length;
      proc.kill('SIGUSR1');
      for (let i = 0; i < 200; i++) {
        const m = /STATS (.*)\n/.exec(log.slice(mark));
        if (m?.[1]) return JSON.parse(m[1]) as ServerStats;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no STATS from the server:\n${log.slice(mark)}`);
    },
    async control(cmds) {
      fs.writeFileSync(controlFile, JSON.stringify(cmds));
      const mark = log.length;
      proc.kill('SIGUSR2');
      for (let i = 0; i < 400; i++) {
        const m = /CONTROL (.*)\n/.exec(log.slice(mark));
        if (m?.[1]) {
          if (m[1] !== 'done') throw new Error(`control failed: ${m[1]}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no CONTROL answer from the server:\n${log.slice(mark)}`);
    },
  };
  return handle;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Make sure nothing is left mounted at `mountpoint` (after a failed test). */
export async function forceUnmount(mountpoint: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await sh(`grep -q " ${mountpoint} " /proc/self/mountinfo && umount -l ${q(mountpoint)}`);
    if (r.code !== 0) return;
  }
}
