import type { ObjectStore } from '../objstore/index.ts';
import { Volume, collectGarbage, type VolumeOptions } from '../headhunter/index.ts';
import { Inodes, ROOT_INO, cleanSegments, type Inode, type InodeLayerOptions, type ReadPiece } from '../inode/index.ts';
import {
  FILE_SIZE_MAX,
  FsError,
  NAME_MAX,
  PATH_MAX,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  S_ISGID,
  S_ISUID,
  XATTR_NAME_MAX,
  XATTR_SIZE_MAX,
  XATTR_TOTAL_MAX,
  asFsError,
  nullLogger,
  type Borrowed,
  type Logger,
} from '../util/index.ts';
import { inGroup, isOwnerOrRoot, permits, requireAccess, requireStickyRight } from './perm.ts';
import { SnapshotDirectory } from './snapshots.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  R_OK,
  SEEK_DATA,
  SEEK_HOLE,
  W_OK,
  X_OK,
  type Attr,
  type CoalesceSource,
  type DirEntry,
  type DirEntryPlus,
  type FileSystem,
  type Identity,
  type RenameFlags,
  type SetAttrChanges,
  type StatFs,
  type XattrFlags,
} from './types.ts';

export interface FileSystemOptions {
  /** Close of a written file waits for a durable commit (the seed's close -> RpcFlush). */
  syncOnClose: boolean;
  volume: Partial<VolumeOptions>;
  inode: Partial<InodeLayerOptions>;
  logger: Logger;
  /** Background gc: a pass this often (0 disables); objects are deleted one pass after they die. */
  gcIntervalMs: number;
  /** List `/.snapshot` in readdir of the root (it is always reachable by name; default hidden). */
  snapshotDirVisible: boolean;
}

const ROOT: Identity = { uid: 0, gid: 0, groups: [] };

/**
 * POSIX semantics over the inode layer. Every operation runs under the volume lock (reads release
 * it before fetching record bytes) and rejects only with FsError.
 */
export class SiltFileSystem implements FileSystem {
  readonly inodes: Inodes;
  readonly syncOnClose: boolean;
  private readonly log: Logger;
  private gcTimer: NodeJS.Timeout | null = null;
  private gcRunning = false;
  /** `/.snapshot`: inodes at or above 2^52 are routed there (snapshots.ts). */
  readonly snapshotDir: SnapshotDirectory;

  constructor(
    readonly volume: Volume,
    opts: Partial<FileSystemOptions> = {},
  ) {
    this.inodes = new Inodes(volume, opts.inode ?? {});
    this.syncOnClose = opts.syncOnClose ?? false;
    this.log = opts.logger ?? volume.log;
    this.inodes.start();
    this.snapshotDir = new SnapshotDirectory(
      volume,
      async (name) =>
        // A view's cache is a quarter of the live one's: browsing many snapshots stays bounded.
        new SiltFileSystem(await Volume.openSnapshot(volume.store, volume.name, name, { logger: this.log, cacheBytesMax: Math.ceil(volume.opts.cacheBytesMax / 4) }), {
          logger: this.log,
          gcIntervalMs: 0,
          inode: { flushIntervalMs: 0 },
        }),
      (who) => this.getattr(who, ROOT_INO),
      opts.snapshotDirVisible ?? false,
    );
    const gcMs = opts.gcIntervalMs ?? 60_000;
    if (gcMs > 0 && volume.readOnlySnapshot === undefined) {
      this.gcTimer = setInterval(() => void this.backgroundGc(gcMs), gcMs);
      this.gcTimer.unref();
    }
  }

  /** One background gc pass, never two at once; the grace period is one interval. */
  private async backgroundGc(graceMs: number): Promise<void> {
    if (this.gcRunning || this.volume.fenced) return;
    this.gcRunning = true;
    try {
      // The cleaner, rate-limited to a few segments a pass; what it empties goes at a later pass.
      const c = await cleanSegments(this.inodes, { segmentsMax: 4 });
      if (c.recordsMoved > 0) this.log.info('cleaner moved live records', { segments: c.segmentsCleaned, bytes: c.bytesMoved });
      const r = await collectGarbage(this.volume, { graceMs });
      if (r.deleted > 0) this.log.info('gc reclaimed space', { deleted: r.deleted, bytesFreed: r.bytesFreed });
    } catch (err) {
      this.log.warn('background gc failed; will try again', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.gcRunning = false;
    }
  }

  /** Final commit and stop the flusher. */
  async close(): Promise<void> {
    if (this.gcTimer) clearInterval(this.gcTimer);
    await this.snapshotDir.close();
    this.inodes.stop();
    await this.volume.close();
  }

  // ------------------------------------------------------------------ plumbing

  /** Run under the volume lock. `mutates`: fn changes memory, so a store failure inside it halts the volume. */
  private async op<T>(fn: () => Promise<T>, mutates = false): Promise<T> {
    try {
      return await this.volume.lock.run(async () => {
        try {
          return await fn();
        } catch (err) {
          // A store read that fails part-way through an update may leave part of it in memory:
          // stop committing (under the lock, so no commit can carry the half) rather than
          // persist it. Errno failures are checks made before anything changes.
          if (mutates && !(err instanceof FsError)) this.volume.halt(err);
          throw err;
        }
      });
    } catch (err) {
      throw this.fail(err);
    }
  }

  private async mutate<T>(fn: () => Promise<T>): Promise<T> {
    return this.op(async () => {
      this.volume.checkWritable();
      return fn();
    }, true);
  }

  private fail(err: unknown): FsError {
    const e = asFsError(err);
    // Logged here, once, with the whole cause chain (store error, socket error); front ends only answer EIO.
    if (e.errno === 'EIO') this.log.error('I/O error', { err: e });
    return e;
  }

  private async dir(ino: number): Promise<Inode> {
    const d = await this.inodes.get(ino);
    if (!d.isDir) throw new FsError('ENOTDIR', `inode ${ino} is not a directory`);
    return d;
  }

  private attr(i: Inode): Attr {
    return {
      ino: i.ino,
      mode: i.mode,
      nlink: i.nlink,
      uid: i.uid,
      gid: i.gid,
      rdev: i.rdev,
      size: i.size,
      blocks: i.isFile ? Math.ceil(i.allocated / 512) : i.isDir ? 8 : 0,
      atimeNs: i.atimeNs,
      mtimeNs: i.mtimeNs,
      ctimeNs: i.ctimeNs,
      crtimeNs: i.crtimeNs,
      generation: i.generation,
    };
  }

  private async childOf(dir: Inode, name: string): Promise<Inode | undefined> {
    if (name === '.') return dir;
    if (name === '..') return this.inodes.get(dir.parent);
    const v = await this.inodes.dirLookup(dir, Buffer.from(name, 'utf8'));
    return v ? this.inodes.get(v.ino) : undefined;
  }

  /** A directory we may add or remove entries in. */
  private async writableDir(who: Identity, ino: number, what: string): Promise<Inode> {
    const d = await this.dir(ino);
    if (d.nlink === 0) throw new FsError('ENOENT', `${what}: directory ${ino} was removed`);
    requireAccess(who, d, W_OK | X_OK, what);
    return d;
  }

  /** The common part of create/mkdir/mknod/symlink. */
  private async makeNode(
    who: Identity,
    parent: number,
    name: string,
    mode: number,
    rdev: number,
    target?: string,
  ): Promise<Attr> {
    validateName(name, 'create');
    const dir = await this.writableDir(who, parent, `create ${name}`);
    const nameBytes = Buffer.from(name, 'utf8');
    if (name === '.' || name === '..' || (await this.inodes.dirLookup(dir, nameBytes))) {
      throw new FsError('EEXIST', `${name} exists`);
    }
    const type = mode & S_IFMT;
    let perm = mode & 0o7777;
    let gid = who.gid;
    if (dir.mode & S_ISGID) {
      gid = dir.gid; // BSD group semantics in setgid directories
      if (type === S_IFDIR) perm |= S_ISGID;
    }
    if (perm & S_ISGID && type !== S_IFDIR && who.uid !== 0 && !inGroup(who, gid)) perm &= ~S_ISGID;
    const inode = this.inodes.create(type | perm, who.uid, gid, rdev, target);
    if (type === S_IFDIR) {
      inode.parent = dir.ino;
      dir.nlink++;
    }
    await this.inodes.dirSet(dir, nameBytes, { ino: inode.ino, type });
    return this.attr(inode);
  }

  // ------------------------------------------------------------------ FileSystem

  lookup(who: Identity, parent: number, name: string): Promise<Attr> {
    if (this.snapshotDir.owns(parent) || this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.lookup(who, parent, name);
    return this.op(async () => {
      validateName(name, 'lookup');
      const dir = await this.dir(parent);
      requireAccess(who, dir, X_OK, `lookup ${name}`);
      const child = await this.childOf(dir, name);
      if (!child) throw new FsError('ENOENT', `${name} not found in directory ${parent}`);
      return this.attr(child);
    });
  }

  getattr(_who: Identity, ino: number): Promise<Attr> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.getattr(_who, ino);
    return this.op(async () => this.attr(await this.inodes.get(ino)));
  }

  setattr(who: Identity, ino: number, c: SetAttrChanges): Promise<Attr> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.refuse('setattr');
    return this.mutate(async () => {
      const i = await this.inodes.get(ino);
      const now = this.inodes.nowNs();
      if (c.uid !== undefined || c.gid !== undefined) {
        const uidChange = c.uid !== undefined && c.uid !== i.uid;
        const gidChange = c.gid !== undefined && c.gid !== i.gid;
        if (who.uid !== 0) {
          if (uidChange) throw new FsError('EPERM', `chown: only root may change the owner of inode ${ino}`);
          if (gidChange && (who.uid !== i.uid || !inGroup(who, c.gid!))) {
            throw new FsError('EPERM', `chown: uid ${who.uid} may not give inode ${ino} to group ${c.gid}`);
          }
        }
        if (c.uid !== undefined) i.uid = c.uid;
        if (c.gid !== undefined) i.gid = c.gid;
        if ((uidChange || gidChange) && !i.isDir) {
          // as Linux: a change of owner drops setuid, and setgid when it means "group executable"
          i.mode &= ~S_ISUID;
          if (i.mode & 0o010) i.mode &= ~S_ISGID;
        }
      }
      if (c.mode !== undefined) {
        if (!isOwnerOrRoot(who, i)) throw new FsError('EPERM', `chmod: uid ${who.uid} does not own inode ${ino}`);
        let perm = c.mode & 0o7777;
        if (who.uid !== 0 && !i.isDir && !inGroup(who, i.gid)) perm &= ~S_ISGID;
        i.mode = (i.mode & S_IFMT) | perm;
      }
      if (c.size !== undefined) {
        if (i.isDir) throw new FsError('EISDIR', `truncate: inode ${ino} is a directory`);
        if (!i.isFile) throw new FsError('EINVAL', `truncate: inode ${ino} is not a regular file`);
        if (!Number.isSafeInteger(c.size) || c.size < 0) throw new FsError('EINVAL', `truncate: bad size ${c.size}`);
        if (c.size > FILE_SIZE_MAX) throw new FsError('EFBIG', `truncate: ${c.size} exceeds the largest file size`);
        if (i.opens === 0) requireAccess(who, i, W_OK, 'truncate');
        await this.inodes.truncate(i, c.size);
      }
      for (const [field, value] of [
        ['atimeNs', c.atimeNs],
        ['mtimeNs', c.mtimeNs],
      ] as const) {
        if (value === undefined) continue;
        if (value === 'now') {
          if (!isOwnerOrRoot(who, i) && !permits(who, i, W_OK)) {
            throw new FsError('EACCES', `utimes: uid ${who.uid} may not touch inode ${ino}`);
          }
          i[field] = now;
        } else {
          if (!isOwnerOrRoot(who, i)) throw new FsError('EPERM', `utimes: uid ${who.uid} does not own inode ${ino}`);
          i[field] = value;
        }
      }
      i.ctimeNs = c.ctimeNs ?? now;
      this.inodes.markDirty(i);
      return this.attr(i);
    });
  }

  readlink(_who: Identity, ino: number): Promise<string> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.readlink(_who, ino);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      if (!i.isSymlink || i.symlinkTarget === undefined) throw new FsError('EINVAL', `inode ${ino} is not a symlink`);
      return i.symlinkTarget;
    });
  }

  symlink(who: Identity, parent: number, name: string, target: string): Promise<Attr> {
    if (this.snapshotDir.owns(parent)) return this.snapshotDir.refuse('symlink');
    if (this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuseName('symlink');
    return this.mutate(async () => {
      const n = Buffer.byteLength(target, 'utf8');
      if (n === 0) throw new FsError('ENOENT', 'symlink: empty target');
      if (n >= PATH_MAX) throw new FsError('ENAMETOOLONG', `symlink target of ${n} bytes exceeds PATH_MAX`);
      return this.makeNode(who, parent, name, S_IFLNK | 0o777, 0, target);
    });
  }

  mknod(who: Identity, parent: number, name: string, mode: number, rdev: number): Promise<Attr> {
    if (this.snapshotDir.owns(parent)) return this.snapshotDir.refuse('mknod');
    if (this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuseName('mknod');
    return this.mutate(async () => {
      const type = mode & S_IFMT;
      if (type === S_IFCHR || type === S_IFBLK) {
        if (who.uid !== 0) throw new FsError('EPERM', 'mknod: only root may create device nodes');
      } else if (type === 0) {
        mode |= S_IFREG;
      } else if (type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK) {
        throw new FsError('EINVAL', `mknod: unsupported file type 0o${type.toString(8)}`);
      }
      return this.makeNode(who, parent, name, mode, type === S_IFCHR || type === S_IFBLK ? rdev : 0);
    });
  }

  mkdir(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    if (this.snapshotDir.owns(parent)) return this.snapshotDir.refuse('mkdir');
    if (this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuseName('mkdir');
    return this.mutate(() => this.makeNode(who, parent, name, S_IFDIR | (mode & 0o7777), 0));
  }

  create(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    if (this.snapshotDir.owns(parent)) return this.snapshotDir.refuse('create');
    if (this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuseName('create');
    return this.mutate(() => this.makeNode(who, parent, name, S_IFREG | (mode & 0o7777), 0));
  }

  unlink(who: Identity, parent: number, name: string): Promise<void> {
    if (this.snapshotDir.owns(parent) || this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuse('unlink');
    return this.mutate(async () => {
      validateName(name, 'unlink');
      const dir = await this.writableDir(who, parent, `unlink ${name}`);
      if (name === '.' || name === '..') throw new FsError('EISDIR', `unlink ${name}: is a directory`);
      const target = await this.childOf(dir, name);
      if (!target) throw new FsError('ENOENT', `unlink: ${name} not found`);
      if (target.isDir) throw new FsError('EISDIR', `unlink: ${name} is a directory`);
      requireStickyRight(who, dir, target, `unlink ${name}`);
      await this.inodes.dirRemove(dir, Buffer.from(name, 'utf8'));
      await this.inodes.dropLink(target);
    });
  }

  rmdir(who: Identity, parent: number, name: string): Promise<void> {
    if (this.snapshotDir.owns(parent) || this.snapshotDir.isEntry(parent, name)) return this.snapshotDir.refuse('rmdir');
    return this.mutate(async () => {
      validateName(name, 'rmdir');
      if (name === '.') throw new FsError('EINVAL', 'rmdir: cannot remove "."');
      if (name === '..') throw new FsError('ENOTEMPTY', 'rmdir: cannot remove ".."');
      const dir = await this.writableDir(who, parent, `rmdir ${name}`);
      const target = await this.childOf(dir, name);
      if (!target) throw new FsError('ENOENT', `rmdir: ${name} not found`);
      if (!target.isDir) throw new FsError('ENOTDIR', `rmdir: ${name} is not a directory`);
      requireStickyRight(who, dir, target, `rmdir ${name}`);
      if (!(await this.inodes.dirIsEmpty(target))) throw new FsError('ENOTEMPTY', `rmdir: ${name} is not empty`);
      await this.removeDir(dir, name, target);
    });
  }

  private async removeDir(dir: Inode, name: string, target: Inode): Promise<void> {
    await this.inodes.dirRemove(dir, Buffer.from(name, 'utf8'));
    dir.nlink--;
    this.inodes.markDirty(dir);
    target.nlink = 1; // the last name; dropLink takes "." with it
    await this.inodes.dropLink(target);
  }

  rename(who: Identity, parent: number, name: string, newParent: number, newName: string, flags: RenameFlags = {}): Promise<void> {
    const snaps = this.snapshotDir;
    if (snaps.owns(parent) || snaps.owns(newParent) || snaps.isEntry(parent, name)) return snaps.refuse('rename');
    if (snaps.isEntry(newParent, newName)) return snaps.refuseName('rename');
    return this.mutate(async () => {
      if (flags.noReplace && flags.exchange) throw new FsError('EINVAL', 'rename: NOREPLACE and EXCHANGE together');
      validateName(name, 'rename');
      validateName(newName, 'rename');
      for (const n of [name, newName]) {
        if (n === '.' || n === '..') throw new FsError('EBUSY', `rename: cannot rename ${n}`);
      }
      const from = await this.writableDir(who, parent, `rename ${name}`);
      const to = newParent === parent ? from : await this.writableDir(who, newParent, `rename to ${newName}`);
      const src = await this.childOf(from, name);
      if (!src) throw new FsError('ENOENT', `rename: ${name} not found`);
      requireStickyRight(who, from, src, `rename ${name}`);
      const dst = await this.childOf(to, newName);
      if (dst) requireStickyRight(who, to, dst, `rename over ${newName}`);
      if (flags.exchange && !dst) throw new FsError('ENOENT', `rename exchange: ${newName} not found`);
      if (flags.noReplace && dst) throw new FsError('EEXIST', `rename: ${newName} exists`);
      if (from === to && name === newName) return;
      if (dst && dst.ino === src.ino && !flags.exchange) return; // two names of one file: POSIX says do nothing
      if (src.isDir && from !== to) {
        await this.refuseMoveIntoItself(src, to);
        if (who.uid !== 0) requireAccess(who, src, W_OK, `rename ${name} (updates its "..")`);
      }
      const srcName = Buffer.from(name, 'utf8');
      const dstName = Buffer.from(newName, 'utf8');
      if (flags.exchange && dst) {
        if (dst.isDir && from !== to) {
          await this.refuseMoveIntoItself(dst, from);
          if (who.uid !== 0) requireAccess(who, dst, W_OK, `rename ${newName} (updates its "..")`);
        }
        await this.inodes.dirSet(from, srcName, { ino: dst.ino, type: dst.type });
        await this.inodes.dirSet(to, dstName, { ino: src.ino, type: src.type });
        if (from !== to) {
          this.reparent(src, from, to);
          this.reparent(dst, to, from);
        }
        this.inodes.touchCtime(src);
        this.inodes.touchCtime(dst);
        return;
      }
      if (dst) {
        if (src.isDir) {
          if (!dst.isDir) throw new FsError('ENOTDIR', `rename: ${newName} is not a directory`);
          if (!(await this.inodes.dirIsEmpty(dst))) throw new FsError('ENOTEMPTY', `rename: ${newName} is not empty`);
        } else if (dst.isDir) {
          throw new FsError('EISDIR', `rename: ${newName} is a directory`);
        }
      }
      // Replace the target entry first, then remove the source: one commit carries both.
      if (dst?.isDir) {
        to.nlink--;
        dst.nlink = 1;
        await this.inodes.dropLink(dst);
      } else if (dst) {
        await this.inodes.dropLink(dst);
      }
      await this.inodes.dirSet(to, dstName, { ino: src.ino, type: src.type });
      await this.inodes.dirRemove(from, srcName);
      if (from !== to) this.reparent(src, from, to);
      this.inodes.touchCtime(src);
    });
  }

  private reparent(child: Inode, from: Inode, to: Inode): void {
    if (!child.isDir) return;
    child.parent = to.ino;
    from.nlink--;
    to.nlink++;
    this.inodes.markDirty(from);
    this.inodes.markDirty(to);
    this.inodes.markDirty(child);
  }

  /** EINVAL if `dir` is `target` or one of its ancestors (a directory moved into itself). */
  private async refuseMoveIntoItself(dir: Inode, target: Inode): Promise<void> {
    let cur = target;
    for (let depth = 0; ; depth++) {
      if (cur.ino === dir.ino) throw new FsError('EINVAL', `rename: cannot move directory ${dir.ino} into itself`);
      if (cur.ino === ROOT_INO || depth > 100_000) return;
      cur = await this.inodes.get(cur.parent);
    }
  }

  link(who: Identity, ino: number, newParent: number, newName: string): Promise<Attr> {
    if (this.snapshotDir.owns(ino) || this.snapshotDir.owns(newParent)) return this.snapshotDir.refuse('link');
    if (this.snapshotDir.isEntry(newParent, newName)) return this.snapshotDir.refuseName('link');
    return this.mutate(async () => {
      validateName(newName, 'link');
      const src = await this.inodes.get(ino);
      if (src.isDir) throw new FsError('EPERM', 'link: hard links to directories are not allowed');
      if (src.nlink === 0) throw new FsError('ENOENT', `link: inode ${ino} was removed`);
      if (src.nlink >= 0xffffffff) throw new FsError('EMLINK', `link: inode ${ino} has too many links`);
      const dir = await this.writableDir(who, newParent, `link ${newName}`);
      const nameBytes = Buffer.from(newName, 'utf8');
      if (newName === '.' || newName === '..' || (await this.inodes.dirLookup(dir, nameBytes))) {
        throw new FsError('EEXIST', `link: ${newName} exists`);
      }
      src.nlink++;
      this.inodes.touchCtime(src);
      await this.inodes.dirSet(dir, nameBytes, { ino: src.ino, type: src.type });
      return this.attr(src);
    });
  }

  open(who: Identity, ino: number, flags: number): Promise<Attr> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.open(who, ino, flags);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      const acc = flags & O_ACCMODE;
      const mask = acc === O_RDONLY ? R_OK : acc === O_WRONLY ? W_OK : R_OK | W_OK;
      if (i.isDir && mask & W_OK) throw new FsError('EISDIR', `open: inode ${ino} is a directory`);
      requireAccess(who, i, mask, 'open');
      if (flags & O_TRUNC && i.isFile && mask & W_OK && i.size > 0) {
        this.volume.checkWritable();
        await this.inodes.truncate(i, 0);
      }
      i.opens++;
      return this.attr(i);
    }, (flags & O_TRUNC) !== 0);
  }

  async release(ino: number, wrote: boolean): Promise<void> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.release(ino);
    await this.op(async () => {
      const i = await this.inodes.get(ino);
      if (i.opens > 0) i.opens--;
      await this.inodes.maybeFree(i);
    }, true);
    if (wrote && this.syncOnClose) await this.fsync(ino, false);
  }

  async read(who: Identity, ino: number, offset: number, length: number): Promise<Uint8Array> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.read(who, ino, offset, length);
    const pieces = await this.readPieces(who, ino, offset, length);
    try {
      return await this.inodes.fetch(pieces);
    } catch (err) {
      throw this.fail(err);
    }
  }

  async readv(who: Identity, ino: number, offset: number, length: number): Promise<Borrowed> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.readv(who, ino, offset, length);
    const pieces = await this.readPieces(who, ino, offset, length);
    try {
      return await this.inodes.fetchv(pieces);
    } catch (err) {
      throw this.fail(err);
    }
  }

  private readPieces(who: Identity, ino: number, offset: number, length: number): Promise<ReadPiece[]> {
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      if (i.isDir) throw new FsError('EISDIR', `read: inode ${ino} is a directory`);
      if (!i.isFile) throw new FsError('EINVAL', `read: inode ${ino} is not a regular file`);
      if (offset < 0 || length < 0) throw new FsError('EINVAL', 'read: negative offset or length');
      if (i.opens === 0) requireAccess(who, i, R_OK, 'read');
      return this.inodes.readPieces(i, offset, length);
    });
  }

  async write(who: Identity, ino: number, offset: number, data: Uint8Array): Promise<number> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.refuse('write');
    // Bound memory before the write, so that a failure here fails a write that did not happen:
    // wait for data segment PUTs, and for a commit when the open commit segment is huge.
    try {
      await this.volume.writer.waitForCapacity();
    } catch (err) {
      throw this.fail(err);
    }
    const max = this.volume.opts.commitBytesMax;
    if (this.volume.writer.openCommitBytes >= 2 * max) await this.sync();
    const n = await this.mutate(async () => {
      const i = await this.inodes.get(ino);
      if (i.isDir) throw new FsError('EISDIR', `write: inode ${ino} is a directory`);
      if (!i.isFile) throw new FsError('EINVAL', `write: inode ${ino} is not a regular file`);
      if (!Number.isSafeInteger(offset) || offset < 0) throw new FsError('EINVAL', `write: bad offset ${offset}`);
      if (offset + data.length > FILE_SIZE_MAX) throw new FsError('EFBIG', 'write: beyond the largest file size');
      if (i.opens === 0) requireAccess(who, i, W_OK, 'write');
      await this.inodes.write(i, offset, data);
      return data.length;
    });
    // Commit early when the open commit segment is large.
    if (this.volume.writer.openCommitBytes >= max) this.sync().catch(() => {});
    return n;
  }

  async fsync(_ino: number, _dataOnly: boolean): Promise<void> {
    if (this.snapshotDir.owns(_ino)) return; // nothing to make durable in a snapshot
    await this.sync();
  }

  async sync(): Promise<void> {
    try {
      await this.volume.sync();
    } catch (err) {
      throw this.fail(err);
    }
  }

  readdir(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntry[]> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.readdir(who, ino, cookie, limit);
    return this.op(async () => {
      const d = await this.dir(ino);
      requireAccess(who, d, R_OK, 'readdir');
      const list = await this.inodes.dirList(d, d.parent, cookie, limit);
      const out = list.map((e) => ({ name: Buffer.from(e.name).toString('utf8'), ino: e.value.ino, type: e.value.type, cookie: e.cookie }));
      return ino === ROOT_INO ? this.snapshotDir.decorateRoot(cookie, limit, out, false) : out;
    });
  }

  readdirplus(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntryPlus[]> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.readdirplus(who, ino, cookie, limit);
    return this.op(async () => {
      const d = await this.dir(ino);
      requireAccess(who, d, R_OK, 'readdir');
      const list = await this.inodes.dirList(d, d.parent, cookie, limit);
      const out: DirEntryPlus[] = [];
      for (const e of list) {
        const child = await this.inodes.get(e.value.ino);
        out.push({
          name: Buffer.from(e.name).toString('utf8'),
          ino: e.value.ino,
          type: e.value.type,
          cookie: e.cookie,
          attr: this.attr(child),
        });
      }
      return ino === ROOT_INO ? this.snapshotDir.decorateRoot(cookie, limit, out, true) : out;
    });
  }

  async statfs(_who: Identity): Promise<StatFs> {
    const blockSize = 4096;
    const total = 2 ** 40; // 4 PiB of 4 KiB blocks: an object store has no fixed size
    let liveBytes = 0;
    await this.op(async () => {
      for await (const [, s] of this.volume.segments()) liveBytes += s.liveBytes;
    });
    const used = Math.ceil(liveBytes / blockSize);
    return {
      blockSize,
      blocks: total,
      blocksFree: total - used,
      blocksAvailable: total - used,
      files: 2 ** 40,
      filesFree: 2 ** 40 - this.volume.inodeCount,
      nameMax: NAME_MAX,
    };
  }

  getxattr(who: Identity, ino: number, name: string): Promise<Uint8Array> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.getxattr(who, ino, name);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      checkXattrName(name);
      this.xattrAccess(who, i, name, R_OK);
      const v = i.xattrs.get(name);
      if (!v) throw new FsError('ENODATA', `no xattr ${name} on inode ${ino}`);
      return v;
    });
  }

  setxattr(who: Identity, ino: number, name: string, value: Uint8Array, flags: XattrFlags = {}): Promise<void> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.refuse('setxattr');
    return this.mutate(async () => {
      const i = await this.inodes.get(ino);
      checkXattrName(name);
      if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', `xattr value of ${value.length} bytes exceeds ${XATTR_SIZE_MAX}`);
      this.xattrAccess(who, i, name, W_OK);
      const had = i.xattrs.get(name);
      if (flags.create && had) throw new FsError('EEXIST', `xattr ${name} exists`);
      if (flags.replace && !had) throw new FsError('ENODATA', `no xattr ${name} to replace`);
      let total = Buffer.byteLength(name) + value.length;
      for (const [k, v] of i.xattrs) if (k !== name) total += Buffer.byteLength(k) + v.length;
      if (total > XATTR_TOTAL_MAX) throw new FsError('ENOSPC', `xattrs of inode ${ino} would exceed ${XATTR_TOTAL_MAX} bytes`);
      i.xattrs.set(name, Uint8Array.from(value));
      this.inodes.touchCtime(i);
    });
  }

  listxattr(who: Identity, ino: number): Promise<string[]> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.listxattr(who, ino);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      return [...i.xattrs.keys()].filter((k) => !k.startsWith('trusted.') || who.uid === 0);
    });
  }

  removexattr(who: Identity, ino: number, name: string): Promise<void> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.refuse('removexattr');
    return this.mutate(async () => {
      const i = await this.inodes.get(ino);
      checkXattrName(name);
      this.xattrAccess(who, i, name, W_OK);
      if (!i.xattrs.delete(name)) throw new FsError('ENODATA', `no xattr ${name} on inode ${ino}`);
      this.inodes.touchCtime(i);
    });
  }

  /** Linux xattr namespace rules: user.* follows mode bits, trusted.* is root's, security.* writes need ownership. */
  private xattrAccess(who: Identity, i: Inode, name: string, mask: number): void {
    if (name.startsWith('user.')) {
      if (!i.isFile && !i.isDir) throw new FsError('EPERM', `user xattrs apply to files and directories only`);
      if (mask & W_OK && i.isDir && i.mode & 0o1000 && !isOwnerOrRoot(who, i)) {
        throw new FsError('EPERM', 'user xattrs on a sticky directory need ownership');
      }
      requireAccess(who, i, mask, `xattr ${name}`);
    } else if (name.startsWith('trusted.')) {
      if (who.uid !== 0) throw new FsError('EPERM', 'trusted xattrs are for root');
    } else if (name.startsWith('security.')) {
      if (mask & W_OK && !isOwnerOrRoot(who, i)) throw new FsError('EPERM', 'security xattrs need ownership');
    } else {
      throw new FsError('EOPNOTSUPP', `xattr namespace of ${name} is not supported`);
    }
  }

  access(who: Identity, ino: number, mask: number): Promise<void> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.access(who, ino, mask);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      if (mask & ~7) throw new FsError('EINVAL', `access: bad mask ${mask}`);
      requireAccess(who, i, mask, 'access');
    });
  }

  fallocate(who: Identity, ino: number, mode: number, offset: number, length: number): Promise<void> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.refuse('fallocate');
    return this.mutate(async () => {
      const i = await this.inodes.get(ino);
      if (!i.isFile) throw new FsError(i.isDir ? 'EISDIR' : 'EINVAL', 'fallocate: not a regular file');
      if (offset < 0 || length <= 0) throw new FsError('EINVAL', 'fallocate: bad range');
      if (offset + length > FILE_SIZE_MAX) throw new FsError('EFBIG', 'fallocate: beyond the largest file size');
      if (i.opens === 0) requireAccess(who, i, W_OK, 'fallocate');
      if (mode === 0 || mode === FALLOC_FL_KEEP_SIZE) {
        // An object store has no blocks to reserve; the size grows as asked.
        if (mode === 0 && offset + length > i.size) await this.inodes.truncate(i, offset + length);
        return;
      }
      if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        await this.inodes.punchHole(i, offset, length);
        return;
      }
      throw new FsError('EOPNOTSUPP', `fallocate mode 0x${mode.toString(16)} is not supported`);
    });
  }

  /**
   * Append each source's content to the regular file `ino` by moving its extents (no data is
   * copied), then remove the source's name: as if each were appended with write(2), truncated to
   * zero and unlinked, all in one atomic step (one commit carries all of it). Rules: the target
   * needs write permission; each source is a regular file with one link, readable by the caller,
   * whose name the caller may unlink (write+search on its directory, the sticky rule), distinct
   * from the target and the other sources. A handle still open on a source sees it empty.
   * Every check runs before anything changes, so an errno failure leaves all as it was.
   */
  coalesce(who: Identity, ino: number, sources: readonly CoalesceSource[]): Promise<Attr> {
    const snaps = this.snapshotDir;
    if (snaps.owns(ino) || sources.some((s) => snaps.owns(s.parent) || snaps.isEntry(s.parent, s.name))) return snaps.refuse('coalesce');
    return this.mutate(async () => {
      const dst = await this.inodes.get(ino);
      if (!dst.isFile) throw new FsError(dst.isDir ? 'EISDIR' : 'EINVAL', `coalesce: inode ${ino} is not a regular file`);
      if (dst.nlink === 0) throw new FsError('ENOENT', `coalesce: inode ${ino} was removed`);
      requireAccess(who, dst, W_OK, 'coalesce');
      const picked: Array<{ dir: Inode; name: string; src: Inode }> = [];
      const seen = new Set<number>([dst.ino]);
      let end = dst.size;
      for (const s of sources) {
        validateName(s.name, 'coalesce');
        if (s.name === '.' || s.name === '..') throw new FsError('EISDIR', `coalesce: ${s.name} is a directory`);
        const dir = await this.writableDir(who, s.parent, `coalesce ${s.name}`);
        const src = await this.childOf(dir, s.name);
        if (!src) throw new FsError('ENOENT', `coalesce: ${s.name} not found in directory ${s.parent}`);
        if (s.ino !== undefined && src.ino !== s.ino) throw new FsError('ESTALE', `coalesce: ${s.name} is no longer inode ${s.ino}`);
        if (!src.isFile) throw new FsError(src.isDir ? 'EISDIR' : 'EINVAL', `coalesce: ${s.name} is not a regular file`);
        if (seen.has(src.ino)) throw new FsError('EINVAL', `coalesce: inode ${src.ino} named twice (or is the target)`);
        if (src.nlink !== 1) throw new FsError('EMLINK', `coalesce: ${s.name} has ${src.nlink} links; its other names would lose its data`);
        requireAccess(who, src, R_OK, `coalesce ${s.name}`);
        requireStickyRight(who, dir, src, `coalesce ${s.name}`);
        seen.add(src.ino);
        end += src.size;
        if (end > FILE_SIZE_MAX) throw new FsError('EFBIG', 'coalesce: beyond the largest file size');
        picked.push({ dir, name: s.name, src });
      }
      for (const p of picked) {
        await this.inodes.moveExtents(dst, p.src, dst.size);
        await this.inodes.dirRemove(p.dir, Buffer.from(p.name, 'utf8'));
        await this.inodes.dropLink(p.src);
      }
      return this.attr(dst);
    });
  }

  lseek(_who: Identity, ino: number, offset: number, whence: number): Promise<number> {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.lseek(_who, ino, offset, whence);
    return this.op(async () => {
      const i = await this.inodes.get(ino);
      if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError('EINVAL', `lseek: unsupported whence ${whence}`);
      if (!i.isFile) throw new FsError('EINVAL', 'lseek: not a regular file');
      if (offset < 0) throw new FsError('ENXIO', 'lseek: negative offset');
      return this.inodes.seek(i, offset, whence === SEEK_DATA);
    });
  }

  pin(ino: number): void {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.pin(ino);
    this.volume.lock
      .run(async () => this.inodes.pin(await this.inodes.get(ino)))
      .catch((err: unknown) => this.log.warn('pin failed', { ino, err: String(err) }));
  }

  unpin(ino: number): void {
    if (this.snapshotDir.owns(ino)) return this.snapshotDir.unpin(ino);
    this.volume.lock
      .run(async () => this.inodes.unpin(await this.inodes.get(ino)))
      .catch((err: unknown) => this.log.warn('unpin failed', { ino, err: String(err) }));
  }

  /** Resolve a slash-separated path from the root (RPC, object API, tools). */
  async lookupPath(who: Identity, path: string): Promise<Attr> {
    if (Buffer.byteLength(path) >= PATH_MAX) throw new FsError('ENAMETOOLONG', 'path exceeds PATH_MAX');
    let cur = await this.getattr(who, ROOT_INO);
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue;
      cur = await this.lookup(who, cur.ino, part);
    }
    return cur;
  }
}

function validateName(name: string, what: string): void {
  if (name.length === 0) throw new FsError('ENOENT', `${what}: empty name`);
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX) {
    throw new FsError('ENAMETOOLONG', `${what}: name of ${Buffer.byteLength(name, 'utf8')} bytes exceeds NAME_MAX (${NAME_MAX})`);
  }
  if (name.includes('/') || name.includes('\0')) throw new FsError('EINVAL', `${what}: name contains '/' or NUL`);
}

function checkXattrName(name: string): void {
  const n = Buffer.byteLength(name, 'utf8');
  if (n === 0) throw new FsError('EINVAL', 'empty xattr name');
  if (n > XATTR_NAME_MAX) throw new FsError('ERANGE', `xattr name of ${n} bytes exceeds ${XATTR_NAME_MAX}`);
}

export interface OpenFileSystemOptions {
  store: ObjectStore;
  syncOnClose?: boolean;
  logger?: Logger;
  inode?: Partial<InodeLayerOptions>;
  /** Background gc interval (default 60 s; 0 disables). */
  gcIntervalMs?: number;
  /** Open this snapshot read-only instead of the newest commit. */
  snapshot?: string;
  /** List `/.snapshot` in readdir of the root (default: hidden, reachable by name). */
  snapshotDirVisible?: boolean;
  volume?: string;
  /** Create the volume if it does not exist. */
  create?: boolean;
  flushIntervalMs?: number;
  volumeOptions?: Partial<VolumeOptions>;
}

/** mkfs: create a volume with an empty root directory (EEXIST if it exists). */
export async function mkfs(store: ObjectStore, name = 'default', opts: Partial<VolumeOptions> = {}): Promise<Volume> {
  return Volume.create(store, name, opts, (v) => Inodes.mkfs(v));
}

/** Open (or with `create`, make) a volume and return its file system, flusher running. */
export async function openFileSystem(o: OpenFileSystemOptions): Promise<SiltFileSystem> {
  const name = o.volume ?? 'default';
  const logger = o.logger ?? nullLogger;
  const volOpts: Partial<VolumeOptions> = { logger, ...o.volumeOptions };
  let volume: Volume;
  try {
    volume =
      o.snapshot !== undefined
        ? await Volume.openSnapshot(o.store, name, o.snapshot, volOpts)
        : await Volume.open(o.store, name, volOpts);
  } catch (err) {
    if (!(o.create && err instanceof FsError && err.errno === 'ENOENT')) throw err;
    volume = await mkfs(o.store, name, volOpts);
  }
  const inodeOpts: Partial<InodeLayerOptions> = { ...o.inode };
  if (o.flushIntervalMs !== undefined) inodeOpts.flushIntervalMs = o.flushIntervalMs;
  return new SiltFileSystem(volume, {
    syncOnClose: o.syncOnClose ?? false,
    logger,
    inode: inodeOpts,
    ...(o.gcIntervalMs !== undefined ? { gcIntervalMs: o.gcIntervalMs } : {}),
    ...(o.snapshotDirVisible !== undefined ? { snapshotDirVisible: o.snapshotDirVisible } : {}),
  });
}

export { ROOT as rootIdentity };
