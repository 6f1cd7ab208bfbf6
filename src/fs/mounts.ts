/**
 * The mount table (the seed's `getMount`): `mountId` -> volume, file system and identity.
 *
 * A front end that serves several clients (the RPC server) mounts a volume once per client and
 * names the mount by a small integer. The table remembers, per mount, which inodes the mount
 * pinned and opened, so that a mount that goes away (RpcUnmount, a dropped connection) gives
 * back exactly its own pins and opens and never anyone else's: an unlinked file some client
 * still holds stays alive until that client lets go or disappears.
 *
 * Invariants:
 * - mountIds are positive safe integers, never reused within a table.
 * - A mount's pin and open counts equal the pins/opens it made on `fs` minus those it gave back;
 *   `unmount` gives back the rest, once.
 * - `get` of an unknown (or unmounted) id rejects with ESTALE, so a caller can tell "my mount
 *   is gone" from every other error and mount again.
 */
import { FsError } from '../util/index.ts';
import { SiltFileSystem } from './filesystem.ts';
import { ROOT_INODE, type FileSystem, type Identity } from './types.ts';

/** A snapshot as front ends show it. */
export interface SnapshotInfo {
  name: string;
  /** The commit it retains. */
  commit: number;
  createdMs: number;
}

/** Snapshot administration of a mounted volume (absent where the file system has none). */
export interface SnapshotAdmin {
  /** Durable when it resolves. EEXIST, EINVAL (name), ENOSPC (too many), EROFS. */
  create(name: string): Promise<SnapshotInfo>;
  /** Durable when it resolves. ENOENT. */
  delete(name: string): Promise<void>;
  list(): SnapshotInfo[];
}

function snapshotAdmin(fs: FileSystem): SnapshotAdmin | undefined {
  if (!(fs instanceof SiltFileSystem)) return undefined;
  const v = fs.volume;
  const info = (s: { name: string; seq: number; createdMs: number }): SnapshotInfo => ({ name: s.name, commit: s.seq, createdMs: s.createdMs });
  return {
    create: async (name) => info(await v.createSnapshot(name)),
    delete: (name) => v.deleteSnapshot(name),
    list: () => v.snapshots.map(info),
  };
}

export interface Mount {
  readonly id: number;
  readonly volume: string;
  readonly fs: FileSystem;
  /** Who this mount acts as unless a call says otherwise (see `effectiveIdentity`). */
  readonly identity: Identity;
  readonly rootInode: number;
  /** inode -> pins this mount holds. */
  readonly pins: Map<number, number>;
  /** inode -> opens this mount holds. */
  readonly opens: Map<number, number>;
  /** Snapshots of the volume, where the file system supports them. */
  readonly snapshots: SnapshotAdmin | undefined;
}

export interface MountTableOptions {
  /** Most mounts at once (all clients together); further mounts get EMLINK. */
  mountsMax?: number;
}

export class MountTable {
  private readonly volumes = new Map<string, FileSystem>();
  private readonly mounts = new Map<number, Mount>();
  private nextId = 1;
  private readonly mountsMax: number;

  constructor(volumes: Iterable<[string, FileSystem]>, opts: MountTableOptions = {}) {
    for (const [name, fs] of volumes) this.volumes.set(name, fs);
    this.mountsMax = opts.mountsMax ?? 65536;
  }

  /** Names of the volumes this table can mount. */
  get volumeNames(): string[] {
    return [...this.volumes.keys()];
  }

  get size(): number {
    return this.mounts.size;
  }

  /** Mount `volume` as `identity`. ENOENT for a volume this server does not serve. */
  mount(volume: string, identity: Identity): Mount {
    const fs = this.volumes.get(volume);
    if (!fs) throw new FsError('ENOENT', `volume '${volume}' is not served here (serving: ${this.volumeNames.join(', ')})`);
    if (this.mounts.size >= this.mountsMax) throw new FsError('EMLINK', `too many mounts (${this.mountsMax})`);
    const id = this.nextId++;
    const m: Mount = {
      id,
      volume,
      fs,
      identity: { uid: identity.uid, gid: identity.gid, groups: [...identity.groups] },
      rootInode: ROOT_INODE,
      pins: new Map(),
      opens: new Map(),
      snapshots: snapshotAdmin(fs),
    };
    this.mounts.set(id, m);
    return m;
  }

  /** The seed's getMount: the mount named by `mountId`, or ESTALE. */
  get(mountId: number): Mount {
    const m = this.mounts.get(mountId);
    if (!m) throw new FsError('ESTALE', `unknown mountId ${mountId} (unmounted, or mounted on another connection or server)`);
    return m;
  }

  has(mountId: number): boolean {
    return this.mounts.has(mountId);
  }

  /** Pin `ino` on behalf of the mount (checks that the inode exists first). */
  async pin(m: Mount, ino: number): Promise<void> {
    await m.fs.getattr(m.identity, ino);
    m.fs.pin(ino);
    m.pins.set(ino, (m.pins.get(ino) ?? 0) + 1);
  }

  /** Drop `count` of the mount's pins of `ino` (never more than it holds). */
  unpin(m: Mount, ino: number, count = 1): void {
    const held = m.pins.get(ino) ?? 0;
    const n = Math.min(held, count);
    for (let k = 0; k < n; k++) m.fs.unpin(ino);
    if (held - n > 0) m.pins.set(ino, held - n);
    else m.pins.delete(ino);
  }

  /** open(2) on behalf of the mount; counted so that unmount can close it. */
  async open(m: Mount, who: Identity, ino: number, flags: number): ReturnType<FileSystem['open']> {
    const attr = await m.fs.open(who, ino, flags);
    m.opens.set(ino, (m.opens.get(ino) ?? 0) + 1);
    return attr;
  }

  /** The matching close; EBADF if this mount holds no open of `ino`. */
  async release(m: Mount, ino: number, wrote: boolean): Promise<void> {
    const held = m.opens.get(ino) ?? 0;
    if (held === 0) throw new FsError('EBADF', `release: this mount has no open of inode ${ino}`);
    if (held > 1) m.opens.set(ino, held - 1);
    else m.opens.delete(ino);
    await m.fs.release(ino, wrote);
  }

  /** Remove the mount and give back its pins and opens. Unknown ids are a no-op. */
  async unmount(mountId: number): Promise<void> {
    const m = this.mounts.get(mountId);
    if (!m) return;
    this.mounts.delete(mountId);
    const opens = [...m.opens];
    m.opens.clear();
    for (const [ino, n] of opens) {
      for (let k = 0; k < n; k++) await m.fs.release(ino, false).catch(() => {});
    }
    for (const [ino, n] of [...m.pins]) this.unpin(m, ino, n);
  }

  /** Unmount everything (server shutdown). */
  async unmountAll(): Promise<void> {
    for (const id of [...this.mounts.keys()]) await this.unmount(id);
  }
}

/**
 * The identity a call runs as. A mount made as root (a trusted agent such as a FUSE or Samba
 * front end acting for its own users) may name any caller; any other mount may only act as
 * itself, so a `caller` that differs from the mount's identity is EPERM.
 */
export function effectiveIdentity(m: Mount, caller?: { uid: number; gid: number; groups?: readonly number[] }): Identity {
  if (!caller) return m.identity;
  const { uid, gid } = caller;
  const groups = caller.groups ?? (uid === m.identity.uid ? m.identity.groups : []);
  if (m.identity.uid === 0) return { uid, gid, groups: [...groups] };
  const mine = (g: number): boolean => g === m.identity.gid || m.identity.groups.includes(g);
  if (uid !== m.identity.uid || !mine(gid) || !groups.every(mine)) {
    throw new FsError('EPERM', `mount ${m.id} (uid ${m.identity.uid}) may not act as uid ${uid} gid ${gid}`);
  }
  return { uid, gid, groups: [...groups] };
}
