/**
 * Test harness for the RPC layer: an in-process server over a MemoryStore volume, a raw
 * line-oriented socket client (what `nc` would do), and `silt serve` as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MountTable, openFileSystem, type SiltFileSystem } from '../../src/fs/index.ts';
import { MemoryStore, type ObjectStore } from '../../src/objstore/index.ts';
import { startRpcServer, type RpcLimits, type RpcServer } from '../../src/rpc/index.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TOKEN = 'test-token-0123456789';

export interface InProcess {
  store: ObjectStore;
  fsys: SiltFileSystem;
  mounts: MountTable;
  server: RpcServer;
  close(): Promise<void>;
}

export async function startInProcess(o: { limits?: Partial<RpcLimits>; port?: number; store?: ObjectStore } = {}): Promise<InProcess> {
  const store = o.store ?? new MemoryStore();
  const fsys = await openFileSystem({ store, create: true, flushIntervalMs: 0 });
  const mounts = new MountTable([['default', fsys]]);
  const server = await startRpcServer({ mounts, token: TOKEN, port: o.port ?? 0, ...(o.limits && { limits: o.limits }) });
  return {
    store,
    fsys,
    mounts,
    server,
    async close() {
      await server.close();
      await fsys.close();
    },
  };
}

/** A raw newline-delimited JSON socket client: send lines, read reply lines. */
export class LineClient {
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: ((l: string | null) => void)[] = [];
  closed = false;
  private nextId = 1;

  private constructor(readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  write(s: string | Buffer): void {
    this.sock.write(s);
  }

  /** The next reply line, or null once the server closed the connection. */
  next(timeoutMs = 30_000): Promise<string | null> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply in time')), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(t);
        resolve(line);
      });
    });
  }

  async call(method: string, params?: unknown): Promise<{ id: number; result?: any; error?: any }> {
    const id = this.nextId++;
    this.write(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) }) + '\n');
    const line = await this.next();
    if (line === null) throw new Error(`connection closed before the reply to ${method}`);
    return JSON.parse(line) as { id: number; result?: unknown; error?: unknown };
  }

  /** Call and return the result; throw with the error message otherwise. */
  async ok(method: string, params?: unknown): Promise<any> {
    const r = await this.call(method, params);
    if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > end) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface ServeChild {
  proc: ChildProcess;
  port: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `node bin/silt.mjs serve ARGS --rpc 127.0.0.1:0`; resolves once it prints its port. */
export async function spawnServe(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServeChild> {
  const proc = spawn(process.execPath, [path.join(REPO, 'bin/silt.mjs'), 'serve', '--rpc', '127.0.0.1:0', ...args], {
    cwd: REPO,
    env: { ...process.env, SILT_TOKEN: TOKEN, SILT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`silt serve did not start in ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    const check = (): void => {
      const m = /on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((e) => {
      clearTimeout(t);
      reject(new Error(`silt serve exited (${e.code ?? e.signal}) before listening:\n${out}\n${err}`));
    });
  });
  return { proc, port, stdout: () => out, stderr: () => err, exited };
}
