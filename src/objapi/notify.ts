/**
 * Read-after-write from the object API to a FUSE mount of the same volume in the same process.
 * The kernel caches names, attributes and pages of a mount for a while (the bridge's timeouts);
 * a change made through the object API goes around the kernel, so without a notice a `cat` on
 * the mount right after a PUT could still see the old file. Every mutation the API makes through
 * the file system is followed by the matching notice: the entry (parent, name) for namespace
 * changes, the inode for content and attribute changes. Notices are sent after the change and
 * never waited for: they only shorten how long the kernel may serve the old state.
 */
import type { Attr, CoalesceSource, FileSystem, Identity, RenameFlags, SetAttrChanges, XattrFlags } from '../fs/index.ts';
import type { Logger } from '../util/index.ts';

/** What a FUSE server offers (FuseServer has these methods). */
export interface ChangeSink {
  invalidateEntry(parent: number, name: string): Promise<void>;
  invalidateInode(ino: number, offset?: number, length?: number): Promise<void>;
}

/** A FileSystem that tells the current sink (if any) about every change made through it. */
export function notifying(fs: FileSystem, sink: () => ChangeSink | undefined, log: Logger): FileSystem {
  const quiet = (p: Promise<void> | undefined): void =>
    void p?.catch((err: unknown) => log.debug('objapi: cache notice failed', { err: String(err) }));
  const entry = (parent: number, name: string): void => quiet(sink()?.invalidateEntry(parent, name));
  const inode = (ino: number): void => quiet(sink()?.invalidateInode(ino, 0, 0));
  const over: Partial<FileSystem> = {
    async create(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
      const a = await fs.create(who, parent, name, mode);
      entry(parent, name);
      return a;
    },
    async mkdir(who: Identity, parent: number, name: string, mode: number): Promise<Attr> {
      const a = await fs.mkdir(who, parent, name, mode);
      entry(parent, name);
      return a;
    },
    async unlink(who: Identity, parent: number, name: string): Promise<void> {
      await fs.unlink(who, parent, name);
      entry(parent, name);
    },
    async rmdir(who: Identity, parent: number, name: string): Promise<void> {
      await fs.rmdir(who, parent, name);
      entry(parent, name);
    },
    async rename(who: Identity, parent: number, name: string, newParent: number, newName: string, flags?: RenameFlags): Promise<void> {
      await fs.rename(who, parent, name, newParent, newName, flags);
      entry(parent, name);
      entry(newParent, newName);
    },
    async write(who: Identity, ino: number, offset: number, data: Uint8Array): Promise<number> {
      const n = await fs.write(who, ino, offset, data);
      inode(ino);
      return n;
    },
    async setattr(who: Identity, ino: number, changes: SetAttrChanges): Promise<Attr> {
      const a = await fs.setattr(who, ino, changes);
      inode(ino);
      return a;
    },
    async setxattr(who: Identity, ino: number, name: string, value: Uint8Array, flags?: XattrFlags): Promise<void> {
      await fs.setxattr(who, ino, name, value, flags);
      inode(ino);
    },
    async removexattr(who: Identity, ino: number, name: string): Promise<void> {
      await fs.removexattr(who, ino, name);
      inode(ino);
    },
  };
  if (fs.coalesce) {
    const coalesce = fs.coalesce.bind(fs);
    over.coalesce = async (who: Identity, ino: number, sources: readonly CoalesceSource[]): Promise<Attr> => {
      const a = await coalesce(who, ino, sources);
      inode(ino);
      for (const s of sources) entry(s.parent, s.name);
      return a;
    };
  }
  return new Proxy(fs, {
    get(target, prop) {
      if (Object.hasOwn(over, prop)) return over[prop as keyof FileSystem];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
