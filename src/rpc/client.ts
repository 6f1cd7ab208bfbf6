/**
 * RpcClient: the `FileSystem` interface over a connection to `silt serve`, so anything written
 * against the fs layer (a FUSE mount, tools, tests) runs against a remote volume unchanged.
 *
 * Errors are FsError with the server's errno. Losing the connection is handled here:
 * - the client reconnects (backoff up to 2 s, for at most `reconnectTimeoutMs`), mounts again and
 *   re-establishes its pins and opens; calls made meanwhile wait for the new connection;
 * - a call in flight when the connection dropped is re-sent if repeating it is harmless (reads,
 *   lookups, writes of the same bytes at the same offset, flushes, setattr); otherwise (create,
 *   unlink, rename, ...) it fails with EIO saying that its outcome is unknown;
 * - if the server restarted (a new serverId), writes that were not flushed may be lost: only
 *   RpcFlush/fsync promise durability, exactly as for a local crash. The client logs a warning.
 */
import * as net from 'node:net';
import type {
  Attr,
  DirEntry,
  DirEntryPlus,
  FileSystem,
  Identity,
  RenameFlags,
  SetAttrChanges,
  StatFs,
  XattrFlags,
} from '../fs/index.ts';
import { FsError, nullLogger, owned, type Borrowed, type Logger } from '../util/index.ts';
import {
  DATA_BYTES_MAX,
  FrameReader,
  READDIR_ENTRIES_MAX,
  decodeText,
  encodeFrame,
  fromBase64,
  fsErrorFromRpc,
  statFromWire,
  toBase64,
  type MethodResults,
  type WireDirEntry,
} from './protocol.ts';
import type { MethodName, ParamsIn } from './schema.ts';

export const DEFAULT_RPC_PORT = 12345;

export interface RpcClientOptions {
  /** "HOST:PORT" (IPv6 as "[::1]:12345"); or give host and port. */
  address?: string;
  host?: string;
  port?: number;
  token: string;
  volume?: string;
  /** Who the mount acts as (default root). A root mount may pass other callers' identities per call. */
  identity?: Identity;
  connectTimeoutMs?: number;
  /** Fail a call with ETIMEDOUT if no reply comes within this long (0: wait for ever, the default). */
  requestTimeoutMs?: number;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** How long calls wait for a reconnection before failing with EIO. */
  reconnectTimeoutMs?: number;
  /** Carry RpcWrite/RpcRead data in binary frames instead of base64 JSON (default true). */
  binaryFrames?: boolean;
  logger?: Logger;
}

type Params = Record<string, unknown>;

interface Pending {
  id: number;
  method: MethodName;
  params: Params;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout | undefined;
  /** Part of the connection handshake: never queued, never retried. */
  handshake?: boolean;
  /** Send as a binary frame (RpcWrite/RpcRead); `payload` is RpcWrite's data. */
  binary?: boolean;
  payload?: Uint8Array;
}

/** Calls that may be repeated after a lost connection without changing the outcome. */
const REPEATABLE: ReadonlySet<MethodName> = new Set<MethodName>([
  'RpcPing',
  'RpcLookup',
  'RpcLookupPath',
  'RpcGetStat',
  'RpcSetStat',
  'RpcResize',
  'RpcReadSymlink',
  'RpcReaddir',
  'RpcOpen',
  'RpcRead',
  'RpcWrite',
  'RpcFlush',
  'RpcSync',
  'RpcFallocate',
  'RpcSeek',
  'RpcAccess',
  'RpcGetXAttr',
  'RpcListXAttr',
  'RpcStatVFS',
]);

/** Methods that take no mountId. */
const NO_MOUNT: ReadonlySet<MethodName> = new Set<MethodName>(['RpcPing', 'RpcAuth', 'RpcMount']);

/** Parse "HOST:PORT", "[v6]:PORT" or "PORT". */
export function parseAddress(a: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(a) ?? /^()()(\d+)$/.exec(a);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad address '${a}' (want HOST:PORT)`);
  return { host: m[1] || m[2] || defaultHost, port };
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.uid === b.uid && a.gid === b.gid && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}

export class RpcClient implements FileSystem {
  readonly host: string;
  readonly port: number;
  readonly volume: string;
  readonly identity: Identity;
  private readonly opts: RpcClientOptions;
  private readonly log: Logger;
  private sock: net.Socket | null = null;
  private state: 'down' | 'connecting' | 'ready' | 'closed' = 'down';
  private reader = new FrameReader(64 * 1024 * 1024, DATA_BYTES_MAX);
  private readonly pending = new Map<number, Pending>();
  private waiting: Pending[] = [];
  private nextId = 1;
  private mountIdV = 0;
  private rootInodeV = 1;
  private serverIdV = '';
  private reconnecting: Promise<void> | null = null;
  /** Pins and opens to re-establish after a reconnect. */
  private readonly pins = new Map<number, number>();
  private readonly opens = new Map<number, number[]>();
  private fatal: FsError | null = null;

  private constructor(opts: RpcClientOptions) {
    const a = opts.address ? parseAddress(opts.address) : { host: opts.host ?? '127.0.0.1', port: opts.port ?? DEFAULT_RPC_PORT };
    this.host = a.host;
    this.port = a.port;
    this.volume = opts.volume ?? 'default';
    this.identity = opts.identity ?? { uid: 0, gid: 0, groups: [] };
    this.opts = opts;
    this.log = opts.logger ?? nullLogger;
  }

  /** Connect, authenticate and mount. Rejects with FsError (EACCES bad token, ENOENT no such volume, EIO unreachable). */
  static async connect(opts: RpcClientOptions): Promise<RpcClient> {
    const c = new RpcClient(opts);
    await c.establish();
    return c;
  }

  get mountId(): number {
    return this.mountIdV;
  }
  get rootInode(): number {
    return this.rootInodeV;
  }
  /** Changes when the server process restarts. */
  get serverId(): string {
    return this.serverIdV;
  }
  get connected(): boolean {
    return this.state === 'ready';
  }

  // ------------------------------------------------------------------ connection

  private where(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  private openSocket(): Promise<net.Socket> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.host, port: this.port, noDelay: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new FsError('EIO', `cannot reach silt server at ${this.where()}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new FsError('EIO', `cannot reach silt server at ${this.where()}: ${err.code ?? err.message}`, { cause: err }));
      });
    });
  }

  /** Connect, mount, restore pins and opens, then send whatever waited. */
  private async establish(): Promise<void> {
    this.state = 'connecting';
    const s = await this.openSocket();
    s.setKeepAlive(true, 30_000);
    this.sock = s;
    this.reader = new FrameReader(64 * 1024 * 1024, DATA_BYTES_MAX);
    s.on('data', (chunk: Buffer) => this.onData(s, chunk));
    s.on('error', (err) => this.log.debug('rpc client: socket error', { err: err.message }));
    s.on('close', () => this.onClose(s));
    try {
      const m = await this.handshake('RpcMount', {
        volume: this.volume,
        token: this.opts.token,
        uid: this.identity.uid,
        gid: this.identity.gid,
        groups: [...this.identity.groups],
      });
      if (this.serverIdV && m.serverId !== this.serverIdV) {
        this.log.warn('rpc client: the server restarted; writes not flushed before may be lost', { server: this.where() });
      }
      this.mountIdV = m.mountId;
      this.rootInodeV = m.rootInode;
      this.serverIdV = m.serverId;
      for (const [ino, count] of [...this.pins]) {
        await this.handshake('RpcPin', { mountId: m.mountId, inode: ino, count }).catch((e: unknown) => {
          this.log.warn('rpc client: could not re-pin an inode after reconnecting', { ino, err: String(e) });
          this.pins.delete(ino);
        });
      }
      for (const [ino, flagsList] of [...this.opens]) {
        const kept: number[] = [];
        for (const flags of flagsList) {
          const f = flags & 3; // the access mode only: no truncation, no creation on re-open
          await this.handshake('RpcOpen', { mountId: m.mountId, inode: ino, flags: f }).then(
            () => kept.push(flags),
            (e: unknown) => this.log.warn('rpc client: could not re-open an inode after reconnecting', { ino, err: String(e) }),
          );
        }
        if (kept.length) this.opens.set(ino, kept);
        else this.opens.delete(ino);
      }
    } catch (e) {
      s.destroy();
      this.sock = null;
      this.state = 'down';
      if (e instanceof FsError && (e.errno === 'EACCES' || e.errno === 'ENOENT')) this.fatal = e;
      throw e;
    }
    if (this.state !== 'connecting') throw new FsError('EIO', `connection to ${this.where()} lost while mounting`);
    this.state = 'ready';
    const queued = this.waiting;
    this.waiting = [];
    for (const p of queued) this.send(p);
  }

  private handshake<M extends MethodName>(method: M, params: ParamsIn<M>): Promise<MethodResults[M]> {
    return new Promise((resolve, reject) => {
      const p: Pending = { id: this.nextId++, method, params: params as Params, resolve: resolve as (v: unknown) => void, reject, handshake: true };
      this.send(p);
    });
  }

  private send(p: Pending): void {
    const s = this.sock;
    if (!s || (this.state !== 'ready' && !p.handshake)) {
      this.waiting.push(p);
      return;
    }
    const params = 'mountId' in p.params && !p.handshake ? { ...p.params, mountId: this.mountIdV } : p.params;
    this.pending.set(p.id, p);
    const timeoutMs = this.opts.requestTimeoutMs ?? 0;
    if (timeoutMs > 0 && !p.timer) {
      p.timer = setTimeout(() => {
        this.pending.delete(p.id);
        this.waiting = this.waiting.filter((w) => w !== p);
        p.reject(new FsError('ETIMEDOUT', `${p.method}: no reply from ${this.where()} in ${timeoutMs} ms`));
      }, timeoutMs);
    }
    const head = JSON.stringify({ jsonrpc: '2.0', id: p.id, method: p.method, params });
    if (p.binary) s.write(encodeFrame(head, p.payload));
    else s.write(head + '\n');
  }

  private onData(s: net.Socket, chunk: Buffer): void {
    for (const item of this.reader.push(chunk)) {
      if ('line' in item) this.onLine(decodeText(item.line));
      else if ('header' in item) this.onLine(decodeText(item.header), item.payload);
      else {
        this.log.warn('rpc client: unreadable reply stream; reconnecting', { item: JSON.stringify(item) });
        s.destroy();
        return;
      }
    }
  }

  private onLine(line: string, payload?: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.log.warn('rpc client: unparsable reply', { line: line.slice(0, 200) });
      return;
    }
    for (const r of Array.isArray(msg) ? msg : [msg]) {
      const rep = r as { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } };
      const p = typeof rep.id === 'number' ? this.pending.get(rep.id) : undefined;
      if (!p) {
        if (rep.error) this.log.warn('rpc client: server error without a request', { error: rep.error });
        continue;
      }
      this.pending.delete(p.id);
      if (p.timer) clearTimeout(p.timer);
      if (rep.error) p.reject(fsErrorFromRpc(p.method, rep.error));
      else p.resolve(payload ? { ...(rep.result as object), data: payload } : rep.result);
    }
  }

  private onClose(s: net.Socket): void {
    if (this.sock !== s) return;
    this.sock = null;
    const wasClosed = this.state === 'closed';
    if (!wasClosed) this.state = 'down';
    const inflight = [...this.pending.values()].sort((a, b) => a.id - b.id);
    this.pending.clear();
    const retry: Pending[] = [];
    for (const p of inflight) {
      const lost = (): FsError =>
        new FsError('EIO', `${p.method}: connection to ${this.where()} lost before the reply; it may or may not have happened`);
      if (wasClosed || p.handshake) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(wasClosed ? new FsError('EIO', `${p.method}: client closed`) : lost());
      } else if (p.method === 'RpcPin' || p.method === 'RpcUnpin' || (p.method === 'RpcRelease' && p.params['wrote'] !== true)) {
        // Replayed from the client's own counts on reconnect (the server dropped the old mount's).
        p.resolve({});
      } else if (p.method === 'RpcRelease') {
        // The old mount's opens are gone; what remains of a written close is its flush.
        retry.push({ ...p, method: 'RpcFlush', params: { mountId: 0, inode: p.params['inode'] } });
      } else if (REPEATABLE.has(p.method) || (p.method === 'RpcSetXAttr' && p.params['create'] !== true)) {
        retry.push(p);
      } else {
        if (p.timer) clearTimeout(p.timer);
        p.reject(lost());
      }
    }
    if (wasClosed) return;
    this.waiting = [...retry, ...this.waiting];
    this.log.warn('rpc client: connection lost', { server: this.where(), retrying: retry.length });
    if (this.opts.reconnect !== false) this.startReconnect();
    else this.failWaiting(new FsError('EIO', `connection to ${this.where()} lost`));
  }

  private failWaiting(err: FsError): void {
    const w = this.waiting;
    this.waiting = [];
    for (const p of w) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new FsError(err.errno, `${p.method}: ${err.message}`));
    }
  }

  private startReconnect(): void {
    if (this.reconnecting || this.state === 'closed') return;
    const deadline = Date.now() + (this.opts.reconnectTimeoutMs ?? 30_000);
    this.reconnecting = (async () => {
      let delay = 50;
      let last: unknown;
      while (Date.now() < deadline && (this.state as string) !== 'closed' && !this.fatal) {
        try {
          await this.establish();
          this.log.info('rpc client: reconnected', { server: this.where(), mountId: this.mountIdV });
          return;
        } catch (e) {
          last = e;
        }
        await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
        delay = Math.min(delay * 2, 2000);
      }
      const why = this.fatal ?? (last instanceof FsError ? last : new FsError('EIO', String(last)));
      this.failWaiting(new FsError(why.errno, `cannot reconnect to ${this.where()}: ${why.message}`));
    })().finally(() => {
      this.reconnecting = null;
    });
  }

  /** A typed call of any RPC method (`mountId` is filled in). */
  call<M extends MethodName>(method: M, params: Omit<ParamsIn<M>, 'mountId'>): Promise<MethodResults[M]> {
    return this.request(method, params as Params);
  }

  private request(method: MethodName, params: Params, frame?: { payload?: Uint8Array }): Promise<never> {
    if (this.state === 'closed') return Promise.reject(new FsError('EIO', `${method}: client closed`));
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      const p: Pending = {
        id: this.nextId++,
        method,
        params: NO_MOUNT.has(method) ? params : { mountId: this.mountIdV, ...params },
        resolve: resolve as (v: unknown) => void,
        reject,
        ...(frame && { binary: true }),
        ...(frame?.payload && { payload: frame.payload }),
      };
      if (this.state !== 'ready') {
        this.waiting.push(p);
        if (this.state === 'down') {
          if (this.opts.reconnect === false) this.failWaiting(new FsError('EIO', `not connected to ${this.where()}`));
          else this.startReconnect();
        }
        return;
      }
      this.send(p);
    });
  }

  private get binary(): boolean {
    return this.opts.binaryFrames !== false;
  }

  private async readChunk(ino: number, offset: number, length: number, id: Params): Promise<Buffer> {
    if (this.binary) {
      const r = (await this.request('RpcRead', { inode: ino, offset, length, ...id }, {})) as { data: Buffer };
      return r.data;
    }
    return fromBase64((await this.call('RpcRead', { inode: ino, offset, length, ...id })).data);
  }

  private async writeChunk(ino: number, offset: number, data: Uint8Array, id: Params): Promise<number> {
    if (this.binary) return ((await this.request('RpcWrite', { inode: ino, offset, ...id }, { payload: data })) as { size: number }).size;
    return (await this.call('RpcWrite', { inode: ino, offset, data: toBase64(data), ...id })).size;
  }

  /** Unmount and close the connection. Pending calls fail with EIO. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const s = this.sock;
    if (this.state === 'ready' && s) {
      await Promise.race([this.call('RpcUnmount', {}).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.state = 'closed';
    this.failWaiting(new FsError('EIO', 'client closed'));
    if (s) {
      s.end();
      s.destroy();
    }
  }

  // ------------------------------------------------------------------ FileSystem

  private as(who: Identity): { caller?: { uid: number; gid: number; groups: number[] } } {
    return sameIdentity(who, this.identity) ? {} : { caller: { uid: who.uid, gid: who.gid, groups: [...who.groups] } };
  }

  async ping(): Promise<MethodResults['RpcPing']> {
    return this.call('RpcPing', {});
  }

  async lookup(who: Identity, parent: number, name: string): Promise<Attr> {
    return statFromWire((await this.call('RpcLookup', { inode: parent, name, ...this.as(who) })).attr);
  }

  /** Resolve a slash-separated path from the root (symlinks are not followed). */
  async lookupPath(who: Identity, path: string): Promise<Attr> {
    return statFromWire((await this.call('RpcLookupPath', { path, ...this.as(who) })).attr);
  }

  async getattr(who: Identity, ino: number): Promise<Attr> {
    return statFromWire(await this.call('RpcGetStat', { inode: ino, ...this.as(who) }));
  }

  async setattr(who: Identity, ino: number, c: SetAttrChanges): Promise<Attr> {
    const time = (t: bigint | 'now' | undefined): string | undefined => (t === undefined ? undefined : t === 'now' ? 'now' : t.toString());
    const p = {
      inode: ino,
      ...this.as(who),
      ...(c.mode !== undefined && { mode: c.mode }),
      ...(c.uid !== undefined && { uid: c.uid }),
      ...(c.gid !== undefined && { gid: c.gid }),
      ...(c.size !== undefined && { size: c.size }),
      ...(c.atimeNs !== undefined && { atime: time(c.atimeNs) }),
      ...(c.mtimeNs !== undefined && { mtime: time(c.mtimeNs) }),
      ...(c.ctimeNs !== undefined && { ctime: c.ctimeNs.toString() }),
    };
    return statFromWire(await this.call('RpcSetStat', p));
  }

  async readlink(who: Identity, ino: number): Promise<string> {
    return (await this.call('RpcReadSymlink', { inode: ino, ...this.as(who) })).target;
  }

  async symlink(who: Identity, parent: number, name: string, target: string): Promise<Attr> {
    return statFromWire((await this.call('RpcSymlink', { inode: parent, name, target, ...this.as(who) })).attr);
  }

  async mknod(who: Identity, parent: number, name: string, mode: number, rdev: number): Promise<Attr> {
    return statFromWire((await this.call('RpcMknod', { inode: parent, name, mode, rdev, ...this.as(who) })).attr);
  }

  async mkdir(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    return statFromWire((await this.call('RpcMkdir', { inode: parent, name, mode: mode & 0o7777, ...this.as(who) })).attr);
  }

  async create(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    return statFromWire((await this.call('RpcCreate', { inode: parent, name, mode: mode & 0o7777, ...this.as(who) })).attr);
  }

  async unlink(who: Identity, parent: number, name: string): Promise<void> {
    await this.call('RpcUnlink', { inode: parent, name, ...this.as(who) });
  }

  async rmdir(who: Identity, parent: number, name: string): Promise<void> {
    await this.call('RpcRmdir', { inode: parent, name, ...this.as(who) });
  }

  async rename(who: Identity, parent: number, name: string, newParent: number, newName: string, flags: RenameFlags = {}): Promise<void> {
    await this.call('RpcRename', {
      inode: parent,
      name,
      newInode: newParent,
      newName,
      ...(flags.noReplace && { noReplace: true }),
      ...(flags.exchange && { exchange: true }),
      ...this.as(who),
    });
  }

  async link(who: Identity, ino: number, newParent: number, newName: string): Promise<Attr> {
    return statFromWire((await this.call('RpcLink', { inode: newParent, name: newName, targetInode: ino, ...this.as(who) })).attr);
  }

  async open(who: Identity, ino: number, flags: number): Promise<Attr> {
    const a = statFromWire(await this.call('RpcOpen', { inode: ino, flags, ...this.as(who) }));
    const list = this.opens.get(ino) ?? [];
    list.push(flags);
    this.opens.set(ino, list);
    return a;
  }

  async release(ino: number, wrote: boolean): Promise<void> {
    const list = this.opens.get(ino);
    if (list) {
      list.pop();
      if (list.length === 0) this.opens.delete(ino);
    }
    await this.call('RpcRelease', { inode: ino, wrote });
  }

  async readv(who: Identity, ino: number, offset: number, length: number): Promise<Borrowed> {
    return owned([await this.read(who, ino, offset, length)]);
  }

  async read(who: Identity, ino: number, offset: number, length: number): Promise<Uint8Array> {
    const id = this.as(who);
    if (length <= DATA_BYTES_MAX) return this.readChunk(ino, offset, length, id);
    const parts: Buffer[] = [];
    for (let done = 0; done < length; ) {
      const n = Math.min(DATA_BYTES_MAX, length - done);
      const b = await this.readChunk(ino, offset + done, n, id);
      parts.push(b);
      done += b.length;
      if (b.length < n) break;
    }
    return Buffer.concat(parts);
  }

  async write(who: Identity, ino: number, offset: number, data: Uint8Array): Promise<number> {
    const id = this.as(who);
    if (data.length <= DATA_BYTES_MAX) return this.writeChunk(ino, offset, data, id);
    let total = 0;
    for (let o = 0; o < data.length; o += DATA_BYTES_MAX) {
      total += await this.writeChunk(ino, offset + o, data.subarray(o, Math.min(data.length, o + DATA_BYTES_MAX)), id);
    }
    return total;
  }

  async fsync(ino: number, dataOnly: boolean): Promise<void> {
    await this.call('RpcFlush', { inode: ino, dataOnly });
  }

  async sync(): Promise<void> {
    await this.call('RpcSync', {});
  }

  private async dir(who: Identity, ino: number, cookie: bigint, limit: number, plus: boolean): Promise<WireDirEntry[]> {
    const n = Math.max(1, Math.min(limit, READDIR_ENTRIES_MAX));
    return (await this.call('RpcReaddir', { inode: ino, cookie: cookie.toString(), limit: n, plus, ...this.as(who) })).entries;
  }

  async readdir(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntry[]> {
    if (limit <= 0) return [];
    return (await this.dir(who, ino, cookie, limit, false)).map((e) => ({ name: e.name, ino: e.inode, type: e.type, cookie: BigInt(e.cookie) }));
  }

  async readdirplus(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntryPlus[]> {
    if (limit <= 0) return [];
    return (await this.dir(who, ino, cookie, limit, true)).map((e) => {
      if (!e.attr) throw new FsError('EIO', 'RpcReaddir: the server sent no attributes for plus');
      return { name: e.name, ino: e.inode, type: e.type, cookie: BigInt(e.cookie), attr: statFromWire(e.attr) };
    });
  }

  async statfs(who: Identity): Promise<StatFs> {
    return this.call('RpcStatVFS', { ...this.as(who) });
  }

  async getxattr(who: Identity, ino: number, name: string): Promise<Uint8Array> {
    return fromBase64((await this.call('RpcGetXAttr', { inode: ino, name, ...this.as(who) })).value);
  }

  async setxattr(who: Identity, ino: number, name: string, value: Uint8Array, flags: XattrFlags = {}): Promise<void> {
    await this.call('RpcSetXAttr', {
      inode: ino,
      name,
      value: toBase64(value),
      ...(flags.create && { create: true }),
      ...(flags.replace && { replace: true }),
      ...this.as(who),
    });
  }

  async listxattr(who: Identity, ino: number): Promise<string[]> {
    return (await this.call('RpcListXAttr', { inode: ino, ...this.as(who) })).names;
  }

  async removexattr(who: Identity, ino: number, name: string): Promise<void> {
    await this.call('RpcRemoveXAttr', { inode: ino, name, ...this.as(who) });
  }

  async access(who: Identity, ino: number, mask: number): Promise<void> {
    await this.call('RpcAccess', { inode: ino, mask, ...this.as(who) });
  }

  async fallocate(who: Identity, ino: number, mode: number, offset: number, length: number): Promise<void> {
    await this.call('RpcFallocate', { inode: ino, mode, offset, length, ...this.as(who) });
  }

  async lseek(who: Identity, ino: number, offset: number, whence: number): Promise<number> {
    if (whence !== 3 && whence !== 4) throw new FsError('EINVAL', `lseek: unsupported whence ${whence}`);
    return (await this.call('RpcSeek', { inode: ino, offset, whence, ...this.as(who) })).offset;
  }

  pin(ino: number): void {
    this.pins.set(ino, (this.pins.get(ino) ?? 0) + 1);
    this.call('RpcPin', { inode: ino }).catch((e: unknown) => {
      this.log.warn('rpc client: pin failed', { ino, err: String(e) });
      const n = (this.pins.get(ino) ?? 1) - 1;
      if (n > 0) this.pins.set(ino, n);
      else this.pins.delete(ino);
    });
  }

  unpin(ino: number): void {
    const n = (this.pins.get(ino) ?? 0) - 1;
    if (n < 0) return;
    if (n > 0) this.pins.set(ino, n);
    else this.pins.delete(ino);
    this.call('RpcUnpin', { inode: ino }).catch((e: unknown) => this.log.warn('rpc client: unpin failed', { ino, err: String(e) }));
  }
}
