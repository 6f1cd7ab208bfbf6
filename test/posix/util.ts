/**
 * Helpers for the POSIX case table: running shell tools and small Python snippets (for calls Node
 * lacks: renameat2, SEEK_DATA/SEEK_HOLE, fcntl locks, xattr flags, mmap) without blocking the
 * event loop, and comparing trees.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the child may exit without reading
      child.stdin!.end(opts.input);
    }
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

/** bash -c; throws unless exit 0; returns stdout. */
export async function sh(cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await run('bash', ['-c', cmd], opts);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${cmd}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** bash -c; returns the result whatever the exit code. */
export function shTry(cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('bash', ['-c', cmd], opts);
}

/** Single-quote for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Run a Python 3 program (argv after the script in sys.argv[1:]); throws unless exit 0. */
export async function py(program: string, args: readonly string[] = [], timeoutMs = 60_000): Promise<string> {
  const r = await run(PY, ['-c', program, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`python exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Start a Python program in the background; resolves its result when it exits. */
export function pySpawn(program: string, args: readonly string[] = []): { done: Promise<RunResult>; pid: number; output: () => string } {
  const child = spawn(PY, ['-u', '-c', program, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  return { done, pid: child.pid!, output: () => stdout };
}

/** Run as an unprivileged user (nobody/nogroup), optionally with supplementary groups. */
export function asNobody(cmd: string, groups: readonly number[] = []): Promise<RunResult> {
  const g = groups.length ? `--groups ${groups.join(',')}` : '--clear-groups';
  return run('setpriv', ['--reuid', '65534', '--regid', '65534', ...g.split(' '), 'bash', '-c', cmd]);
}

/** A listing of a tree with what cp -a / tar must preserve: path, type, mode, size, mtime, link target. */
export async function treeListing(root: string): Promise<string> {
  // %T@ is mtime with fractions; symlink mtimes are not compared (not all tools set them).
  // Directory sizes are file-system specific (ext4 says 4096, Silt the entry count): not compared.
  const out = await sh(
    `cd ${q(root)} && find . \\( -type d -printf '%P %y %m -|' -o -printf '%P %y %m %s %l|' \\) -a \\( -type l -printf '-\\n' -o -printf '%T@\\n' \\) | LC_ALL=C sort`,
  );
  return out;
}

export async function sha256(file: string): Promise<string> {
  return (await sh(`sha256sum ${q(file)}`)).split(' ')[0] ?? '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
