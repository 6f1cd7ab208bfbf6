/**
 * The kernel FUSE wire format (linux/fuse.h, protocol 7.38 as we answer it): opcodes, flag bits,
 * struct sizes, and encoders/decoders for the structs we use. Little-endian, 64-bit aligned.
 * Nothing here knows about the `fs` layer.
 */
import { FsError } from '../util/index.ts';

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we speak (and answer INIT with when the kernel is newer). */
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** Oldest kernel minor we accept (max_pages needs 7.28, lseek 7.24, rename2 7.23). */
export const FUSE_MIN_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;
export type OpName = keyof typeof Op;

const opNames = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));
export function opName(opcode: number): string {
  return opNames.get(opcode) ?? `OP_${opcode}`;
}

/** INIT flags (low 32 bits in `flags`, high 32 in `flags2`). */
export const Init = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
} as const;

export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

export const FOPEN = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
} as const;

export const RELEASE_FLUSH = 1 << 0;
export const RELEASE_FLOCK_UNLOCK = 1 << 1;
export const GETATTR_FH = 1 << 0;
export const LK_FLOCK = 1 << 0;
export const WRITE_CACHE = 1 << 0;
export const WRITE_LOCKOWNER = 1 << 1;
export const WRITE_KILL_SUIDGID = 1 << 2;
export const FSYNC_FDATASYNC = 1 << 0;
export const OPEN_KILL_SUIDGID = 1 << 0;

export const NOTIFY_INVAL_INODE = 2;
export const NOTIFY_INVAL_ENTRY = 3;
export const NOTIFY_DELETE = 6;

/** fcntl lock types (Linux). */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

/** renameat2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

/** setxattr flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export const SIZE = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  WRITE_OUT: 8,
  STATFS_OUT: 80,
  GETXATTR_OUT: 8,
  LK_OUT: 24,
  LSEEK_OUT: 8,
  INIT_OUT: 64,
  DIRENT: 24,
  DIRENTPLUS: 152,
  WRITE_IN: 40,
} as const;

/** Largest lock offset (OFFSET_MAX): "to the end of the file". */
export const OFFSET_MAX = 0x7fffffffffffffffn;

// ---------------------------------------------------------------------------------------------
// Reading helpers

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A u64 that the protocol guarantees fits (node ids, handles, offsets below 2^53). */
export function u64(buf: Buffer, off: number): number {
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  if (hi >= 0x200000) throw new WireError(`u64 at ${off} exceeds 2^53`);
  return hi * 0x100000000 + lo;
}

/** A u64 offset that may be huge (lock ranges, lseek); clamped to the safe-integer range. */
export function u64Clamped(buf: Buffer, off: number): number {
  const v = buf.readBigUInt64LE(off);
  return v > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(v);
}

export class WireError extends Error {
  override readonly name = 'WireError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A NUL-terminated name starting at `off`; returns the string and the offset after the NUL. */
export function cstring(buf: Buffer, off: number, end: number = buf.length): [string, number] {
  let nul = buf.indexOf(0, off);
  if (nul < 0 || nul >= end) nul = end; // tolerate a missing terminator at the end
  let s: string;
  try {
    s = utf8.decode(buf.subarray(off, nul));
  } catch {
    throw new FsError('EINVAL', 'name is not valid UTF-8');
  }
  return [s, nul + 1];
}

// ---------------------------------------------------------------------------------------------
// Writing helpers

export interface WireAttr {
  ino: number;
  size: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
}

const NS = 1_000_000_000n;

function putTime(buf: Buffer, secOff: number, nsecOff: number, ns: bigint): void {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  buf.writeBigInt64LE(sec, secOff);
  buf.writeUInt32LE(Number(nsec), nsecOff);
}

function putU64(buf: Buffer, off: number, v: number): void {
  // Accept any non-negative safe integer without a BigInt round trip.
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / 0x100000000) >>> 0, off + 4);
}
export { putU64 };

/** Preferred I/O size reported in st_blksize. */
export const BLKSIZE = 1 << 20;

export function putAttr(buf: Buffer, off: number, a: WireAttr): void {
  putU64(buf, off, a.ino);
  putU64(buf, off + 8, a.size);
  putU64(buf, off + 16, a.blocks);
  putTime(buf, off + 24, off + 48, a.atimeNs);
  putTime(buf, off + 32, off + 52, a.mtimeNs);
  putTime(buf, off + 40, off + 56, a.ctimeNs);
  buf.writeUInt32LE(a.mode >>> 0, off + 60);
  buf.writeUInt32LE(a.nlink >>> 0, off + 64);
  buf.writeUInt32LE(a.uid >>> 0, off + 68);
  buf.writeUInt32LE(a.gid >>> 0, off + 72);
  buf.writeUInt32LE(a.rdev >>> 0, off + 76);
  buf.writeUInt32LE(BLKSIZE, off + 80);
  buf.writeUInt32LE(0, off + 84);
}

function putTimeout(buf: Buffer, secOff: number, nsecOff: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  putU64(buf, secOff, sec);
  buf.writeUInt32LE(Math.round((ms - sec * 1000) * 1e6), nsecOff);
}

export interface EntryOut {
  /** 0 with ENOENT semantics = a negative entry cached for entryTimeoutMs. */
  nodeid: number;
  generation: number;
  entryTimeoutMs: number;
  attrTimeoutMs: number;
  attr: WireAttr | undefined;
}

export function putEntryOut(buf: Buffer, off: number, e: EntryOut): void {
  buf.fill(0, off, off + SIZE.ENTRY_OUT);
  putU64(buf, off, e.nodeid);
  putU64(buf, off + 8, e.generation);
  putTimeout(buf, off + 16, off + 32, e.entryTimeoutMs);
  putTimeout(buf, off + 24, off + 36, e.attrTimeoutMs);
  if (e.attr) putAttr(buf, off + 40, e.attr);
}

export interface AttrOut {
  attrTimeoutMs: number;
  attr: WireAttr;
}

export function encodeAttrOut(a: AttrOut): Buffer {
  const b = Buffer.alloc(SIZE.ATTR_OUT);
  putTimeout(b, 0, 8, a.attrTimeoutMs);
  putAttr(b, 16, a.attr);
  return b;
}

export function encodeEntryOut(e: EntryOut): Buffer {
  const b = Buffer.allocUnsafe(SIZE.ENTRY_OUT);
  putEntryOut(b, 0, e);
  return b;
}

export interface OpenOut {
  fh: number;
  /** FOPEN_* bits. */
  openFlags: number;
}

export function encodeOpenOut(o: OpenOut): Buffer {
  const b = Buffer.alloc(SIZE.OPEN_OUT);
  putU64(b, 0, o.fh);
  b.writeUInt32LE(o.openFlags >>> 0, 8);
  return b;
}

export interface StatfsOut {
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  blockSize: number;
  nameMax: number;
}

export function encodeStatfsOut(s: StatfsOut): Buffer {
  const b = Buffer.alloc(SIZE.STATFS_OUT);
  putU64(b, 0, s.blocks);
  putU64(b, 8, s.blocksFree);
  putU64(b, 16, s.blocksAvailable);
  putU64(b, 24, s.files);
  putU64(b, 32, s.filesFree);
  b.writeUInt32LE(s.blockSize >>> 0, 40);
  b.writeUInt32LE(s.nameMax >>> 0, 44);
  b.writeUInt32LE(s.blockSize >>> 0, 48); // frsize
  return b;
}

export function encodeU32Out(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

export function encodeU64Out(v: number): Buffer {
  const b = Buffer.alloc(8);
  putU64(b, 0, v);
  return b;
}

/** A POSIX lock range as the kernel sends it: inclusive end, OFFSET_MAX = to EOF. */
export interface FileLock {
  start: bigint;
  end: bigint;
  type: number;
  pid: number;
}

export function decodeFileLock(buf: Buffer, off: number): FileLock {
  return {
    start: buf.readBigUInt64LE(off),
    end: buf.readBigUInt64LE(off + 8),
    type: buf.readUInt32LE(off + 16),
    pid: buf.readUInt32LE(off + 20),
  };
}

export function encodeLkOut(l: FileLock): Buffer {
  const b = Buffer.alloc(SIZE.LK_OUT);
  b.writeBigUInt64LE(l.start, 0);
  b.writeBigUInt64LE(l.end, 8);
  b.writeUInt32LE(l.type >>> 0, 16);
  b.writeUInt32LE(l.pid >>> 0, 20);
  return b;
}

/** DT_* type from S_IFMT bits. */
export function direntType(mode: number): number {
  return (mode & 0o170000) >>> 12;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Fills a READDIR or READDIRPLUS reply up to the size the kernel asked for. For READDIRPLUS it
 * records which node ids it handed to the kernel (each one is a lookup reference), so that the
 * session can give them back if the reply never reaches the kernel.
 */
export class DirBuffer {
  private readonly buf: Buffer;
  private used = 0;
  /** Node ids given to the kernel with a lookup reference (READDIRPLUS only). */
  readonly lookups: number[] = [];
  constructor(
    readonly size: number,
    readonly plus: boolean,
  ) {
    this.buf = Buffer.alloc(size);
  }
  get length(): number {
    return this.used;
  }
  /** Append a READDIR entry; false when it does not fit (the caller stops there). */
  add(name: string, ino: number, type: number, nextOffset: bigint): boolean {
    const nameBytes = Buffer.from(name, 'utf8');
    const rec = align8(SIZE.DIRENT + nameBytes.length);
    if (this.used + rec > this.size) return false;
    const o = this.used;
    putU64(this.buf, o, ino);
    this.buf.writeBigUInt64LE(nextOffset, o + 8);
    this.buf.writeUInt32LE(nameBytes.length, o + 16);
    this.buf.writeUInt32LE(type, o + 20);
    nameBytes.copy(this.buf, o + 24);
    this.used += rec;
    return true;
  }
  /**
   * Append a READDIRPLUS entry. `entry.nodeid` 0 means "no lookup" (used for "." and ".."); any
   * other node id is a lookup reference the kernel now holds.
   */
  addPlus(name: string, type: number, nextOffset: bigint, entry: EntryOut): boolean {
    const nameBytes = Buffer.from(name, 'utf8');
    const rec = align8(SIZE.DIRENTPLUS + nameBytes.length);
    if (this.used + rec > this.size) return false;
    const o = this.used;
    putEntryOut(this.buf, o, entry);
    const d = o + SIZE.ENTRY_OUT;
    putU64(this.buf, d, entry.attr?.ino ?? 0);
    this.buf.writeBigUInt64LE(nextOffset, d + 8);
    this.buf.writeUInt32LE(nameBytes.length, d + 16);
    this.buf.writeUInt32LE(type, d + 20);
    nameBytes.copy(this.buf, d + 24);
    this.used += rec;
    if (entry.nodeid !== 0) this.lookups.push(entry.nodeid);
    return true;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}
