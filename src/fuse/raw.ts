/**
 * The raw FUSE operations, decoded but not interpreted: what the protocol layer (session.ts) calls
 * and what the bridge (bridge.ts) implements. Node ids and handles are plain numbers; every method
 * may throw (FsError -> -errno, see errors.ts). Like go-fuse's RawFileSystem.
 */
import type { Borrowed } from '../util/index.ts';
import type { AttrOut, DirBuffer, EntryOut, FileLock, OpenOut, StatfsOut } from './wire.ts';

/** Who sent a request and a way to learn that the kernel interrupted it. */
export interface FuseRequest {
  readonly opcode: number;
  readonly unique: number;
  readonly nodeid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Aborted when the kernel sends INTERRUPT for this request (created on first use). */
  readonly signal: AbortSignal;
}

export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  lockOwner: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenOut;
}

export interface LockRequest {
  fh: number;
  owner: bigint;
  lock: FileLock;
  /** FUSE_LK_FLOCK: this is flock(2), not fcntl(2). */
  flock: boolean;
}

export interface RawFileSystem {
  lookup(req: FuseRequest, parent: number, name: string): Promise<EntryOut>;
  /** No reply. The kernel dropped `nlookup` references to `nodeid`. */
  forget(nodeid: number, nlookup: number): void;
  getattr(req: FuseRequest, nodeid: number, fh: number | undefined): Promise<AttrOut>;
  setattr(req: FuseRequest, nodeid: number, input: SetattrIn): Promise<AttrOut>;
  readlink(req: FuseRequest, nodeid: number): Promise<string>;
  symlink(req: FuseRequest, parent: number, name: string, target: string): Promise<EntryOut>;
  mknod(req: FuseRequest, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut>;
  mkdir(req: FuseRequest, parent: number, name: string, mode: number): Promise<EntryOut>;
  unlink(req: FuseRequest, parent: number, name: string): Promise<void>;
  rmdir(req: FuseRequest, parent: number, name: string): Promise<void>;
  rename(
    req: FuseRequest,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void>;
  link(req: FuseRequest, nodeid: number, newParent: number, newName: string): Promise<EntryOut>;
  open(req: FuseRequest, nodeid: number, flags: number, openFlags: number): Promise<OpenOut>;
  /**
   * The bytes, borrowed: pieces written to the device in one writev (not copied together), then
   * released (fs readv).
   */
  read(req: FuseRequest, nodeid: number, fh: number, offset: number, size: number): Promise<Borrowed>;
  write(
    req: FuseRequest,
    nodeid: number,
    fh: number,
    offset: number,
    data: Uint8Array,
    writeFlags: number,
  ): Promise<number>;
  statfs(req: FuseRequest, nodeid: number): Promise<StatfsOut>;
  release(req: FuseRequest, nodeid: number, fh: number, releaseFlags: number, lockOwner: bigint): Promise<void>;
  fsync(req: FuseRequest, nodeid: number, fh: number, dataOnly: boolean): Promise<void>;
  setxattr(req: FuseRequest, nodeid: number, name: string, value: Uint8Array, flags: number): Promise<void>;
  getxattr(req: FuseRequest, nodeid: number, name: string): Promise<Uint8Array>;
  listxattr(req: FuseRequest, nodeid: number): Promise<string[]>;
  removexattr(req: FuseRequest, nodeid: number, name: string): Promise<void>;
  flush(req: FuseRequest, nodeid: number, fh: number, lockOwner: bigint): Promise<void>;
  opendir(req: FuseRequest, nodeid: number, flags: number): Promise<OpenOut>;
  /** Fill `out` with entries after `offset` (a cookie); stop when it is full. */
  readdir(req: FuseRequest, nodeid: number, fh: number, offset: bigint, out: DirBuffer): Promise<void>;
  releasedir(req: FuseRequest, nodeid: number, fh: number): Promise<void>;
  fsyncdir(req: FuseRequest, nodeid: number, fh: number, dataOnly: boolean): Promise<void>;
  getlk(req: FuseRequest, nodeid: number, lk: LockRequest): Promise<FileLock>;
  /** SETLK (`wait` false) and SETLKW (`wait` true; aborts with req.signal). */
  setlk(req: FuseRequest, nodeid: number, lk: LockRequest, wait: boolean): Promise<void>;
  access(req: FuseRequest, nodeid: number, mask: number): Promise<void>;
  create(req: FuseRequest, parent: number, name: string, mode: number, flags: number, openFlags: number): Promise<CreateOut>;
  fallocate(req: FuseRequest, nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void>;
  lseek(req: FuseRequest, nodeid: number, fh: number, offset: number, whence: number): Promise<number>;
  syncfs(req: FuseRequest): Promise<void>;
  /** The connection is gone (unmount, abort, or DESTROY): release whatever the kernel held. */
  destroy(): Promise<void>;
}
