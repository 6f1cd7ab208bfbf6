/** Run a helper program asynchronously (never spawnSync: the caller may also serve a FUSE mount). */
import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd args`, feeding `input` on stdin; resolves with exit code and output, never throws for a non-zero exit. */
export function exec(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the program may exit without reading it all
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
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

/** Like exec, but throws with the program's output unless it exits 0. */
export async function execOk(cmd: string, args: readonly string[], opts: Parameters<typeof exec>[2] = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) {
    const out = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code})${out ? `: ${out}` : ''}`);
  }
  return r.stdout;
}
