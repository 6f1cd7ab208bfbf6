/**
 * Finding the Debian Samba programs and supervising one smbd.
 *
 * smbd runs in the foreground (`--foreground --no-process-group --debug-stdout -s CONF`) as the
 * leader of its own process group (the per-connection smbd children, smbd-notifyd and
 * samba-dcerpcd join it), so stop() reaches all of them with one signal, and a Ctrl-C on the
 * terminal reaches only `silt smb`, which stops things in order. Its stdin is the read end of a
 * FIFO whose only writer is `silt smb`: smbd in the foreground exits when stdin reaches EOF, so if
 * `silt smb` dies (even kill -9) smbd follows instead of serving a mount nobody supervises. (Not
 * a Node 'pipe': Node's stdio pipes are socketpairs, and smbd takes a socket on fd 0 for an inetd
 * client connection; it then fails and terminates itself.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { exec } from './exec.ts';

export interface SambaTools {
  smbd: string;
  smbpasswd: string;
  pdbedit: string;
}

/** Where a program is: $PATH, then the sbin directories a non-login root shell may lack. */
export function which(prog: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, prog);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The Samba programs, or an error naming the Debian packages to install. Installs nothing. */
export function findSamba(): SambaTools {
  const smbd = which('smbd');
  const smbpasswd = which('smbpasswd');
  const pdbedit = which('pdbedit');
  const missing: string[] = [];
  if (!smbd || !pdbedit) missing.push('samba');
  if (!smbpasswd) missing.push('samba-common-bin');
  if (missing.length > 0) {
    throw new Error(
      `Samba is not installed (no ${[!smbd && 'smbd', !smbpasswd && 'smbpasswd', !pdbedit && 'pdbedit'].filter(Boolean).join(', ')}). ` +
        `Install the Debian package${missing.length > 1 ? 's' : ''}: apt-get install ${missing.join(' ')} samba-vfs-modules`,
    );
  }
  return { smbd: smbd!, smbpasswd: smbpasswd!, pdbedit: pdbedit! };
}

/** `smbd -b`: the modules directory and the modules built into smbd. */
export async function buildInfo(smbd: string): Promise<{ modulesDir: string; builtin: Set<string>; version: string }> {
  const r = await exec(smbd, ['-b']);
  const out = r.stdout;
  const modulesDir = /MODULESDIR:\s*(\S+)/.exec(out)?.[1] ?? '/usr/lib/x86_64-linux-gnu/samba';
  const builtinLine = /Builtin modules:\s*\n\s*(.*)/.exec(out)?.[1] ?? '';
  const builtin = new Set(builtinLine.split(/\s+/).filter(Boolean));
  const v = await exec(smbd, ['--version']);
  return { modulesDir, builtin, version: v.stdout.trim().replace(/^Version\s+/, '') };
}

/** The VFS modules of `wanted` that this smbd cannot load. */
export async function missingVfsModules(smbd: string, wanted: readonly string[]): Promise<string[]> {
  const info = await buildInfo(smbd);
  return wanted.filter((m) => !info.builtin.has(`vfs_${m}`) && !fs.existsSync(path.join(info.modulesDir, 'vfs', `${m}.so`)));
}

/** Resolves true once a TCP connection to host:port succeeds. */
export function canConnect(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Whether we could listen on addr:port right now (nobody else has it). */
export function portFree(addr: string | undefined, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'EADDRINUSE' && e.code !== 'EACCES'));
    srv.listen({ port, host: addr, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export interface SmbdOptions {
  smbd: string;
  conf: string;
  /** Path for the FIFO that becomes smbd's stdin (created; replaced if it exists). */
  stdinFifo: string;
  /** Where to probe for readiness. */
  host: string;
  port: number;
  /** Every line smbd prints. */
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
}

export interface SmbdExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Smbd {
  private readonly lines: string[] = [];
  private exit: SmbdExit | undefined;
  readonly exited: Promise<SmbdExit>;

  private constructor(
    private readonly proc: ChildProcess,
    private stdinWriter: number | undefined,
    opts: SmbdOptions,
  ) {
    const add = (line: string): void => {
      this.lines.push(line);
      if (this.lines.length > 400) this.lines.splice(0, this.lines.length - 400);
      opts.onLine?.(line);
    };
    createInterface({ input: proc.stdout! }).on('line', add);
    createInterface({ input: proc.stderr! }).on('line', add);
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.closeStdin();
        this.exit = { code, signal };
        resolve(this.exit);
      });
      proc.on('error', (e) => {
        add(`cannot run ${opts.smbd}: ${e.message}`);
        this.exit = { code: 127, signal: null };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last lines smbd printed. */
  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Start smbd and resolve once it accepts connections; rejects (with smbd's output) if it exits or never listens. */
  static async start(opts: SmbdOptions): Promise<Smbd> {
    await fs.promises.rm(opts.stdinFifo, { force: true });
    const mk = await exec('mkfifo', ['-m', '600', opts.stdinFifo]);
    if (mk.code !== 0) throw new Error(`mkfifo ${opts.stdinFifo} failed: ${mk.stderr.trim()}`);
    // Non-blocking open of the read end first, so opening the write end does not wait.
    const reader = fs.openSync(opts.stdinFifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    let writer: number;
    let proc: ChildProcess;
    try {
      writer = fs.openSync(opts.stdinFifo, fs.constants.O_WRONLY);
      proc = spawn(opts.smbd, ['--foreground', '--no-process-group', '--debug-stdout', '-s', opts.conf], {
        detached: true,
        stdio: [reader, 'pipe', 'pipe'],
      });
    } finally {
      fs.closeSync(reader);
    }
    const s = new Smbd(proc, writer, opts);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
    while (s.running) {
      if (await canConnect(opts.host, opts.port, 500)) {
        if (s.running) return s;
        break;
      }
      if (Date.now() > deadline) {
        await s.stop();
        throw new Error(`smbd did not listen on ${opts.host}:${opts.port} within ${opts.readyTimeoutMs ?? 20_000} ms. Its output:\n${s.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const e = await s.exited;
    throw new Error(`smbd exited (${e.signal ?? `code ${e.code}`}) before it listened on ${opts.host}:${opts.port}. Its output:\n${s.tail()}`);
  }

  private closeStdin(): void {
    if (this.stdinWriter === undefined) return;
    try {
      fs.closeSync(this.stdinWriter);
    } catch {
      // already closed
    }
    this.stdinWriter = undefined;
  }

  private signalGroup(sig: NodeJS.Signals): boolean {
    if (this.proc.pid === undefined) return false;
    try {
      process.kill(-this.proc.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * SIGTERM to smbd and its children (its process group); SIGKILL what is left after
   * `timeoutMs`. Resolves once smbd has exited and no process of its group remains.
   */
  async stop(timeoutMs = 10_000): Promise<SmbdExit> {
    if (this.running) this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), timeoutMs);
    const e = await this.exited;
    clearTimeout(timer);
    // Children of the group may outlive the leader by a moment (a connection finishing up).
    const end = Date.now() + timeoutMs;
    while (this.signalGroup(0 as unknown as NodeJS.Signals)) {
      if (Date.now() > end) {
        this.signalGroup('SIGKILL');
        await new Promise((r) => setTimeout(r, 100));
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.closeStdin();
    return e;
  }
}
