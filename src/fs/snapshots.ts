/**
 * `/.snapshot`: every snapshot of the volume, read-only, inside the live file system, so that
 * FUSE, RPC and the object API see it without knowing about snapshots.
 *
 * The root directory has a virtual entry `.snapshot` (hidden from readdir unless the file system
 * was opened with `snapshotDirVisible`, but always found by lookup, like ZFS's `snapdir=hidden`).
 * It lists one directory per snapshot; under each is that snapshot's tree as of the commit it
 * retains, served by a read-only view (its own Volume opened at that commit).
 *
 * Inode numbers: live inodes are nonces far below 2^52. Everything here lives above it:
 *   2^52                      the `.snapshot` directory
 *   2^52 + slot * 2^40 + ino  inode `ino` of the snapshot in `slot` (1..4095)
 * so a snapshot's inodes never collide with live ones or with another snapshot's. Slots are
 * handed out as snapshots are first seen and are stable for the life of this file system (a FUSE
 * mount or a server process); a deleted snapshot's slot is reused only after it was let go.
 *
 * Rules: anything that would write under `.snapshot` fails with EROFS (writes, create, unlink,
 * rename, link, setattr, xattr changes, open for writing, access(W_OK)); creating a real entry
 * named `.snapshot` at the root (create, mkdir, mknod, symlink, link, rename onto it) fails with
 * EEXIST, because the name exists; removing or renaming `/.snapshot` fails with EROFS.
 * A snapshot deleted while it is being browsed answers ESTALE from then on.
 */
import type { SnapshotRef, Volume } from '../headhunter/index.ts';
import { FsError, S_IFDIR, assert, type Borrowed } from '../util/index.ts';
import {
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  ROOT_INODE,
  W_OK,
  type Attr,
  type DirEntry,
  type DirEntryPlus,
  type FileSystem,
  type Identity,
} from './types.ts';

export const SNAPSHOT_DIR_NAME = '.snapshot';
/** The `.snapshot` directory's inode; everything at or above it belongs to snapshots. */
export const SNAPSHOT_DIR_INO = 2 ** 52;
const SLOT_SPAN = 2 ** 40;
const SLOTS_MAX = 4095;
/** The cookie of the `.snapshot` entry when it is listed in the root (above every name cookie). */
const VISIBLE_ENTRY_COOKIE = 1n << 53n;

/** A read-only file system over one snapshot (a SiltFileSystem opened on a snapshot volume). */
export interface SnapshotView extends FileSystem {
  close(): Promise<void>;
}

/** Open a read-only view of the named snapshot. */
export type OpenSnapshotView = (name: string) => Promise<SnapshotView>;

interface Slot {
  slot: number;
  ref: SnapshotRef;
  view: Promise<SnapshotView> | undefined;
}

function erofs(what: string): FsError {
  return new FsError('EROFS', `${what}: snapshots under /${SNAPSHOT_DIR_NAME} are read-only`);
}

export class SnapshotDirectory {
  private readonly slots = new Map<number, Slot>();
  private readonly byName = new Map<string, Slot>();
  private readonly openedMs = Date.now();

  constructor(
    private readonly volume: Volume,
    private readonly openView: OpenSnapshotView,
    /** The live root's attributes (for `..` of `.snapshot`). */
    private readonly liveRoot: (who: Identity) => Promise<Attr>,
    readonly visible: boolean,
  ) {}

  /** False on a file system that is itself a snapshot view: no `.snapshot` inside a snapshot. */
  get enabled(): boolean {
    return this.volume.readOnlySnapshot === undefined;
  }

  /** The inode belongs to `.snapshot` or a snapshot's tree. */
  owns(ino: number): boolean {
    return ino >= SNAPSHOT_DIR_INO;
  }

  /** `(parent, name)` names the virtual `/.snapshot` entry. */
  isEntry(parent: number, name: string): boolean {
    return parent === ROOT_INODE && name === SNAPSHOT_DIR_NAME && this.enabled;
  }

  refuse(what: string): Promise<never> {
    return Promise.reject(erofs(what));
  }

  /** A real entry named `.snapshot` at the root cannot be made: the name is taken. */
  refuseName(what: string): Promise<never> {
    return Promise.reject(new FsError('EEXIST', `${what}: /${SNAPSHOT_DIR_NAME} is reserved for snapshots`));
  }

  // ------------------------------------------------------------------ slots and views

  /** Bring slots in line with the volume's snapshot list; returns the current ones by slot. */
  private refresh(): Slot[] {
    const current = this.volume.snapshots;
    const names = new Set(current.map((s) => s.name));
    for (const s of [...this.byName.values()]) {
      const now = current.find((r) => r.name === s.ref.name);
      if (!names.has(s.ref.name) || now?.seq !== s.ref.seq) this.drop(s);
    }
    for (const ref of current) {
      if (this.byName.has(ref.name)) continue;
      let slot = 1;
      while (this.slots.has(slot)) slot++;
      if (slot > SLOTS_MAX) throw new FsError('ENOSPC', `more than ${SLOTS_MAX} snapshots seen by this mount`);
      const s: Slot = { slot, ref, view: undefined };
      this.slots.set(slot, s);
      this.byName.set(ref.name, s);
    }
    return [...this.byName.values()].sort((a, b) => a.slot - b.slot);
  }

  private drop(s: Slot): void {
    this.slots.delete(s.slot);
    if (this.byName.get(s.ref.name) === s) this.byName.delete(s.ref.name);
    const v = s.view;
    if (v) void v.then((fs) => fs.close()).catch(() => {});
  }

  /** The view and inner inode behind an outer inode (not the `.snapshot` directory itself). */
  private async resolve(ino: number): Promise<{ s: Slot; fs: SnapshotView; inner: number }> {
    assert(ino > SNAPSHOT_DIR_INO && Number.isSafeInteger(ino), `inode ${ino} is not in a snapshot`);
    const slot = Math.floor((ino - SNAPSHOT_DIR_INO) / SLOT_SPAN);
    const inner = ino - SNAPSHOT_DIR_INO - slot * SLOT_SPAN;
    this.refresh();
    const s = this.slots.get(slot);
    if (!s || inner === 0) throw new FsError('ESTALE', `inode ${ino}: that snapshot no longer exists`);
    if (!s.view) {
      s.view = this.openView(s.ref.name);
      s.view.catch(() => {
        if (this.slots.get(slot) === s) s.view = undefined; // try again at the next access
      });
    }
    return { s, fs: await s.view, inner };
  }

  private outer(s: Slot, inner: number): number {
    if (inner >= SLOT_SPAN) throw new FsError('EOVERFLOW', `snapshot ${s.ref.name}: inode ${inner} does not fit the snapshot inode space`);
    return SNAPSHOT_DIR_INO + s.slot * SLOT_SPAN + inner;
  }

  private mapAttr(s: Slot, a: Attr): Attr {
    return { ...a, ino: this.outer(s, a.ino) };
  }

  private dirAttr(): Attr {
    const snaps = this.refresh();
    const newest = snaps.reduce((m, s) => Math.max(m, s.ref.createdMs), this.openedMs);
    const t = BigInt(newest) * 1_000_000n;
    return {
      ino: SNAPSHOT_DIR_INO,
      mode: S_IFDIR | 0o555,
      nlink: 2 + snaps.length,
      uid: 0,
      gid: 0,
      rdev: 0,
      size: snaps.length,
      blocks: 0,
      atimeNs: t,
      mtimeNs: t,
      ctimeNs: t,
      crtimeNs: BigInt(this.openedMs) * 1_000_000n,
      generation: snaps.length,
    };
  }

  // ------------------------------------------------------------------ reads

  async lookup(who: Identity, parent: number, name: string): Promise<Attr> {
    if (parent === ROOT_INODE) return this.dirAttr(); // the `.snapshot` entry itself
    if (parent === SNAPSHOT_DIR_INO) {
      if (name === '.') return this.dirAttr();
      if (name === '..') return this.liveRoot(who);
      const s = this.refresh().find((x) => x.ref.name === name);
      if (!s) throw new FsError('ENOENT', `no snapshot ${name} in /${SNAPSHOT_DIR_NAME}`);
      const { fs } = await this.resolve(this.outer(s, ROOT_INODE));
      return this.mapAttr(s, await fs.getattr(who, ROOT_INODE));
    }
    const { s, fs, inner } = await this.resolve(parent);
    if (inner === ROOT_INODE && name === '..') return this.dirAttr();
    return this.mapAttr(s, await fs.lookup(who, inner, name));
  }

  async getattr(who: Identity, ino: number): Promise<Attr> {
    if (ino === SNAPSHOT_DIR_INO) return this.dirAttr();
    const { s, fs, inner } = await this.resolve(ino);
    return this.mapAttr(s, await fs.getattr(who, inner));
  }

  async readlink(who: Identity, ino: number): Promise<string> {
    if (ino === SNAPSHOT_DIR_INO) throw new FsError('EINVAL', `/${SNAPSHOT_DIR_NAME} is not a symlink`);
    const { fs, inner } = await this.resolve(ino);
    return fs.readlink(who, inner);
  }

  async open(who: Identity, ino: number, flags: number): Promise<Attr> {
    if ((flags & O_ACCMODE) !== O_RDONLY || flags & O_TRUNC) throw erofs('open for writing');
    if (ino === SNAPSHOT_DIR_INO) return this.dirAttr();
    const { s, fs, inner } = await this.resolve(ino);
    return this.mapAttr(s, await fs.open(who, inner, flags));
  }

  async release(ino: number): Promise<void> {
    if (ino === SNAPSHOT_DIR_INO) return;
    const r = await this.resolve(ino).catch(() => undefined); // a deleted snapshot has nothing to release
    if (r) await r.fs.release(r.inner, false);
  }

  async read(who: Identity, ino: number, offset: number, length: number): Promise<Uint8Array> {
    if (ino === SNAPSHOT_DIR_INO) throw new FsError('EISDIR', `/${SNAPSHOT_DIR_NAME} is a directory`);
    const { fs, inner } = await this.resolve(ino);
    return fs.read(who, inner, offset, length);
  }

  async readv(who: Identity, ino: number, offset: number, length: number): Promise<Borrowed> {
    if (ino === SNAPSHOT_DIR_INO) throw new FsError('EISDIR', `/${SNAPSHOT_DIR_NAME} is a directory`);
    const { fs, inner } = await this.resolve(ino);
    return fs.readv(who, inner, offset, length);
  }

  async readdir(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntry[]> {
    if (ino === SNAPSHOT_DIR_INO) return (await this.listSnapshotDir(who, cookie, limit, false)).map(({ attr: _a, ...e }) => e);
    const { s, fs, inner } = await this.resolve(ino);
    return (await fs.readdir(who, inner, cookie, limit)).map((e) => this.mapEntry(s, inner, e));
  }

  async readdirplus(who: Identity, ino: number, cookie: bigint, limit: number): Promise<DirEntryPlus[]> {
    if (ino === SNAPSHOT_DIR_INO) return this.listSnapshotDir(who, cookie, limit, true);
    const { s, fs, inner } = await this.resolve(ino);
    const out: DirEntryPlus[] = [];
    for (const e of await fs.readdirplus(who, inner, cookie, limit)) {
      const m = this.mapEntry(s, inner, e);
      out.push({ ...m, attr: m.ino === SNAPSHOT_DIR_INO ? this.dirAttr() : this.mapAttr(s, e.attr) });
    }
    return out;
  }

  private mapEntry<E extends DirEntry>(s: Slot, dirInner: number, e: E): E {
    const up = dirInner === ROOT_INODE && e.name === '..';
    return { ...e, ino: up ? SNAPSHOT_DIR_INO : this.outer(s, e.ino) };
  }

  /** `.`, `..`, then one directory per snapshot; cookie = slot + 3 (stable while it exists). */
  private async listSnapshotDir(who: Identity, cookie: bigint, limit: number, plus: boolean): Promise<DirEntryPlus[]> {
    const out: DirEntryPlus[] = [];
    const dir = this.dirAttr();
    if (cookie < 1n && out.length < limit) out.push({ name: '.', ino: SNAPSHOT_DIR_INO, type: S_IFDIR, cookie: 1n, attr: dir });
    if (cookie < 2n && out.length < limit) {
      const root = await this.liveRoot(who);
      out.push({ name: '..', ino: root.ino, type: S_IFDIR, cookie: 2n, attr: root });
    }
    for (const s of this.refresh()) {
      if (out.length >= limit) break;
      const c = BigInt(s.slot) + 3n;
      if (c <= cookie) continue;
      const ino = this.outer(s, ROOT_INODE);
      // Only readdirplus opens the snapshot (for its root's attributes); plain readdir stays cheap.
      const attr = plus ? await this.getattr(who, ino) : dir;
      out.push({ name: s.ref.name, ino, type: S_IFDIR, cookie: c, attr });
    }
    return out;
  }

  /**
   * The live root's listing, plus the `.snapshot` entry at its end when configured visible. The
   * entry's cookie is above every name cookie, so a listing resumed after it ends.
   */
  decorateRoot<E extends DirEntry>(cookie: bigint, limit: number, entries: E[], plus: boolean): E[] {
    if (!this.visible || !this.enabled || cookie >= VISIBLE_ENTRY_COOKIE || entries.length >= limit) return entries;
    const attr = this.dirAttr();
    const e: DirEntry = { name: SNAPSHOT_DIR_NAME, ino: SNAPSHOT_DIR_INO, type: S_IFDIR, cookie: VISIBLE_ENTRY_COOKIE };
    return [...entries, (plus ? { ...e, attr } : e) as E];
  }

  async getxattr(who: Identity, ino: number, name: string): Promise<Uint8Array> {
    if (ino === SNAPSHOT_DIR_INO) throw new FsError('ENODATA', `no xattr ${name} on /${SNAPSHOT_DIR_NAME}`);
    const { fs, inner } = await this.resolve(ino);
    return fs.getxattr(who, inner, name);
  }

  async listxattr(who: Identity, ino: number): Promise<string[]> {
    if (ino === SNAPSHOT_DIR_INO) return [];
    const { fs, inner } = await this.resolve(ino);
    return fs.listxattr(who, inner);
  }

  async access(who: Identity, ino: number, mask: number): Promise<void> {
    if (mask & W_OK) throw erofs('access for writing');
    if (ino === SNAPSHOT_DIR_INO) return;
    const { fs, inner } = await this.resolve(ino);
    return fs.access(who, inner, mask);
  }

  async lseek(who: Identity, ino: number, offset: number, whence: number): Promise<number> {
    if (ino === SNAPSHOT_DIR_INO) throw new FsError('EINVAL', 'lseek: not a regular file');
    const { fs, inner } = await this.resolve(ino);
    return fs.lseek(who, inner, offset, whence);
  }

  pin(ino: number): void {
    if (ino === SNAPSHOT_DIR_INO) return;
    this.resolve(ino).then(
      (r) => r.fs.pin(r.inner),
      () => {},
    );
  }

  unpin(ino: number): void {
    if (ino === SNAPSHOT_DIR_INO) return;
    this.resolve(ino).then(
      (r) => r.fs.unpin(r.inner),
      () => {},
    );
  }

  /** Close every open view (the live file system is closing). */
  async close(): Promise<void> {
    const views = [...this.slots.values()].map((s) => s.view).filter((v): v is Promise<SnapshotView> => v !== undefined);
    this.slots.clear();
    this.byName.clear();
    await Promise.all(views.map(async (v) => (await v.catch(() => undefined))?.close()));
  }
}
