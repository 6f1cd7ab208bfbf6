/**
 * DEVELOPMENT DOUBLE — NOT THE ENGINE. A throwaway in-memory FileSystem used to bring up the FUSE
 * layer before the real engine (src/fs/index.ts) existed, and by FUSE unit tests that need a
 * FileSystem without a store. Committed e2e tests must run against openFileSystem(), never this.
 * Simplifications: no durability (fsync/sync are no-ops), no sparse tracking (lseek treats every
 * byte below EOF as data), coarse permission checks.
 */
import { FsError } from '../../src/util/errors.ts';
import { owned, type Borrowed } from '../../src/util/borrowed.ts';
import {
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SEEK_DATA,
  SEEK_HOLE,
  type Attr,
  type DirEntry,
  type DirEntryPlus,
  type FileSystem,
  type Identity,
  type RenameFlags,
  type SetAttrChanges,
  type StatFs,
  type XattrFlags,
} from '../../src/fs/types.ts';

interface Node {
  attr: Attr;
  data: Buffer;
  size: number;
  target: string | undefined;
  entries: Map<string, { ino: number; cookie: bigint }> | undefined;
  nextCookie: bigint;
  parent: number;
  xattrs: Map<string, Uint8Array>;
  pins: number;
  opens: number;
}

function now(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export class DevFs implements FileSystem {
  private readonly nodes = new Map<number, Node>();
  private nextIno = 2;
  readonly syncOnClose = false;

  constructor() {
    this.nodes.set(1, this.newNode(1, S_IFDIR | 0o755, 0, 0, 1));
    this.nodes.get(1)!.attr.nlink = 2;
  }

  private newNode(ino: number, mode: number, uid: number, gid: number, parent: number): Node {
    const t = now();
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      attr: { ino, mode, nlink: dir ? 2 : 1, uid, gid, rdev: 0, size: 0, blocks: 0, atimeNs: t, mtimeNs: t, ctimeNs: t, crtimeNs: t, generation: 1 },
      data: Buffer.alloc(0),
      size: 0,
      target: undefined,
      entries: dir ? new Map() : undefined,
      nextCookie: 3n,
      parent,
      xattrs: new Map(),
      pins: 0,
      opens: 0,
    };
  }

  private node(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError('ESTALE', `no inode ${ino}`);
    return n;
  }
  private dir(ino: number): Node & { entries: Map<string, { ino: number; cookie: bigint }> } {
    const n = this.node(ino);
    if (!n.entries) throw new FsError('ENOTDIR');
    return n as Node & { entries: Map<string, { ino: number; cookie: bigint }> };
  }
  private snap(n: Node): Attr {
    return { ...n.attr, size: n.size, blocks: Math.ceil(n.size / 512) };
  }
  private touch(n: Node, m = true): void {
    const t = now();
    if (m) n.attr.mtimeNs = t;
    n.attr.ctimeNs = t;
    n.attr.generation++;
  }
  private can(who: Identity, n: Node, mask: number): boolean {
    if (who.uid === 0) return mask & 1 ? (n.attr.mode & 0o111) !== 0 || (n.attr.mode & S_IFMT) === S_IFDIR : true;
    const m = n.attr.mode;
    let bits: number;
    if (who.uid === n.attr.uid) bits = (m >> 6) & 7;
    else if (who.gid === n.attr.gid || who.groups.includes(n.attr.gid)) bits = (m >> 3) & 7;
    else bits = m & 7;
    return (bits & mask) === mask;
  }
  private check(who: Identity, n: Node, mask: number): void {
    if (!this.can(who, n, mask)) throw new FsError('EACCES');
  }
  private checkName(name: string): void {
    if (name.length === 0 || name === '.' || name === '..' || name.includes('/')) throw new FsError('EINVAL');
    if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG');
  }
  private maybeFree(ino: number): void {
    const n = this.nodes.get(ino);
    if (n && n.attr.nlink === 0 && n.pins === 0 && n.opens === 0) this.nodes.delete(ino);
  }

  async lookup(who: Identity, parent: number, name: string): Promise<Attr> {
    const d = this.dir(parent);
    this.check(who, d, 1);
    const e = d.entries.get(name);
    if (!e) throw new FsError('ENOENT');
    return this.snap(this.node(e.ino));
  }
  async getattr(_who: Identity, ino: number): Promise<Attr> {
    return this.snap(this.node(ino));
  }
  async setattr(who: Identity, ino: number, c: SetAttrChanges): Promise<Attr> {
    const n = this.node(ino);
    if (c.mode !== undefined) {
      if (who.uid !== 0 && who.uid !== n.attr.uid) throw new FsError('EPERM');
      n.attr.mode = (n.attr.mode & S_IFMT) | (c.mode & 0o7777);
    }
    if (c.uid !== undefined || c.gid !== undefined) {
      if (who.uid !== 0 && (c.uid !== undefined && c.uid !== n.attr.uid)) throw new FsError('EPERM');
      if (c.uid !== undefined) n.attr.uid = c.uid;
      if (c.gid !== undefined) n.attr.gid = c.gid;
    }
    if (c.size !== undefined) {
      if ((n.attr.mode & S_IFMT) === S_IFDIR) throw new FsError('EISDIR');
      this.resize(n, c.size);
      n.size = c.size;
      this.touch(n);
    }
    if (c.atimeNs !== undefined) n.attr.atimeNs = c.atimeNs === 'now' ? now() : c.atimeNs;
    if (c.mtimeNs !== undefined) n.attr.mtimeNs = c.mtimeNs === 'now' ? now() : c.mtimeNs;
    n.attr.ctimeNs = c.ctimeNs ?? now();
    n.attr.generation++;
    return this.snap(n);
  }
  private resize(n: Node, size: number): void {
    if (size > n.data.length) {
      const b = Buffer.alloc(Math.max(size, n.data.length * 2));
      n.data.copy(b, 0, 0, n.size);
      n.data = b;
    } else if (size < n.size) {
      n.data.fill(0, size, n.size);
    }
  }
  async readlink(_who: Identity, ino: number): Promise<string> {
    const n = this.node(ino);
    if (n.target === undefined) throw new FsError('EINVAL');
    return n.target;
  }
  private add(who: Identity, parent: number, name: string, mode: number): Node {
    this.checkName(name);
    const d = this.dir(parent);
    this.check(who, d, 3);
    if (d.entries.has(name)) throw new FsError('EEXIST');
    const ino = this.nextIno++;
    const gid = d.attr.mode & 0o2000 ? d.attr.gid : who.gid;
    const n = this.newNode(ino, mode, who.uid, gid, parent);
    this.nodes.set(ino, n);
    d.entries.set(name, { ino, cookie: d.nextCookie++ });
    if ((mode & S_IFMT) === S_IFDIR) d.attr.nlink++;
    this.touch(d);
    return n;
  }
  async symlink(who: Identity, parent: number, name: string, target: string): Promise<Attr> {
    const n = this.add(who, parent, name, S_IFLNK | 0o777);
    n.target = target;
    n.size = Buffer.byteLength(target);
    return this.snap(n);
  }
  async mknod(who: Identity, parent: number, name: string, mode: number, rdev: number): Promise<Attr> {
    const n = this.add(who, parent, name, mode);
    n.attr.rdev = rdev;
    return this.snap(n);
  }
  async mkdir(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    return this.snap(this.add(who, parent, name, S_IFDIR | (mode & 0o7777)));
  }
  async create(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
    return this.snap(this.add(who, parent, name, S_IFREG | (mode & 0o7777)));
  }
  private remove(who: Identity, parent: number, name: string, wantDir: boolean): void {
    const d = this.dir(parent);
    this.check(who, d, 3);
    const e = d.entries.get(name);
    if (!e) throw new FsError('ENOENT');
    const n = this.node(e.ino);
    const isDir = (n.attr.mode & S_IFMT) === S_IFDIR;
    if (wantDir && !isDir) throw new FsError('ENOTDIR');
    if (!wantDir && isDir) throw new FsError('EISDIR');
    if (isDir && n.entries!.size > 0) throw new FsError('ENOTEMPTY');
    if (d.attr.mode & 0o1000 && who.uid !== 0 && who.uid !== n.attr.uid && who.uid !== d.attr.uid) throw new FsError('EPERM');
    d.entries.delete(name);
    if (isDir) {
      d.attr.nlink--;
      n.attr.nlink = 0;
    } else n.attr.nlink--;
    this.touch(d);
    n.attr.ctimeNs = now();
    this.maybeFree(e.ino);
  }
  async unlink(who: Identity, parent: number, name: string): Promise<void> {
    this.remove(who, parent, name, false);
  }
  async rmdir(who: Identity, parent: number, name: string): Promise<void> {
    this.remove(who, parent, name, true);
  }
  async rename(who: Identity, parent: number, name: string, newParent: number, newName: string, flags?: RenameFlags): Promise<void> {
    this.checkName(newName);
    const d = this.dir(parent);
    const nd = this.dir(newParent);
    this.check(who, d, 3);
    this.check(who, nd, 3);
    const e = d.entries.get(name);
    if (!e) throw new FsError('ENOENT');
    const t = nd.entries.get(newName);
    const src = this.node(e.ino);
    const srcDir = (src.attr.mode & S_IFMT) === S_IFDIR;
    // No moving a directory into itself.
    for (let p = newParent; srcDir; ) {
      if (p === e.ino) throw new FsError('EINVAL');
      if (p === 1) break;
      p = this.node(p).parent;
    }
    if (flags?.exchange) {
      if (!t) throw new FsError('ENOENT');
      d.entries.set(name, { ino: t.ino, cookie: e.cookie });
      nd.entries.set(newName, { ino: e.ino, cookie: t.cookie });
      this.node(t.ino).parent = parent;
      src.parent = newParent;
      this.touch(d);
      this.touch(nd);
      return;
    }
    if (t) {
      if (flags?.noReplace) throw new FsError('EEXIST');
      if (t.ino === e.ino) return;
      const tn = this.node(t.ino);
      const tDir = (tn.attr.mode & S_IFMT) === S_IFDIR;
      if (srcDir && !tDir) throw new FsError('ENOTDIR');
      if (!srcDir && tDir) throw new FsError('EISDIR');
      if (tDir && tn.entries!.size > 0) throw new FsError('ENOTEMPTY');
      nd.entries.delete(newName);
      if (tDir) {
        nd.attr.nlink--;
        tn.attr.nlink = 0;
      } else tn.attr.nlink--;
      this.maybeFree(t.ino);
    }
    d.entries.delete(name);
    nd.entries.set(newName, { ino: e.ino, cookie: nd.nextCookie++ });
    if (srcDir && parent !== newParent) {
      d.attr.nlink--;
      nd.attr.nlink++;
    }
    src.parent = newParent;
    src.attr.ctimeNs = now();
    this.touch(d);
    this.touch(nd);
  }
  async link(who: Identity, ino: number, newParent: number, newName: string): Promise<Attr> {
    this.checkName(newName);
    const n = this.node(ino);
    if ((n.attr.mode & S_IFMT) === S_IFDIR) throw new FsError('EPERM');
    const nd = this.dir(newParent);
    this.check(who, nd, 3);
    if (nd.entries.has(newName)) throw new FsError('EEXIST');
    nd.entries.set(newName, { ino, cookie: nd.nextCookie++ });
    n.attr.nlink++;
    n.attr.ctimeNs = now();
    this.touch(nd);
    return this.snap(n);
  }
  async open(who: Identity, ino: number, flags: number): Promise<Attr> {
    const n = this.node(ino);
    const acc = flags & O_ACCMODE;
    const isDir = (n.attr.mode & S_IFMT) === S_IFDIR;
    if (isDir && acc !== O_RDONLY) throw new FsError('EISDIR');
    this.check(who, n, acc === O_RDONLY ? 4 : acc === 1 ? 2 : 6);
    if (flags & O_TRUNC && !isDir && acc !== O_RDONLY) {
      this.resize(n, 0);
      n.size = 0;
      this.touch(n);
    }
    n.opens++;
    return this.snap(n);
  }
  async release(ino: number): Promise<void> {
    const n = this.nodes.get(ino);
    if (!n) return;
    n.opens = Math.max(0, n.opens - 1);
    this.maybeFree(ino);
  }
  async read(_who: Identity, ino: number, offset: number, length: number): Promise<Uint8Array> {
    const n = this.node(ino);
    if ((n.attr.mode & S_IFMT) === S_IFDIR) throw new FsError('EISDIR');
    if (offset >= n.size) return new Uint8Array(0);
    return Uint8Array.from(n.data.subarray(offset, Math.min(n.size, offset + length)));
  }
  async readv(who: Identity, ino: number, offset: number, length: number): Promise<Borrowed> {
    return owned([await this.read(who, ino, offset, length)]);
  }
  async write(_who: Identity, ino: number, offset: number, data: Uint8Array): Promise<number> {
    const n = this.node(ino);
    const end = offset + data.length;
    if (end > n.data.length) this.resize(n, end);
    n.data.set(data, offset);
    if (end > n.size) n.size = end;
    this.touch(n);
    return data.length;
  }
  async fsync(): Promise<void> {}
  async sync(): Promise<void> {}
  async readdir(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntry[]> {
    const d = this.dir(ino);
    this.check(who, d, 4);
    const out: DirEntry[] = [];
    if (cookie < 1n) out.push({ name: '.', ino, type: S_IFDIR, cookie: 1n });
    if (cookie < 2n) out.push({ name: '..', ino: d.parent, type: S_IFDIR, cookie: 2n });
    for (const [name, e] of d.entries) {
      if (out.length >= limit) break;
      if (e.cookie <= cookie) continue;
      const n = this.nodes.get(e.ino);
      if (n) out.push({ name, ino: e.ino, type: n.attr.mode & S_IFMT, cookie: e.cookie });
    }
    out.sort((a, b) => (a.cookie < b.cookie ? -1 : 1));
    return out.slice(0, limit);
  }
  async readdirplus(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntryPlus[]> {
    return (await this.readdir(who, ino, cookie, limit)).map((e) => ({ ...e, attr: this.snap(this.node(e.ino)) }));
  }
  async statfs(): Promise<StatFs> {
    return { blockSize: 4096, blocks: 1 << 24, blocksFree: 1 << 23, blocksAvailable: 1 << 23, files: 1 << 20, filesFree: (1 << 20) - this.nodes.size, nameMax: 255 };
  }
  async getxattr(_who: Identity, ino: number, name: string): Promise<Uint8Array> {
    const v = this.node(ino).xattrs.get(name);
    if (!v) throw new FsError('ENODATA');
    return v;
  }
  async setxattr(_who: Identity, ino: number, name: string, value: Uint8Array, flags?: XattrFlags): Promise<void> {
    const n = this.node(ino);
    if (flags?.create && n.xattrs.has(name)) throw new FsError('EEXIST');
    if (flags?.replace && !n.xattrs.has(name)) throw new FsError('ENODATA');
    n.xattrs.set(name, Uint8Array.from(value));
    n.attr.ctimeNs = now();
  }
  async listxattr(_who: Identity, ino: number): Promise<string[]> {
    return [...this.node(ino).xattrs.keys()];
  }
  async removexattr(_who: Identity, ino: number, name: string): Promise<void> {
    if (!this.node(ino).xattrs.delete(name)) throw new FsError('ENODATA');
  }
  async access(who: Identity, ino: number, mask: number): Promise<void> {
    this.check(who, this.node(ino), mask);
  }
  async fallocate(_who: Identity, ino: number, mode: number, offset: number, length: number): Promise<void> {
    const n = this.node(ino);
    if (mode & 2) {
      const end = Math.min(n.size, offset + length);
      if (end > offset) n.data.fill(0, offset, end);
      this.touch(n);
      return;
    }
    if (!(mode & 1) && offset + length > n.size) {
      this.resize(n, offset + length);
      n.size = offset + length;
      this.touch(n);
    }
  }
  async lseek(_who: Identity, ino: number, offset: number, whence: number): Promise<number> {
    const n = this.node(ino);
    if (offset >= n.size) throw new FsError('ENXIO');
    if (whence === SEEK_DATA) return offset;
    if (whence === SEEK_HOLE) return n.size;
    throw new FsError('EINVAL');
  }
  pin(ino: number): void {
    const n = this.nodes.get(ino);
    if (n) n.pins++;
  }
  unpin(ino: number): void {
    const n = this.nodes.get(ino);
    if (!n) return;
    n.pins = Math.max(0, n.pins - 1);
    this.maybeFree(ino);
  }
  async close(): Promise<void> {}
  get inodeCount(): number {
    return this.nodes.size;
  }
}
