/**
 * The file-system API every front end (FUSE, RPC, object API, Samba via FUSE) calls.
 * Inode numbers are JS numbers (safe integers; stored as u64 on the store). Times are bigint
 * nanoseconds since the epoch. Every method rejects with FsError (an errno) and nothing else.
 */

import type { Borrowed } from '../util/index.ts';

export type { Borrowed };

/** Who is asking: permission checks use these. uid 0 bypasses mode checks as on Linux. */
export interface Identity {
  uid: number;
  gid: number;
  /** Supplementary groups (may be empty). */
  groups: readonly number[];
  pid?: number;
}

export const ROOT_INODE = 1;

export {
  S_IFMT,
  S_IFSOCK,
  S_IFLNK,
  S_IFREG,
  S_IFBLK,
  S_IFDIR,
  S_IFCHR,
  S_IFIFO,
  S_ISUID,
  S_ISGID,
  S_ISVTX,
  NAME_MAX,
  PATH_MAX,
  FILE_SIZE_MAX,
} from '../util/index.ts';

export interface Attr {
  ino: number;
  /** Type and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** 512-byte blocks allocated (from extents, so sparse files report less). */
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Birth time. */
  crtimeNs: bigint;
  /** Bumped whenever content or metadata changes; a cheap change detector (ETag caches use it). */
  generation: number;
}

/** Fields to change in setattr; absent fields stay. `atimeNs`/`mtimeNs` 'now' means the current time. */
export interface SetAttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeNs?: bigint | 'now';
  mtimeNs?: bigint | 'now';
  ctimeNs?: bigint;
}

export interface DirEntry {
  name: string;
  ino: number;
  /** File type bits (mode & S_IFMT). */
  type: number;
  /** Opaque cookie to pass back to readdir to continue after this entry. Never 0. */
  cookie: bigint;
}

export interface DirEntryPlus extends DirEntry {
  attr: Attr;
}

export interface StatFs {
  blockSize: number;
  /** Total / free / available blocks of blockSize. */
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  nameMax: number;
}

export interface RenameFlags {
  /** RENAME_NOREPLACE: fail with EEXIST if the target exists. */
  noReplace?: boolean;
  /** RENAME_EXCHANGE: atomically swap source and target (both must exist). */
  exchange?: boolean;
}

export interface XattrFlags {
  /** XATTR_CREATE: fail with EEXIST if present. */
  create?: boolean;
  /** XATTR_REPLACE: fail with ENODATA if absent. */
  replace?: boolean;
}

/** Access mask bits for access(): R_OK 4, W_OK 2, X_OK 1, F_OK 0. */
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** open(2) flags the fs layer looks at. */
export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

/** A file whose content `coalesce` moves: the name `name` in directory `parent`, optionally required to be inode `ino`. */
export interface CoalesceSource {
  parent: number;
  name: string;
  /** ESTALE if the name no longer refers to this inode (it was replaced since the caller looked). */
  ino?: number;
}

/** fallocate(2) mode bits. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;

export interface FileSystem {
  lookup(who: Identity, parent: number, name: string): Promise<Attr>;
  getattr(who: Identity, ino: number): Promise<Attr>;
  setattr(who: Identity, ino: number, changes: SetAttrChanges): Promise<Attr>;
  readlink(who: Identity, ino: number): Promise<string>;
  symlink(who: Identity, parent: number, name: string, target: string): Promise<Attr>;
  /** Regular files, fifos, sockets and device nodes (the latter need uid 0). */
  mknod(who: Identity, parent: number, name: string, mode: number, rdev: number): Promise<Attr>;
  mkdir(who: Identity, parent: number, name: string, mode: number): Promise<Attr>;
  /** Create a regular file; EEXIST if the name exists (O_EXCL is the only create semantics here). */
  create(who: Identity, parent: number, name: string, mode: number): Promise<Attr>;
  unlink(who: Identity, parent: number, name: string): Promise<void>;
  rmdir(who: Identity, parent: number, name: string): Promise<void>;
  rename(
    who: Identity,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags?: RenameFlags,
  ): Promise<void>;
  link(who: Identity, ino: number, newParent: number, newName: string): Promise<Attr>;
  /** Permission check for open with these flags; O_TRUNC truncates. Counts the open. */
  open(who: Identity, ino: number, flags: number): Promise<Attr>;
  /** The matching close. `wrote` = this handle wrote data; in sync-on-close mode that waits for a commit. */
  release(ino: number, wrote: boolean): Promise<void>;
  read(who: Identity, ino: number, offset: number, length: number): Promise<Uint8Array>;
  /**
   * The same bytes as `read`, borrowed: pieces that together hold them, in order (views of cached
   * data: nothing is copied). Write them out, never modify them, then `release` them (also when
   * writing fails): the cache reuses that memory once every borrower has.
   */
  readv(who: Identity, ino: number, offset: number, length: number): Promise<Borrowed>;
  /** Returns bytes written (always data.length on success). */
  write(who: Identity, ino: number, offset: number, data: Uint8Array): Promise<number>;
  /** Returns only after everything written so far is durable in the store (one group commit). */
  fsync(ino: number, dataOnly: boolean): Promise<void>;
  /** Volume-wide durable commit (RpcFlush, syncfs). */
  sync(): Promise<void>;
  /** Entries after `cookie` (0 = from the start, including "." and ".."), at most `limit`. */
  readdir(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntry[]>;
  readdirplus(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntryPlus[]>;
  statfs(who: Identity): Promise<StatFs>;
  getxattr(who: Identity, ino: number, name: string): Promise<Uint8Array>;
  setxattr(who: Identity, ino: number, name: string, value: Uint8Array, flags?: XattrFlags): Promise<void>;
  listxattr(who: Identity, ino: number): Promise<string[]>;
  removexattr(who: Identity, ino: number, name: string): Promise<void>;
  access(who: Identity, ino: number, mask: number): Promise<void>;
  fallocate(who: Identity, ino: number, mode: number, offset: number, length: number): Promise<void>;
  /** SEEK_DATA / SEEK_HOLE as lseek(2): ENXIO when no data (or hole) lies at or after offset. */
  lseek(who: Identity, ino: number, offset: number, whence: number): Promise<number>;
  /**
   * Append the content of each source, in order, to the regular file `ino` and remove the
   * sources' names, as one atomic step that copies no data (their extents move). Optional: a
   * file system that cannot move extents (a remote one) leaves it out and callers copy instead.
   */
  coalesce?(who: Identity, ino: number, sources: readonly CoalesceSource[]): Promise<Attr>;
  /** Keep an inode alive while a front end refers to it (FUSE lookup count 0 -> 1). */
  pin(ino: number): void;
  /** The front end forgot it (count -> 0); an unlinked, unopened, unpinned inode is then freed. */
  unpin(ino: number): void;
}
