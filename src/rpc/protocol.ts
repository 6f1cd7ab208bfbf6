/**
 * The wire protocol shared by the server and the client: limits, error codes, and the JSON shapes
 * of results. Parameter shapes (and their validation) live in schema.ts.
 *
 * Number encoding (docs/RPC.md): inode numbers, mount ids, sizes, offsets and counts are JSON
 * numbers, always safe integers (the engine never hands out an inode above 2^53 - 1 and files are
 * capped at 2^52 bytes). Times are decimal strings of nanoseconds since the epoch (they exceed
 * 2^53). Directory cookies are decimal strings of unsigned 64-bit integers. Binary data (file
 * bytes, xattr values) is base64 (RFC 4648, with padding).
 */
import type { Attr, DirEntry, DirEntryPlus, StatFs } from '../fs/index.ts';
import { isAscii } from 'node:buffer';
import { ERRNO, FsError, type Errno } from '../util/index.ts';

export const PROTOCOL_VERSION = 1;

/** Most bytes one RpcRead returns or one RpcWrite carries (decoded); base64 of it fits a frame. */
export const DATA_BYTES_MAX = 8 * 1024 * 1024;
/**
 * Binary frame (for RpcWrite and RpcRead payloads without base64 and JSON escaping):
 *   0x00 | header length H (u32 BE) | payload length N (u32 BE) | H bytes of JSON | N bytes
 * A JSON line never starts with NUL, so the first byte tells the two apart.
 */
export const FRAME_MARK = 0x00;
export const FRAME_PREFIX_BYTES = 9;
/** Longest JSON header of a binary frame. */
export const FRAME_HEADER_BYTES_MAX = 64 * 1024;

/** Methods that may come as a binary frame: the payload is RpcWrite's data; RpcRead's comes back in one. */
export const BINARY_METHODS: ReadonlySet<string> = new Set(['RpcWrite', 'RpcRead']);

export function encodeFrame(header: string, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + h.length + payload.length);
  out[0] = FRAME_MARK;
  out.writeUInt32BE(h.length, 1);
  out.writeUInt32BE(payload.length, 5);
  h.copy(out, FRAME_PREFIX_BYTES);
  out.set(payload, FRAME_PREFIX_BYTES + h.length);
  return out;
}

/**
 * Incremental reader of a stream that mixes newline-terminated JSON lines and binary frames.
 * `push` a chunk, get back the complete items. Lines longer than `lineBytesMax` come back as
 * `{tooLong: true}` once (the rest of that line is skipped); a frame whose prefix is out of bounds
 * comes back as `{badFrame}`, after which the stream cannot be resynchronised.
 */
export type StreamItem =
  | { line: Buffer }
  | { header: Buffer; payload: Buffer }
  | { tooLong: true }
  | { badFrame: string };

export class FrameReader {
  private parts: Buffer[] = [];
  private bytes = 0;
  private discarding = false;
  /** Bytes still wanted for the frame being read (prefix first, then header + payload). */
  private frameNeed = 0;
  private frameLens: { h: number; n: number } | null = null;
  private broken = false;

  constructor(
    private readonly lineBytesMax: number,
    private readonly payloadBytesMax: number,
  ) {}

  /** Bytes of an unfinished line or frame held (0 between items). */
  get partialBytes(): number {
    return this.bytes + (this.discarding ? 1 : 0) + (this.frameNeed > 0 ? 1 : 0);
  }

  push(chunk: Buffer): StreamItem[] {
    const out: StreamItem[] = [];
    let i = 0;
    while (i < chunk.length && !this.broken) {
      if (this.frameNeed > 0) {
        const take = Math.min(this.frameNeed, chunk.length - i);
        this.parts.push(chunk.subarray(i, i + take));
        this.bytes += take;
        this.frameNeed -= take;
        i += take;
        if (this.frameNeed === 0) this.frameStep(out);
        continue;
      }
      if (this.bytes === 0 && !this.discarding && chunk[i] === FRAME_MARK) {
        this.frameNeed = FRAME_PREFIX_BYTES;
        this.frameLens = null;
        continue;
      }
      const nl = chunk.indexOf(0x0a, i);
      const end = nl === -1 ? chunk.length : nl;
      if (this.discarding) {
        if (nl !== -1) this.discarding = false;
      } else if (end > i) {
        this.parts.push(chunk.subarray(i, end));
        this.bytes += end - i;
        if (this.bytes > this.lineBytesMax) {
          this.parts = [];
          this.bytes = 0;
          out.push({ tooLong: true });
          if (nl === -1) this.discarding = true;
        }
      }
      if (nl === -1) break;
      if (this.bytes > 0) out.push({ line: this.take() });
      i = nl + 1;
    }
    return out;
  }

  private take(): Buffer {
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return b;
  }

  private frameStep(out: StreamItem[]): void {
    const b = this.take();
    if (!this.frameLens) {
      const h = b.readUInt32BE(1);
      const n = b.readUInt32BE(5);
      if (h === 0 || h > FRAME_HEADER_BYTES_MAX || n > this.payloadBytesMax) {
        this.broken = true;
        out.push({ badFrame: `binary frame with a ${h}-byte header and a ${n}-byte payload (limits ${FRAME_HEADER_BYTES_MAX} and ${this.payloadBytesMax})` });
        return;
      }
      this.frameLens = { h, n };
      this.frameNeed = h + n;
      return;
    }
    const { h } = this.frameLens;
    this.frameLens = null;
    out.push({ header: b.subarray(0, h), payload: b.subarray(h) });
  }
}

/** Decode a line or header: pure ASCII (all base64 payloads) as latin1, at a fraction of UTF-8's cost. */
export function decodeText(b: Buffer): string {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  const t = end === b.length ? b : b.subarray(0, end);
  return t.toString(isAscii(t) ? 'latin1' : 'utf8');
}

/** Most entries one RpcReaddir returns. */
export const READDIR_ENTRIES_MAX = 4096;

/** Limits of one server; each is a maximum of something that would otherwise grow without bound. */
export interface RpcLimits {
  /** Longest request line (bytes, excluding the newline). Longer lines get -32600 E2BIG and are skipped. */
  frameBytesMax: number;
  /** Requests of one connection being executed at once; further lines wait (reading pauses). */
  inflightMax: number;
  /** Connections at once; further connections are closed at once. */
  connectionsMax: number;
  /** Entries in one batch (JSON array) request. */
  batchMax: number;
  /** Reply bytes buffered for a connection before its reading pauses (a client that does not read). */
  outputBytesMax: number;
  /** A connection must authenticate within this long, or it is closed. */
  authTimeoutMs: number;
  /** A connection with no request in flight and no traffic for this long is closed. */
  idleTimeoutMs: number;
  /** A partial line older than this (a slow or stuck sender) closes the connection. */
  frameTimeoutMs: number;
  /** On shutdown, how long in-flight requests may take to finish. */
  drainTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<RpcLimits> = Object.freeze({
  frameBytesMax: 16 * 1024 * 1024,
  inflightMax: 64,
  connectionsMax: 1024,
  batchMax: 64,
  outputBytesMax: 16 * 1024 * 1024,
  authTimeoutMs: 10_000,
  idleTimeoutMs: 600_000,
  frameTimeoutMs: 60_000,
  drainTimeoutMs: 10_000,
});

/** JSON-RPC 2.0 error codes used by Silt. Every error also carries `data: {errno, code}`. */
export const RPC_ERROR = {
  /** The line is not JSON. */
  PARSE: -32700,
  /** Not a JSON-RPC 2.0 request object (or the frame is too large). */
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  /** Parameters missing, of the wrong type, or unknown. `data.issues` says which. */
  INVALID_PARAMS: -32602,
  /** A bug in the server; logged there. */
  INTERNAL: -32603,
  /** The file system refused: `data.errno` is the POSIX error. */
  FS: -32000,
  /** Not authenticated, or a bad token (which also closes the connection). */
  UNAUTHORIZED: -32001,
} as const;

export interface RpcErrorData {
  /** errno name, e.g. "ENOENT". */
  errno: Errno;
  /** errno number (Linux), e.g. 2. */
  code: number;
  /** For -32602: what was wrong with which parameter. */
  issues?: { path: string; message: string }[];
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data: RpcErrorData;
}

export type RpcId = string | number | null;

export function rpcError(code: number, message: string, errno: Errno, extra: Partial<RpcErrorData> = {}): RpcErrorObject {
  return { code, message, data: { errno, code: ERRNO[errno], ...extra } };
}

/** The reply line (without the newline) for one request. */
export function replyLine(id: RpcId, r: { result: unknown } | { error: RpcErrorObject }): string {
  return JSON.stringify('error' in r ? { jsonrpc: '2.0', id, error: r.error } : { jsonrpc: '2.0', id, result: r.result });
}

// ------------------------------------------------------------------------------- result shapes

/** An inode's attributes on the wire (`RpcGetStat`, and `attr` in many results). */
export interface WireStat {
  inode: number;
  /** Type and permission bits (st_mode). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  /** Nanoseconds since the epoch, as a decimal string. */
  atime: string;
  mtime: string;
  ctime: string;
  /** Birth time. */
  crtime: string;
  /** Bumped on every change of content or metadata. */
  generation: number;
}

export interface WireDirEntry {
  name: string;
  inode: number;
  /** File type bits (mode & S_IFMT). */
  type: number;
  /** Pass back as `cookie` to continue after this entry (decimal u64 string). */
  cookie: string;
  /** Only with `plus: true`. */
  attr?: WireStat;
}

export interface WireStatVFS {
  blockSize: number;
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  nameMax: number;
}

/** A snapshot: a retained commit of the volume. */
export interface WireSnapshot {
  name: string;
  /** The commit sequence it retains. */
  commit: number;
  /** When it was taken, ms since the epoch. */
  createdMs: number;
}

/** Result of every call that makes or finds a directory entry. */
export interface WireEntry {
  inode: number;
  attr: WireStat;
}

export function statToWire(a: Attr): WireStat {
  return {
    inode: a.ino,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    size: a.size,
    blocks: a.blocks,
    atime: a.atimeNs.toString(),
    mtime: a.mtimeNs.toString(),
    ctime: a.ctimeNs.toString(),
    crtime: a.crtimeNs.toString(),
    generation: a.generation,
  };
}

export function statFromWire(w: WireStat): Attr {
  return {
    ino: w.inode,
    mode: w.mode,
    nlink: w.nlink,
    uid: w.uid,
    gid: w.gid,
    rdev: w.rdev,
    size: w.size,
    blocks: w.blocks,
    atimeNs: BigInt(w.atime),
    mtimeNs: BigInt(w.mtime),
    ctimeNs: BigInt(w.ctime),
    crtimeNs: BigInt(w.crtime),
    generation: w.generation,
  };
}

export function entryToWire(e: DirEntry | DirEntryPlus): WireDirEntry {
  const w: WireDirEntry = { name: e.name, inode: e.ino, type: e.type, cookie: e.cookie.toString() };
  if ('attr' in e) w.attr = statToWire(e.attr);
  return w;
}

export function statVfsToWire(s: StatFs): WireStatVFS {
  return { ...s };
}

export function toBase64(u: Uint8Array): string {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
}

export function fromBase64(s: string): Buffer {
  return Buffer.from(s, 'base64');
}

/** The FsError a client raises for an error reply (the server's errno, or EIO if it has none). */
export function fsErrorFromRpc(method: string, e: { code?: unknown; message?: unknown; data?: unknown }): FsError {
  const data = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as { errno?: unknown; code?: unknown };
  let errno: Errno = 'EIO';
  if (typeof data.errno === 'string' && data.errno in ERRNO) errno = data.errno as Errno;
  else if (typeof data.code === 'number') {
    const hit = (Object.entries(ERRNO) as [Errno, number][]).find(([, n]) => n === data.code);
    if (hit) errno = hit[0];
  }
  const msg = typeof e.message === 'string' ? e.message : 'error';
  // The server's message already starts with the errno name for file-system errors.
  const text = msg.startsWith(`${errno}: `) ? msg.slice(errno.length + 2) : msg === errno ? '' : msg;
  return new FsError(errno, `${method}: ${text || errno} (rpc ${String(e.code)})`);
}

/** Results, by method: what a client gets back. */
export interface MethodResults {
  RpcPing: { pong: true; protocol: number; serverId: string; timeNs: string };
  RpcAuth: Record<string, never>;
  RpcMount: { mountId: number; rootInode: number; volume: string; serverId: string; protocol: number };
  RpcUnmount: Record<string, never>;
  RpcLookup: WireEntry;
  RpcLookupPath: WireEntry;
  RpcGetStat: WireStat;
  RpcSetStat: WireStat;
  RpcResize: WireStat;
  RpcCreate: WireEntry;
  RpcMkdir: WireEntry;
  RpcMknod: WireEntry;
  RpcSymlink: WireEntry;
  RpcReadSymlink: { target: string };
  RpcLink: WireEntry;
  RpcUnlink: Record<string, never>;
  RpcRmdir: Record<string, never>;
  RpcRename: Record<string, never>;
  RpcReaddir: { entries: WireDirEntry[]; eof: boolean };
  RpcOpen: WireStat;
  RpcRelease: Record<string, never>;
  RpcRead: { data: string; eof: boolean };
  RpcWrite: { size: number };
  RpcFlush: Record<string, never>;
  RpcSync: Record<string, never>;
  RpcFallocate: Record<string, never>;
  RpcSeek: { offset: number };
  RpcAccess: Record<string, never>;
  RpcPin: Record<string, never>;
  RpcUnpin: Record<string, never>;
  RpcGetXAttr: { value: string };
  RpcSetXAttr: Record<string, never>;
  RpcListXAttr: { names: string[] };
  RpcRemoveXAttr: Record<string, never>;
  RpcStatVFS: WireStatVFS;
  RpcSnapShotCreate: WireSnapshot;
  RpcSnapShotDelete: Record<string, never>;
  RpcSnapShotList: { snapshots: WireSnapshot[] };
}
