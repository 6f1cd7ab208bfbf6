/**
 * The bridge: implements the raw FUSE operations on top of the `fs` layer's FileSystem, as
 * go-fuse's fs/bridge.go does. It owns the kernel-facing state:
 *
 * - lookup counts: every entry handed to the kernel (LOOKUP, CREATE, MKDIR, MKNOD, SYMLINK, LINK,
 *   READDIRPLUS) adds one; FORGET/BATCH_FORGET subtract. A node id is pinned in the file system
 *   while its count is > 0 (fs.pin on 0 -> 1, fs.unpin on -> 0). Node id == inode number.
 * - file handles: one per OPEN/CREATE. fs.open is called once per handle and fs.release exactly
 *   once per handle, at its first FLUSH (so close(2) waits for the commit in sync-on-close mode)
 *   or, if the kernel never flushed, at RELEASE; `wrote` says whether that handle wrote. Writes
 *   arriving after that (dup'd descriptors, mmap) are made durable by fsync at the next FLUSH or
 *   RELEASE when the mount is in sync-on-close mode.
 * - locks: POSIX locks of an owner are dropped at FLUSH (any close(2) drops them, as on Linux);
 *   flock locks at RELEASE of the open file that took them.
 * - identity: uid/gid/pid from the request header, supplementary groups from /proc.
 */
import { FsError } from '../util/index.ts';
import type { Borrowed, Logger } from '../util/index.ts';
import { LockTable, LOCK_OFFSET_MAX, type PosixLockType } from '../fs/index.ts';
import {
  O_CREAT,
  O_EXCL,
  O_TRUNC,
  S_IFMT,
  S_ISGID,
  S_ISUID,
  type Attr,
  type FileSystem,
  type Identity,
} from '../fs/index.ts';
import { GroupCache } from './identity.ts';
import type { CreateOut, FuseRequest, LockRequest, RawFileSystem, SetattrIn } from './raw.ts';
import {
  DirBuffer,
  FATTR,
  FOPEN,
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  OPEN_KILL_SUIDGID,
  RELEASE_FLOCK_UNLOCK,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  WRITE_KILL_SUIDGID,
  XATTR_CREATE,
  XATTR_REPLACE,
  direntType,
  type AttrOut,
  type EntryOut,
  type FileLock,
  type OpenOut,
  type StatfsOut,
} from './wire.ts';

/** Cache invalidation the bridge may ask of the protocol layer. */
export interface Notifier {
  invalidateInode(nodeid: number, offset?: number, length?: number): Promise<void>;
  invalidateEntry(parent: number, name: string): Promise<void>;
  notifyDelete(parent: number, child: number, name: string): Promise<void>;
}

export interface BridgeOptions {
  logger: Logger;
  /** How long the kernel may cache a name -> node mapping. Default 1000 ms. */
  entryTimeoutMs?: number;
  /** How long the kernel may cache attributes. Default 1000 ms. */
  attrTimeoutMs?: number;
  /** How long the kernel may cache "no such name" (0 = never). Default 1000 ms. */
  negativeTimeoutMs?: number;
  /** The engine commits on close of a written file; writes after the handle's release get an fsync. */
  syncOnClose?: boolean;
  locks?: LockTable;
  groups?: GroupCache;
}

interface Handle {
  ino: number;
  dir: boolean;
  flags: number;
  /** This handle wrote (or truncated, or fallocated) at some point. */
  wrote: boolean;
  /** Writes not yet covered by fs.release / fs.fsync through this handle. */
  dirty: boolean;
  /** fs.release has been called for this handle. */
  released: boolean;
  /** suid/sgid already cleared (or found clear) for a non-root writer through this handle. */
  killChecked: boolean;
  /** flock owner ids taken through this handle. */
  flockOwners: Set<bigint> | undefined;
}

/** Opens done on behalf of a create the caller already won. */
const CREATOR: Identity = Object.freeze({ uid: 0, gid: 0, groups: Object.freeze([]) as readonly number[] });

export class FsBridge implements RawFileSystem {
  private readonly log: Logger;
  private readonly entryTimeoutMs: number;
  private readonly attrTimeoutMs: number;
  private readonly negativeTimeoutMs: number;
  private readonly syncOnClose: boolean;
  readonly locks: LockTable;
  private readonly groups: GroupCache;
  private readonly lookups = new Map<number, number>();
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private destroyed = false;
  notifier: Notifier | undefined;

  constructor(
    private readonly fs: FileSystem,
    opts: BridgeOptions,
  ) {
    this.log = opts.logger;
    this.entryTimeoutMs = opts.entryTimeoutMs ?? 1000;
    this.attrTimeoutMs = opts.attrTimeoutMs ?? 1000;
    this.negativeTimeoutMs = opts.negativeTimeoutMs ?? 1000;
    this.syncOnClose = opts.syncOnClose ?? false;
    this.locks = opts.locks ?? new LockTable();
    this.groups = opts.groups ?? new GroupCache();
  }

  /** Node ids the kernel holds, with their lookup counts (diagnostics, tests). */
  get lookupCounts(): ReadonlyMap<number, number> {
    return this.lookups;
  }
  get openHandles(): number {
    return this.handles.size;
  }

  private who(req: FuseRequest): Identity {
    return this.groups.identity(req.uid, req.gid, req.pid);
  }

  // ------------------------------------------------------------------------------------------
  // Lookup counts

  private ref(ino: number): void {
    const n = this.lookups.get(ino) ?? 0;
    if (n === 0) this.fs.pin(ino);
    this.lookups.set(ino, n + 1);
  }

  forget(nodeid: number, nlookup: number): void {
    const n = this.lookups.get(nodeid);
    if (n === undefined) {
      this.log.warn('fuse: FORGET of an unknown node', { nodeid, nlookup });
      return;
    }
    if (n > nlookup) {
      this.lookups.set(nodeid, n - nlookup);
      return;
    }
    if (n < nlookup) this.log.warn('fuse: FORGET more than looked up', { nodeid, n, nlookup });
    this.lookups.delete(nodeid);
    this.fs.unpin(nodeid);
  }

  private entryOut(attr: Attr | undefined, nodeid: number): EntryOut {
    return {
      nodeid,
      generation: 0,
      entryTimeoutMs: nodeid === 0 ? this.negativeTimeoutMs : this.entryTimeoutMs,
      attrTimeoutMs: this.attrTimeoutMs,
      attr,
    };
  }

  /** An entry reply for `attr`, taking a lookup reference. */
  private entry(attr: Attr): EntryOut {
    this.ref(attr.ino);
    return this.entryOut(attr, attr.ino);
  }

  private attrOut(attr: Attr): AttrOut {
    return { attrTimeoutMs: this.attrTimeoutMs, attr };
  }

  private handle(fh: number, ino: number): Handle | undefined {
    const h = this.handles.get(fh);
    if (h && h.ino !== ino) {
      this.log.error('fuse: handle used with another node', { fh, ino, handleIno: h.ino });
      throw new FsError('EBADF', 'file handle of another node');
    }
    return h;
  }

  private newHandle(ino: number, flags: number, dir: boolean): number {
    const fh = this.nextFh++;
    this.handles.set(fh, {
      ino,
      dir,
      flags,
      wrote: false,
      dirty: false,
      released: dir,
      killChecked: false,
      flockOwners: undefined,
    });
    return fh;
  }

  // ------------------------------------------------------------------------------------------
  // Names

  async lookup(req: FuseRequest, parent: number, name: string): Promise<EntryOut> {
    try {
      return this.entry(await this.fs.lookup(this.who(req), parent, name));
    } catch (e) {
      if (e instanceof FsError && e.errno === 'ENOENT' && this.negativeTimeoutMs > 0) return this.entryOut(undefined, 0);
      throw e;
    }
  }

  async getattr(req: FuseRequest, nodeid: number): Promise<AttrOut> {
    return this.attrOut(await this.fs.getattr(this.who(req), nodeid));
  }

  async setattr(req: FuseRequest, nodeid: number, a: SetattrIn): Promise<AttrOut> {
    const who = this.who(req);
    const v = a.valid;
    const changes: Parameters<FileSystem['setattr']>[2] = {};
    if (v & FATTR.MODE) changes.mode = a.mode & 0o7777;
    if (v & FATTR.UID) changes.uid = a.uid;
    if (v & FATTR.GID) changes.gid = a.gid;
    if (v & FATTR.SIZE) changes.size = a.size;
    if (v & FATTR.ATIME_NOW) changes.atimeNs = 'now';
    else if (v & FATTR.ATIME) changes.atimeNs = a.atimeNs;
    if (v & FATTR.MTIME_NOW) changes.mtimeNs = 'now';
    else if (v & FATTR.MTIME) changes.mtimeNs = a.mtimeNs;
    if (v & FATTR.CTIME) changes.ctimeNs = a.ctimeNs;
    if (v & FATTR.SIZE && v & FATTR.FH) {
      const h = this.handle(a.fh, nodeid);
      if (h) h.wrote = h.dirty = true;
    }
    if (v & FATTR.KILL_SUIDGID && changes.mode === undefined) {
      // A truncate by a caller without CAP_FSETID: clear suid (and sgid if group-executable).
      const cur = await this.fs.getattr(who, nodeid);
      const killed = killSuidgid(cur.mode);
      if (killed !== cur.mode) changes.mode = killed & 0o7777;
    }
    let attr: Attr;
    if (Object.keys(changes).length === 0) attr = await this.fs.getattr(who, nodeid);
    else attr = await this.fs.setattr(who, nodeid, changes);
    return this.attrOut(attr);
  }

  async readlink(req: FuseRequest, nodeid: number): Promise<string> {
    return this.fs.readlink(this.who(req), nodeid);
  }

  async symlink(req: FuseRequest, parent: number, name: string, target: string): Promise<EntryOut> {
    return this.entry(await this.fs.symlink(this.who(req), parent, name, target));
  }

  async mknod(req: FuseRequest, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut> {
    return this.entry(await this.fs.mknod(this.who(req), parent, name, mode, rdev));
  }

  async mkdir(req: FuseRequest, parent: number, name: string, mode: number): Promise<EntryOut> {
    return this.entry(await this.fs.mkdir(this.who(req), parent, name, mode & 0o7777));
  }

  async unlink(req: FuseRequest, parent: number, name: string): Promise<void> {
    await this.fs.unlink(this.who(req), parent, name);
  }

  async rmdir(req: FuseRequest, parent: number, name: string): Promise<void> {
    await this.fs.rmdir(this.who(req), parent, name);
  }

  async rename(req: FuseRequest, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'unsupported rename flags');
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new FsError('EINVAL', 'NOREPLACE with EXCHANGE');
    const rf = flags === 0 ? undefined : { noReplace: (flags & RENAME_NOREPLACE) !== 0, exchange: (flags & RENAME_EXCHANGE) !== 0 };
    await this.fs.rename(this.who(req), parent, name, newParent, newName, rf);
  }

  async link(req: FuseRequest, nodeid: number, newParent: number, newName: string): Promise<EntryOut> {
    return this.entry(await this.fs.link(this.who(req), nodeid, newParent, newName));
  }

  // ------------------------------------------------------------------------------------------
  // Files

  async open(req: FuseRequest, nodeid: number, flags: number, openFlags: number): Promise<OpenOut> {
    const who = this.who(req);
    await this.fs.open(who, nodeid, flags);
    const fh = this.newHandle(nodeid, flags, false);
    if (openFlags & OPEN_KILL_SUIDGID && flags & O_TRUNC) {
      const h = this.handles.get(fh)!;
      h.wrote = h.dirty = true;
      await this.killPrivs(who, nodeid);
    }
    return { fh, openFlags: FOPEN.KEEP_CACHE };
  }

  async create(req: FuseRequest, parent: number, name: string, mode: number, flags: number, _openFlags: number): Promise<CreateOut> {
    const who = this.who(req);
    const openFlags = flags & ~(O_CREAT | O_EXCL);
    let attr: Attr;
    try {
      const created = await this.fs.create(who, parent, name, mode & 0o7777);
      // The caller may open what it just created whatever the new mode says (open(2) semantics).
      attr = await this.fs.open({ ...CREATOR, pid: who.pid }, created.ino, openFlags & ~O_TRUNC);
    } catch (e) {
      if (!(e instanceof FsError && e.errno === 'EEXIST') || flags & O_EXCL) throw e;
      // The kernel's cache said "absent" but someone created it: plain open(O_CREAT) semantics.
      const existing = await this.fs.lookup(who, parent, name);
      attr = await this.fs.open(who, existing.ino, openFlags);
    }
    const fh = this.newHandle(attr.ino, flags, false);
    return { entry: this.entry(attr), open: { fh, openFlags: FOPEN.KEEP_CACHE } };
  }

  async read(req: FuseRequest, nodeid: number, _fh: number, offset: number, size: number): Promise<Borrowed> {
    return this.fs.readv(this.who(req), nodeid, offset, size);
  }

  async write(req: FuseRequest, nodeid: number, fh: number, offset: number, data: Uint8Array, writeFlags: number): Promise<number> {
    const who = this.who(req);
    const h = this.handle(fh, nodeid);
    if (h) h.wrote = h.dirty = true;
    if (writeFlags & WRITE_KILL_SUIDGID && !h?.killChecked) {
      await this.killPrivs(who, nodeid);
      if (h) h.killChecked = true;
    }
    return this.fs.write(who, nodeid, offset, data);
  }

  /** Clear suid, and sgid when group-executable, as the VFS does for an unprivileged writer. */
  private async killPrivs(who: Identity, ino: number): Promise<void> {
    const a = await this.fs.getattr(who, ino);
    const killed = killSuidgid(a.mode);
    if (killed === a.mode) return;
    await this.fs.setattr({ ...CREATOR, pid: who.pid }, ino, { mode: killed & 0o7777 });
    void this.notifier?.invalidateInode(ino, -1, 0);
  }

  async statfs(req: FuseRequest): Promise<StatfsOut> {
    return this.fs.statfs(this.who(req));
  }

  async flush(_req: FuseRequest, nodeid: number, fh: number, lockOwner: bigint): Promise<void> {
    this.locks.unlockAll(nodeid, lockOwner);
    const h = this.handle(fh, nodeid);
    if (!h) return;
    await this.settle(h);
  }

  /** fs.release once per handle; later writes through it are fsync'd in sync-on-close mode. */
  private async settle(h: Handle): Promise<void> {
    if (!h.released) {
      h.released = true;
      const wrote = h.wrote;
      h.dirty = false;
      await this.fs.release(h.ino, wrote);
    } else if (h.dirty && this.syncOnClose) {
      h.dirty = false;
      await this.fs.fsync(h.ino, false);
    }
  }

  async release(_req: FuseRequest, nodeid: number, fh: number, releaseFlags: number, lockOwner: bigint): Promise<void> {
    const h = this.handle(fh, nodeid);
    if (releaseFlags & RELEASE_FLOCK_UNLOCK) this.locks.flockRelease(nodeid, lockOwner);
    if (!h) return;
    for (const o of h.flockOwners ?? []) this.locks.flockRelease(nodeid, o);
    this.handles.delete(fh);
    await this.settle(h);
  }

  async fsync(_req: FuseRequest, nodeid: number, fh: number, dataOnly: boolean): Promise<void> {
    const h = this.handles.get(fh);
    if (h && h.ino === nodeid) h.dirty = false;
    await this.fs.fsync(nodeid, dataOnly);
  }

  async fallocate(req: FuseRequest, nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    const h = this.handle(fh, nodeid);
    if (h) h.wrote = h.dirty = true;
    await this.fs.fallocate(this.who(req), nodeid, mode, offset, length);
  }

  async lseek(req: FuseRequest, nodeid: number, _fh: number, offset: number, whence: number): Promise<number> {
    return this.fs.lseek(this.who(req), nodeid, offset, whence);
  }

  async syncfs(): Promise<void> {
    await this.fs.sync();
  }

  // ------------------------------------------------------------------------------------------
  // Extended attributes

  async setxattr(req: FuseRequest, nodeid: number, name: string, value: Uint8Array, flags: number): Promise<void> {
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) throw new FsError('EINVAL', 'bad xattr flags');
    const xf = flags === 0 ? undefined : { create: (flags & XATTR_CREATE) !== 0, replace: (flags & XATTR_REPLACE) !== 0 };
    // The request buffer is reused by nobody, but copy: the engine may keep the value.
    await this.fs.setxattr(this.who(req), nodeid, name, Uint8Array.from(value), xf);
  }

  async getxattr(req: FuseRequest, nodeid: number, name: string): Promise<Uint8Array> {
    return this.fs.getxattr(this.who(req), nodeid, name);
  }

  async listxattr(req: FuseRequest, nodeid: number): Promise<string[]> {
    return this.fs.listxattr(this.who(req), nodeid);
  }

  async removexattr(req: FuseRequest, nodeid: number, name: string): Promise<void> {
    await this.fs.removexattr(this.who(req), nodeid, name);
  }

  // ------------------------------------------------------------------------------------------
  // Directories

  async opendir(_req: FuseRequest, nodeid: number, flags: number): Promise<OpenOut> {
    // The kernel checked read permission (default_permissions); nothing to count in the engine.
    return { fh: this.newHandle(nodeid, flags, true), openFlags: 0 };
  }

  async readdir(req: FuseRequest, nodeid: number, _fh: number, offset: bigint, out: DirBuffer): Promise<void> {
    const who = this.who(req);
    if (!out.plus) {
      const limit = Math.max(1, Math.floor(out.size / 32));
      for (const e of await this.fs.readdir(who, nodeid, offset, limit)) {
        if (!out.add(e.name, e.ino, direntType(e.type), e.cookie)) break;
      }
      return;
    }
    const limit = Math.max(1, Math.floor(out.size / 168));
    for (const e of await this.fs.readdirplus(who, nodeid, offset, limit)) {
      const dot = e.name === '.' || e.name === '..';
      // "." and ".." carry no lookup reference (the kernel ignores them in READDIRPLUS).
      const entry = this.entryOut(e.attr, dot ? 0 : e.ino);
      if (!out.addPlus(e.name, direntType(e.type), e.cookie, entry)) break;
      if (!dot) this.ref(e.ino);
    }
  }

  async releasedir(_req: FuseRequest, _nodeid: number, fh: number): Promise<void> {
    this.handles.delete(fh);
  }

  async fsyncdir(_req: FuseRequest, nodeid: number, _fh: number, dataOnly: boolean): Promise<void> {
    await this.fs.fsync(nodeid, dataOnly);
  }

  async access(req: FuseRequest, nodeid: number, mask: number): Promise<void> {
    await this.fs.access(this.who(req), nodeid, mask);
  }

  // ------------------------------------------------------------------------------------------
  // Locks

  async getlk(_req: FuseRequest, nodeid: number, lk: LockRequest): Promise<FileLock> {
    const type = posixType(lk.lock.type);
    if (type === 'unlock') throw new FsError('EINVAL', 'F_GETLK with F_UNLCK');
    const c = this.locks.getlk(nodeid, lk.owner, lk.lock.start, clampEnd(lk.lock.end), type);
    if (!c) return { start: lk.lock.start, end: lk.lock.end, type: F_UNLCK, pid: 0 };
    return { start: c.start, end: c.end, type: c.type === 'write' ? F_WRLCK : F_RDLCK, pid: c.pid };
  }

  async setlk(req: FuseRequest, nodeid: number, lk: LockRequest, wait: boolean): Promise<void> {
    const type = posixType(lk.lock.type);
    if (lk.flock) {
      const h = this.handle(lk.fh, nodeid);
      if (h && type !== 'unlock') (h.flockOwners ??= new Set()).add(lk.owner);
      const ft = type === 'unlock' ? 'unlock' : type === 'write' ? 'exclusive' : 'shared';
      await this.locks.flock(nodeid, lk.owner, lk.lock.pid, ft, wait, wait ? req.signal : undefined);
      return;
    }
    const end = clampEnd(lk.lock.end);
    if (wait) await this.locks.setlkw(nodeid, lk.owner, lk.lock.pid, lk.lock.start, end, type, req.signal);
    else this.locks.setlk(nodeid, lk.owner, lk.lock.pid, lk.lock.start, end, type);
  }

  // ------------------------------------------------------------------------------------------

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    // The kernel is gone: every handle it held is closed, every node forgotten.
    for (const [fh, h] of this.handles) {
      this.handles.delete(fh);
      if (h.released) continue;
      try {
        await this.fs.release(h.ino, h.wrote);
      } catch (e) {
        this.log.error('fuse: release at shutdown failed', { ino: h.ino, error: String(e) });
      }
    }
    for (const [ino] of this.lookups) {
      try {
        this.fs.unpin(ino);
      } catch (e) {
        this.log.error('fuse: unpin at shutdown failed', { ino, error: String(e) });
      }
    }
    this.lookups.clear();
  }
}

function posixType(t: number): PosixLockType | 'unlock' {
  if (t === F_RDLCK) return 'read';
  if (t === F_WRLCK) return 'write';
  if (t === F_UNLCK) return 'unlock';
  throw new FsError('EINVAL', `bad lock type ${t}`);
}

function clampEnd(end: bigint): bigint {
  return end > LOCK_OFFSET_MAX ? LOCK_OFFSET_MAX : end;
}

/** The mode after an unprivileged write or truncate: no suid; no sgid if group-executable. */
export function killSuidgid(mode: number): number {
  if ((mode & S_IFMT) === 0o040000) return mode;
  let m = mode & ~S_ISUID;
  if (mode & 0o010) m &= ~S_ISGID;
  return m;
}
