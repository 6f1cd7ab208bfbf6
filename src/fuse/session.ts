/**
 * The FUSE protocol layer: reads requests from /dev/fuse, negotiates INIT, decodes each request,
 * calls the RawFileSystem, encodes the reply, and tracks interrupts and notifications.
 *
 * Reading: by default the main thread's event loop watches the device and reads one request per
 * readiness (device-stream.ts); with `readers: N` instead, N worker threads each block in
 * readSync(2) and post requests to the main thread. Either way the main thread handles requests
 * concurrently and writes replies with writeSync (a reply write never waits on the file system).
 * Notifications go through a worker, because the kernel may hold a directory lock while it
 * processes a notification and that lock may be held by a request only the main thread can answer.
 */
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { REQUEST_KEEPS_BUFFER_BYTES, SPARE_REQUEST_BUFFERS_MAX, deviceStreamSupported, openDeviceStream } from './device-stream.ts';
import type { DeviceStream } from './device-stream.ts';
import { ERRNO, metrics } from '../util/index.ts';
import type { Logger } from '../util/index.ts';
import { EINVAL, ENOSYS, Interrupted, errnoFor } from './errors.ts';
import type { FuseRequest, RawFileSystem, SetattrIn } from './raw.ts';
import {
  DirBuffer,
  FSYNC_FDATASYNC,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_MINOR_VERSION,
  GETATTR_FH,
  Init,
  LK_FLOCK,
  NOTIFY_DELETE,
  NOTIFY_INVAL_ENTRY,
  NOTIFY_INVAL_INODE,
  Op,
  SIZE,
  WireError,
  cstring,
  decodeFileLock,
  encodeAttrOut,
  encodeEntryOut,
  encodeLkOut,
  encodeOpenOut,
  encodeStatfsOut,
  encodeU32Out,
  encodeU64Out,
  opName,
  putU64,
  u64,
  u64Clamped,
  type EntryOut,
} from './wire.ts';

export interface SessionOptions {
  logger: Logger;
  /** Largest WRITE payload (bytes); also sets max_pages. Default 1 MiB. */
  maxWriteBytes?: number;
  /**
   * How requests are read from /dev/fuse. 0 (the default where Node allows it): on the main
   * thread's event loop (device-stream.ts), one wakeup per request and no reader isolates. N >= 1:
   * N worker threads, each blocking in read(2) and posting requests to the main thread (two
   * wakeups and a message per request, ~9 MiB per thread); measured on 2 cores, the event loop
   * took a 4 KiB file create+close from 1.11 to 0.86 CPU-ms and 5,000 opens from 1.11 to 0.44 s.
   */
  readers?: number;
  /** Kernel background request limit (async reads, releases). Default 64. */
  maxBackground?: number;
  /** Log every request and reply at debug level. */
  trace?: boolean;
}

/** What INIT agreed on. */
export interface ConnectionInfo {
  kernelMajor: number;
  kernelMinor: number;
  minor: number;
  flags: number;
  maxWriteBytes: number;
  maxPages: number;
  maxReadaheadBytes: number;
}

/** The INIT flags we ask for (and take only when the kernel offers them). */
export const WANTED_INIT_FLAGS =
  Init.ASYNC_READ |
  Init.POSIX_LOCKS |
  Init.ATOMIC_O_TRUNC |
  Init.BIG_WRITES |
  Init.FLOCK_LOCKS |
  Init.AUTO_INVAL_DATA |
  Init.DO_READDIRPLUS |
  Init.READDIRPLUS_AUTO |
  Init.PARALLEL_DIROPS |
  Init.HANDLE_KILLPRIV_V2 |
  Init.MAX_PAGES |
  Init.CACHE_SYMLINKS |
  Init.ASYNC_DIO;

const PAGE = 4096;

function u64Safe(b: Buffer, off: number): number {
  const v = b.readBigUInt64LE(off);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(v);
}
/** Room for the in-header and write_in in front of a max-size WRITE (libfuse's 4 KiB). */
const HEADER_ROOM = 4096;
/** Interrupts for requests we have not seen yet; bounded. */
const PENDING_INTERRUPTS_MAX = 1024;

const READER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, size } = workerData;
// Small requests are copied out of a reused buffer; large ones (WRITE payloads) hand the whole
// buffer over without a copy and the reader takes another: one the main thread gave back once it
// was done with it (fresh memory costs a page fault per 4 KiB), or a new one.
const BIG = ${REQUEST_KEEPS_BUFFER_BYTES};
const spare = [];
const next = () => {
  for (let m; (m = receiveMessageOnPort(parentPort)) !== undefined; ) {
    if (m.message instanceof ArrayBuffer && m.message.byteLength === size && spare.length < ${SPARE_REQUEST_BUFFERS_MAX}) spare.push(m.message);
  }
  return spare.pop() ?? new ArrayBuffer(size);
};
let ab = new ArrayBuffer(size);
let buf = new Uint8Array(ab);
for (;;) {
  let n;
  try {
    n = fs.readSync(fd, buf, 0, size, null);
  } catch (e) {
    // ENOENT: the request was interrupted before we read it. EINTR/EAGAIN: try again.
    if (e.code === 'ENOENT' || e.code === 'EINTR' || e.code === 'EAGAIN') continue;
    parentPort.postMessage({ end: e.code || String(e) });
    break;
  }
  if (n === 0) { parentPort.postMessage({ end: 'EOF' }); break; }
  if (n >= BIG) {
    parentPort.postMessage({ ab, n }, [ab]);
    ab = next();
    buf = new Uint8Array(ab);
  } else {
    const out = new ArrayBuffer(n);
    new Uint8Array(out).set(buf.subarray(0, n));
    parentPort.postMessage(out, [out]);
  }
}
`;

const NOTIFIER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd } = workerData;
parentPort.on('message', (m) => {
  let error = null;
  try { fs.writeSync(fd, Buffer.from(m.bytes)); } catch (e) { error = e.code || String(e); }
  parentPort.postMessage({ id: m.id, error });
});
`;

interface InFlight {
  ctl: AbortController | undefined;
  interrupted: boolean;
}

class Request implements FuseRequest {
  constructor(
    readonly opcode: number,
    readonly unique: number,
    readonly nodeid: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
    private readonly flight: InFlight,
  ) {}
  get signal(): AbortSignal {
    if (!this.flight.ctl) {
      this.flight.ctl = new AbortController();
      if (this.flight.interrupted) this.flight.ctl.abort(new Interrupted());
    }
    return this.flight.ctl.signal;
  }
}

export class FuseSession {
  private readonly logger: Logger;
  private readonly maxWrite: number;
  private readonly readerCount: number;
  private readonly maxBackground: number;
  private readonly trace: boolean;
  private readonly readers: Worker[] = [];
  /** The event-loop reader (readers: 0); it owns the device descriptor once started. */
  private device: DeviceStream | undefined;
  /** Set at the end of finish(): the descriptor is closed (or about to be); replies are dropped. */
  private deviceGone = false;
  private notifier: Worker | undefined;
  private notifyId = 0;
  private readonly notifyWaiters = new Map<number, (error: string | null) => void>();
  private readonly inFlight = new Map<number, InFlight>();
  private readonly pendingInterrupts = new Set<number>();
  private conn: ConnectionInfo | undefined;
  private ended = false;
  private endedResolve!: () => void;
  private initResolve!: (c: ConnectionInfo) => void;
  private initReject!: (e: Error) => void;
  /** Resolves when the connection has ended (unmount, abort) and destroy() has run. */
  readonly closed: Promise<void>;
  /** Resolves once INIT is answered. */
  readonly initialized: Promise<ConnectionInfo>;
  /** Requests received, by opcode name (for tests and stats). */
  readonly counts = new Map<string, number>();
  /** Largest WRITE payload and READ size seen (bytes). */
  readonly sizes = { maxWriteBytes: 0, maxReadBytes: 0 };

  constructor(
    readonly fd: number,
    private readonly fsys: RawFileSystem,
    opts: SessionOptions,
  ) {
    this.logger = opts.logger;
    this.maxWrite = opts.maxWriteBytes ?? 1 << 20;
    if (this.maxWrite % PAGE !== 0 || this.maxWrite < PAGE) throw new Error('maxWriteBytes must be a multiple of 4096');
    this.readerCount = Math.max(0, opts.readers ?? (deviceStreamSupported() ? 0 : 2));
    this.maxBackground = Math.min(0xffff, opts.maxBackground ?? 64);
    this.trace = opts.trace ?? false;
    this.closed = new Promise((r) => (this.endedResolve = r));
    this.initialized = new Promise((res, rej) => {
      this.initResolve = res;
      this.initReject = rej;
    });
    this.initialized.catch(() => {}); // observed by whoever awaits it
  }

  get connection(): ConnectionInfo | undefined {
    return this.conn;
  }

  /** Start the readers. Call before mount(2) so INIT is answered at once. */
  start(): void {
    const size = this.maxWrite + HEADER_ROOM;
    if (this.readerCount === 0) {
      this.device = openDeviceStream(this.fd, size, {
        onRequest: (b, giveBack) => this.onPacket(b, giveBack),
        onEnd: (why) => this.onReaderEnd(why),
      });
      // A mounted session keeps the process alive until the connection ends: the device stream's
      // socket is referenced until finish() closes it.
      return;
    }
    for (let i = 0; i < this.readerCount; i++) {
      const w = new Worker(READER_SOURCE, { eval: true, workerData: { fd: this.fd, size } });
      w.on('message', (m: ArrayBuffer | { ab: ArrayBuffer; n: number } | { end: string }) => {
        let b: Buffer;
        let giveBack: (() => void) | undefined;
        if (m instanceof ArrayBuffer) b = Buffer.from(m);
        else if ('ab' in m) {
          b = Buffer.from(m.ab, 0, m.n);
          const ab = m.ab;
          giveBack = () => {
            if (!this.ended) w.postMessage(ab, [ab]);
          };
        } else {
          this.onReaderEnd(m.end);
          return;
        }
        this.onPacket(b, giveBack);
      });
      w.on('error', (e) => {
        this.logger.error('fuse reader failed', { error: String(e) });
        this.onReaderEnd('worker error');
      });
      // Referenced: a mounted session keeps the process alive until the connection ends.
      this.readers.push(w);
    }
  }

  /** True when the session closes the device descriptor itself (at the end of finish()). */
  get ownsDevice(): boolean {
    return this.readerCount === 0;
  }

  private onPacket(b: Buffer, giveBack: (() => void) | undefined): void {
    try {
      this.onRequest(b, giveBack);
    } catch (e) {
      // Only a malformed request gets here (handlers reject, they do not throw): never crash.
      this.logger.error('fuse: cannot handle request', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      if (b.length >= 16) this.send(u64Safe(b, 8), EINVAL);
    }
  }

  private onReaderEnd(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.logger.info('fuse connection ended', { why });
    this.initReject(new Error(`FUSE connection ended before INIT (${why})`));
    void this.finish();
  }

  private async finish(): Promise<void> {
    try {
      await this.fsys.destroy();
    } catch (e) {
      this.logger.error('fuse destroy failed', { error: String(e) });
    }
    for (const w of this.readers) void w.terminate();
    if (this.notifier) await this.notifier.terminate();
    for (const [, resolve] of this.notifyWaiters) resolve('ENODEV');
    this.notifyWaiters.clear();
    // Last: nothing writes to the descriptor any more (send() checks deviceGone, the notifier is
    // gone), so its number cannot be reused under a late reply.
    this.deviceGone = true;
    this.device?.close();
    this.endedResolve();
  }

  // -------------------------------------------------------------------------------------------
  // Replies

  /** Write a reply; false when the kernel no longer wants it (interrupted, or connection gone). */
  private send(unique: number, error: number, payload?: Uint8Array | readonly Uint8Array[]): boolean {
    if (this.deviceGone) return false;
    const parts: Uint8Array[] = payload === undefined ? [] : payload instanceof Uint8Array ? [payload] : [...payload];
    let len = SIZE.OUT_HEADER;
    for (const p of parts) len += p.length;
    const h = Buffer.allocUnsafe(SIZE.OUT_HEADER);
    h.writeUInt32LE(len, 0);
    h.writeInt32LE(-error, 4);
    putU64(h, 8, unique);
    try {
      if (parts.length === 0) fs.writeSync(this.fd, h);
      else if (len <= 4096) fs.writeSync(this.fd, Buffer.concat([h, ...parts], len));
      else fs.writevSync(this.fd, [h, ...parts]);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted and already answered by the kernel.
      if (code !== 'ENOENT' && code !== 'ENODEV') this.logger.warn('fuse reply write failed', { unique, code });
      return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Notifications (kernel cache invalidation)

  private notify(code: number, body: Buffer): Promise<void> {
    if (this.ended || !this.conn) return Promise.resolve();
    if (!this.notifier) {
      this.notifier = new Worker(NOTIFIER_SOURCE, { eval: true, workerData: { fd: this.fd } });
      this.notifier.on('message', (m: { id: number; error: string | null }) => {
        const w = this.notifyWaiters.get(m.id);
        this.notifyWaiters.delete(m.id);
        w?.(m.error);
      });
      this.notifier.on('error', (e) => this.logger.error('fuse notifier failed', { error: String(e) }));
      this.notifier.unref();
    }
    const msg = Buffer.allocUnsafe(SIZE.OUT_HEADER + body.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeInt32LE(code, 4); // error field carries the notify code
    msg.writeBigUInt64LE(0n, 8); // unique 0 = notification
    body.copy(msg, SIZE.OUT_HEADER);
    const id = ++this.notifyId;
    return new Promise<void>((resolve) => {
      this.notifyWaiters.set(id, (error) => {
        // ENOENT: the kernel does not have that inode/entry cached; nothing to invalidate.
        if (error && error !== 'ENOENT' && error !== 'ENODEV') this.logger.warn('fuse notify failed', { code, error });
        resolve();
      });
      this.notifier!.postMessage({ id, bytes: msg });
    });
  }

  /** Drop the kernel's cached attributes and (offset >= 0) cached data of an inode. */
  invalidateInode(nodeid: number, offset = 0, length = 0): Promise<void> {
    const b = Buffer.alloc(24);
    putU64(b, 0, nodeid);
    b.writeBigInt64LE(BigInt(offset), 8);
    b.writeBigInt64LE(BigInt(length), 16);
    return this.notify(NOTIFY_INVAL_INODE, b);
  }

  /** Drop the kernel's cached name `name` in directory `parent` (positive or negative). */
  invalidateEntry(parent: number, name: string): Promise<void> {
    const n = Buffer.from(name, 'utf8');
    const b = Buffer.alloc(16 + n.length + 1);
    putU64(b, 0, parent);
    b.writeUInt32LE(n.length, 8);
    n.copy(b, 16);
    return this.notify(NOTIFY_INVAL_ENTRY, b);
  }

  /** Tell the kernel that `parent/name` (node `child`) was deleted behind its back. */
  notifyDelete(parent: number, child: number, name: string): Promise<void> {
    const n = Buffer.from(name, 'utf8');
    const b = Buffer.alloc(24 + n.length + 1);
    putU64(b, 0, parent);
    putU64(b, 8, child);
    b.writeUInt32LE(n.length, 16);
    n.copy(b, 24);
    return this.notify(NOTIFY_DELETE, b);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /**
   * `giveBack` returns a large request's buffer to its reader once nothing uses it any more: only a
   * WRITE's, after the file system is done with its data (it copies what it keeps), so no view
   * of a buffer that has gone back is ever read.
   */
  private onRequest(buf: Buffer, giveBack?: () => void): void {
    if (buf.length < SIZE.IN_HEADER) {
      this.logger.error('fuse: short request', { length: buf.length });
      return;
    }
    const opcode = buf.readUInt32LE(4);
    const unique = u64(buf, 8);
    const nodeid = u64(buf, 16);
    const uid = buf.readUInt32LE(24);
    const gid = buf.readUInt32LE(28);
    const pid = buf.readUInt32LE(32);
    const extlen = buf.readUInt16LE(36) * 8;
    const body = buf.subarray(SIZE.IN_HEADER, buf.length - extlen);

    if (opcode !== Op.INIT) this.count(opcode);
    switch (opcode) {
      case Op.INIT:
        this.onInit(unique, body);
        return;
      case Op.FORGET:
        this.safeForget(nodeid, u64(body, 0));
        return;
      case Op.BATCH_FORGET: {
        const count = body.readUInt32LE(0);
        for (let i = 0; i < count; i++) {
          const o = 8 + i * 16;
          if (o + 16 > body.length) break;
          this.safeForget(u64(body, o), u64(body, o + 8));
        }
        return;
      }
      case Op.INTERRUPT: {
        const target = u64(body, 0);
        const f = this.inFlight.get(target);
        if (f) {
          f.interrupted = true;
          f.ctl?.abort(new Interrupted());
        } else {
          this.pendingInterrupts.add(target);
          if (this.pendingInterrupts.size > PENDING_INTERRUPTS_MAX) {
            const first = this.pendingInterrupts.values().next();
            if (!first.done) this.pendingInterrupts.delete(first.value);
          }
        }
        return;
      }
      case Op.NOTIFY_REPLY:
        return; // we never send RETRIEVE
    }

    if (!this.conn) {
      this.send(unique, EINVAL);
      return;
    }
    const flight: InFlight = { ctl: undefined, interrupted: this.pendingInterrupts.delete(unique) };
    this.inFlight.set(unique, flight);
    const req = new Request(opcode, unique, nodeid, uid, gid, pid, flight);
    if (this.trace) this.logger.debug('fuse <-', { op: opName(opcode), unique, nodeid, uid, pid });
    // Every answered request: silt_ops_total{frontend="fuse",op,outcome} and silt_op_seconds.
    const op = opName(opcode).toLowerCase();
    const endTimer = metrics.opSeconds.startTimer({ frontend: 'fuse', op });
    let p: Promise<void>;
    try {
      p = this.dispatch(req, body);
    } catch (e) {
      p = Promise.reject(e);
    }
    if (giveBack && opcode === Op.WRITE) p = p.finally(giveBack);
    p.then(
      () => {
        this.inFlight.delete(unique);
        endTimer();
        metrics.ops.inc({ frontend: 'fuse', op, outcome: 'ok' });
        if (this.trace) this.logger.debug('fuse ->', { op: opName(opcode), unique });
      },
      (e: unknown) => {
        this.inFlight.delete(unique);
        endTimer();
        const { errno, expected } = errnoFor(e);
        const code = (e as { errno?: unknown }).errno;
        metrics.ops.inc({ frontend: 'fuse', op, outcome: typeof code === 'string' ? code : expected ? `errno_${errno}` : 'EIO' });
        if (e instanceof WireError) {
          this.logger.error('fuse: malformed request', { op: opName(opcode), error: e.message });
          this.send(unique, EINVAL);
          return;
        }
        if (!expected) {
          this.logger.error('fuse request failed unexpectedly', {
            op: opName(opcode),
            nodeid,
            error: e instanceof Error ? (e.stack ?? e.message) : String(e),
          });
        } else if (this.trace) {
          this.logger.debug('fuse -> error', { op: opName(opcode), unique, errno });
        }
        this.send(unique, errno);
      },
    );
  }

  private safeForget(nodeid: number, nlookup: number): void {
    try {
      this.fsys.forget(nodeid, nlookup);
    } catch (e) {
      this.logger.error('fuse forget failed', { nodeid, error: String(e) });
    }
  }

  private onInit(unique: number, body: Buffer): void {
    const major = body.readUInt32LE(0);
    const minor = body.readUInt32LE(4);
    const maxReadahead = body.readUInt32LE(8);
    const flags = body.readUInt32LE(12);
    if (major !== FUSE_KERNEL_VERSION) {
      // Tell the kernel which major we speak; it may retry with it.
      const out = Buffer.alloc(SIZE.INIT_OUT);
      out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
      out.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 4);
      this.send(unique, 0, out.subarray(0, 8));
      if (major < FUSE_KERNEL_VERSION) this.initReject(new Error(`kernel FUSE major ${major} too old`));
      return;
    }
    if (minor < FUSE_MIN_MINOR_VERSION) {
      this.send(unique, EINVAL);
      this.initReject(new Error(`kernel FUSE 7.${minor} too old (need 7.${FUSE_MIN_MINOR_VERSION})`));
      return;
    }
    const agreed = (flags & WANTED_INIT_FLAGS) >>> 0;
    const maxPages = this.maxWrite / PAGE;
    const out = Buffer.alloc(SIZE.INIT_OUT);
    out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
    out.writeUInt32LE(Math.min(minor, FUSE_KERNEL_MINOR_VERSION), 4);
    out.writeUInt32LE(maxReadahead, 8);
    out.writeUInt32LE(agreed, 12);
    out.writeUInt16LE(this.maxBackground, 16);
    out.writeUInt16LE(Math.floor((this.maxBackground * 3) / 4), 18);
    out.writeUInt32LE(this.maxWrite, 20);
    out.writeUInt32LE(1, 24); // time_gran: 1 ns
    out.writeUInt16LE(maxPages, 28);
    this.conn = {
      kernelMajor: major,
      kernelMinor: minor,
      minor: Math.min(minor, FUSE_KERNEL_MINOR_VERSION),
      flags: agreed,
      maxWriteBytes: this.maxWrite,
      maxPages,
      maxReadaheadBytes: maxReadahead,
    };
    this.send(unique, 0, out);
    this.logger.debug('fuse INIT', { kernel: `${major}.${minor}`, flags: agreed.toString(16), maxWrite: this.maxWrite });
    this.initResolve(this.conn);
  }

  private entryReply(unique: number, e: EntryOut): void {
    if (!this.send(unique, 0, encodeEntryOut(e)) && e.nodeid !== 0) this.safeForget(e.nodeid, 1);
  }

  private count(opcode: number): void {
    const n = opName(opcode);
    this.counts.set(n, (this.counts.get(n) ?? 0) + 1);
  }

  /** Decode, call, reply. Throws (rejects) with the error to answer. */
  private async dispatch(req: Request, b: Buffer): Promise<void> {
    const f = this.fsys;
    const u = req.unique;
    const n = req.nodeid;
    switch (req.opcode) {
      case Op.LOOKUP: {
        const [name] = cstring(b, 0);
        return this.entryReply(u, await f.lookup(req, n, name));
      }
      case Op.GETATTR: {
        const getattrFlags = b.length >= 16 ? b.readUInt32LE(0) : 0;
        const fh = getattrFlags & GETATTR_FH ? u64(b, 8) : undefined;
        this.send(u, 0, encodeAttrOut(await f.getattr(req, n, fh)));
        return;
      }
      case Op.SETATTR: {
        const input: SetattrIn = {
          valid: b.readUInt32LE(0),
          fh: u64(b, 8),
          size: u64(b, 16),
          lockOwner: b.readBigUInt64LE(24),
          atimeNs: b.readBigInt64LE(32) * 1_000_000_000n + BigInt(b.readUInt32LE(56)),
          mtimeNs: b.readBigInt64LE(40) * 1_000_000_000n + BigInt(b.readUInt32LE(60)),
          ctimeNs: b.readBigInt64LE(48) * 1_000_000_000n + BigInt(b.readUInt32LE(64)),
          mode: b.readUInt32LE(68),
          uid: b.readUInt32LE(76),
          gid: b.readUInt32LE(80),
        };
        this.send(u, 0, encodeAttrOut(await f.setattr(req, n, input)));
        return;
      }
      case Op.READLINK: {
        this.send(u, 0, Buffer.from(await f.readlink(req, n), 'utf8'));
        return;
      }
      case Op.SYMLINK: {
        const [name, next] = cstring(b, 0);
        const [target] = cstring(b, next);
        return this.entryReply(u, await f.symlink(req, n, name, target));
      }
      case Op.MKNOD: {
        const mode = b.readUInt32LE(0);
        const rdev = b.readUInt32LE(4);
        const [name] = cstring(b, 16);
        return this.entryReply(u, await f.mknod(req, n, name, mode, rdev));
      }
      case Op.MKDIR: {
        const mode = b.readUInt32LE(0);
        const [name] = cstring(b, 8);
        return this.entryReply(u, await f.mkdir(req, n, name, mode));
      }
      case Op.UNLINK: {
        const [name] = cstring(b, 0);
        await f.unlink(req, n, name);
        this.send(u, 0);
        return;
      }
      case Op.RMDIR: {
        const [name] = cstring(b, 0);
        await f.rmdir(req, n, name);
        this.send(u, 0);
        return;
      }
      case Op.RENAME:
      case Op.RENAME2: {
        const newdir = u64(b, 0);
        const flags = req.opcode === Op.RENAME2 ? b.readUInt32LE(8) : 0;
        const [oldName, next] = cstring(b, req.opcode === Op.RENAME2 ? 16 : 8);
        const [newName] = cstring(b, next);
        await f.rename(req, n, oldName, newdir, newName, flags);
        this.send(u, 0);
        return;
      }
      case Op.LINK: {
        const old = u64(b, 0);
        const [name] = cstring(b, 8);
        return this.entryReply(u, await f.link(req, old, n, name));
      }
      case Op.OPEN: {
        this.send(u, 0, encodeOpenOut(await f.open(req, n, b.readUInt32LE(0), b.readUInt32LE(4))));
        return;
      }
      case Op.READ: {
        const rsize = b.readUInt32LE(16);
        if (rsize > this.sizes.maxReadBytes) this.sizes.maxReadBytes = rsize;
        const data = await f.read(req, n, u64(b, 0), u64(b, 8), b.readUInt32LE(16));
        try {
          this.send(u, 0, data.parts);
        } finally {
          data.release();
        }
        return;
      }
      case Op.WRITE: {
        const size = b.readUInt32LE(16);
        const data = b.subarray(SIZE.WRITE_IN, SIZE.WRITE_IN + size);
        if (data.length !== size) throw new WireError('short WRITE payload');
        if (size > this.sizes.maxWriteBytes) this.sizes.maxWriteBytes = size;
        const written = await f.write(req, n, u64(b, 0), u64(b, 8), data, b.readUInt32LE(20));
        this.send(u, 0, encodeU32Out(written));
        return;
      }
      case Op.STATFS: {
        this.send(u, 0, encodeStatfsOut(await f.statfs(req, n)));
        return;
      }
      case Op.RELEASE: {
        await f.release(req, n, u64(b, 0), b.readUInt32LE(12), b.readBigUInt64LE(16));
        this.send(u, 0);
        return;
      }
      case Op.FSYNC:
      case Op.FSYNCDIR: {
        const dataOnly = (b.readUInt32LE(8) & FSYNC_FDATASYNC) !== 0;
        if (req.opcode === Op.FSYNC) await f.fsync(req, n, u64(b, 0), dataOnly);
        else await f.fsyncdir(req, n, u64(b, 0), dataOnly);
        this.send(u, 0);
        return;
      }
      case Op.SETXATTR: {
        const size = b.readUInt32LE(0);
        const flags = b.readUInt32LE(4);
        // Without SETXATTR_EXT the in-struct is the 8-byte compat one.
        const ext = this.conn !== undefined && (this.conn.flags & Init.SETXATTR_EXT) !== 0;
        const [name, next] = cstring(b, ext ? 16 : 8);
        const value = b.subarray(next, next + size);
        if (value.length !== size) throw new WireError('short SETXATTR value');
        await f.setxattr(req, n, name, value, flags);
        this.send(u, 0);
        return;
      }
      case Op.GETXATTR: {
        const size = b.readUInt32LE(0);
        const [name] = cstring(b, 8);
        const value = await f.getxattr(req, n, name);
        this.sizedReply(u, size, value);
        return;
      }
      case Op.LISTXATTR: {
        const size = b.readUInt32LE(0);
        const names = await f.listxattr(req, n);
        const value = Buffer.from(names.map((s) => s + '\0').join(''), 'utf8');
        this.sizedReply(u, size, value);
        return;
      }
      case Op.REMOVEXATTR: {
        const [name] = cstring(b, 0);
        await f.removexattr(req, n, name);
        this.send(u, 0);
        return;
      }
      case Op.FLUSH: {
        await f.flush(req, n, u64(b, 0), b.readBigUInt64LE(16));
        this.send(u, 0);
        return;
      }
      case Op.OPENDIR: {
        this.send(u, 0, encodeOpenOut(await f.opendir(req, n, b.readUInt32LE(0))));
        return;
      }
      case Op.READDIR:
      case Op.READDIRPLUS: {
        const size = b.readUInt32LE(16);
        const out = new DirBuffer(size, req.opcode === Op.READDIRPLUS);
        await f.readdir(req, n, u64(b, 0), b.readBigUInt64LE(8), out);
        if (!this.send(u, 0, out.bytes())) for (const id of out.lookups) this.safeForget(id, 1);
        return;
      }
      case Op.RELEASEDIR: {
        await f.releasedir(req, n, u64(b, 0));
        this.send(u, 0);
        return;
      }
      case Op.GETLK:
      case Op.SETLK:
      case Op.SETLKW: {
        const lk = {
          fh: u64(b, 0),
          owner: b.readBigUInt64LE(8),
          lock: decodeFileLock(b, 16),
          flock: (b.readUInt32LE(40) & LK_FLOCK) !== 0,
        };
        if (req.opcode === Op.GETLK) {
          this.send(u, 0, encodeLkOut(await f.getlk(req, n, lk)));
        } else {
          await f.setlk(req, n, lk, req.opcode === Op.SETLKW);
          this.send(u, 0);
        }
        return;
      }
      case Op.ACCESS: {
        await f.access(req, n, b.readUInt32LE(0));
        this.send(u, 0);
        return;
      }
      case Op.CREATE: {
        const flags = b.readUInt32LE(0);
        const mode = b.readUInt32LE(4);
        const openFlags = b.readUInt32LE(12);
        const [name] = cstring(b, 16);
        const r = await f.create(req, n, name, mode, flags, openFlags);
        const ok = this.send(u, 0, [encodeEntryOut(r.entry), encodeOpenOut(r.open)]);
        if (!ok) {
          // The kernel never saw the handle or the entry: give both back.
          await f.release(req, r.entry.nodeid, r.open.fh, 0, 0n).catch(() => {});
          this.safeForget(r.entry.nodeid, 1);
        }
        return;
      }
      case Op.FALLOCATE: {
        await f.fallocate(req, n, u64(b, 0), u64(b, 8), u64(b, 16), b.readUInt32LE(24));
        this.send(u, 0);
        return;
      }
      case Op.LSEEK: {
        const off = await f.lseek(req, n, u64(b, 0), u64Clamped(b, 8), b.readUInt32LE(16));
        this.send(u, 0, encodeU64Out(off));
        return;
      }
      case Op.SYNCFS: {
        await f.syncfs(req);
        this.send(u, 0);
        return;
      }
      case Op.DESTROY: {
        this.send(u, 0);
        return;
      }
      default:
        // STATX, IOCTL, POLL, BMAP, COPY_FILE_RANGE, TMPFILE, ...: the kernel falls back or fails.
        this.send(u, ENOSYS);
        return;
    }
  }

  /** GETXATTR/LISTXATTR: size 0 asks for the length; a smaller buffer is ERANGE. */
  private sizedReply(unique: number, size: number, value: Uint8Array): void {
    if (size === 0) this.send(unique, 0, encodeU32Out(value.length));
    else if (value.length > size) this.send(unique, ERRNO.ERANGE);
    else this.send(unique, 0, value);
  }

  /** Requests in progress (for diagnostics). */
  get pending(): number {
    return this.inFlight.size;
  }
}
