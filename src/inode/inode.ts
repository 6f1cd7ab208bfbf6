import type { BTree } from '../btree/index.ts';
import type { Loc } from '../segment/index.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../util/index.ts';
import type { DirKey, DirValue, Extent, InodeRecord } from '../headhunter/index.ts';

/**
 * An inode in memory. Fields mirror InodeRecord; `tree` is the directory tree or extent map once
 * opened. `dirty` means the inode record (or its tree) differs from the last commit's.
 */
export class Inode implements InodeRecord {
  mode = 0;
  uid = 0;
  gid = 0;
  nlink = 0;
  rdev = 0;
  size = 0;
  allocated = 0;
  atimeNs = 0n;
  mtimeNs = 0n;
  ctimeNs = 0n;
  crtimeNs = 0n;
  generation = 0;
  parent = 0;
  treeRoot: Loc | undefined = undefined;
  symlinkTarget: string | undefined = undefined;
  xattrs = new Map<string, Uint8Array>();

  /** Open directory tree (directories) or extent map (regular files). */
  dirTree: BTree<DirKey, DirValue> | null = null;
  extents: BTree<number, Extent> | null = null;
  dirty = false;
  /** Open file handles. */
  opens = 0;
  /** Front-end references (FUSE lookup counts). */
  pins = 0;
  /** End of the last write and length of the current sequential run (routes bulk data). */
  lastWriteEnd = -1;
  sequentialRun = 0;
  /**
   * Sequential-read detection for read-ahead: end of the last read, reads in the current run, and
   * the file offset up to which read-ahead has been requested.
   */
  lastReadEnd = -1;
  readRun = 0;
  readAheadTo = 0;
  /** The inode table has a record for this inode (false for one created since the last commit). */
  inTable = false;

  constructor(readonly ino: number) {}

  get type(): number {
    return this.mode & S_IFMT;
  }
  get isDir(): boolean {
    return this.type === S_IFDIR;
  }
  get isFile(): boolean {
    return this.type === S_IFREG;
  }
  get isSymlink(): boolean {
    return this.type === S_IFLNK;
  }
  /** In use by a front end: must stay in memory even when unlinked. */
  get busy(): boolean {
    return this.opens > 0 || this.pins > 0;
  }

  assign(r: InodeRecord): void {
    this.mode = r.mode;
    this.uid = r.uid;
    this.gid = r.gid;
    this.nlink = r.nlink;
    this.rdev = r.rdev;
    this.size = r.size;
    this.allocated = r.allocated;
    this.atimeNs = r.atimeNs;
    this.mtimeNs = r.mtimeNs;
    this.ctimeNs = r.ctimeNs;
    this.crtimeNs = r.crtimeNs;
    this.generation = r.generation;
    this.parent = r.parent;
    this.treeRoot = r.treeRoot;
    this.symlinkTarget = r.symlinkTarget;
    this.xattrs = r.xattrs;
  }
}
