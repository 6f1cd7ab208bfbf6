/**
 * fuse: the kernel FUSE protocol over /dev/fuse, serving an `fs` FileSystem. No native code.
 *
 * Layout (as go-fuse splits fuse/ from fs/): wire.ts (structs, opcodes), session.ts (read loop,
 * INIT, dispatch, interrupts, forget, notify), raw.ts (the decoded operation interface), bridge.ts
 * (raw operations -> FileSystem, lookup counts, handles, locks, identity), mount.ts (mount(8) and
 * umount(8) helpers), errors.ts (the one errno mapping).
 *
 * Invariants:
 * - Node id == inode number; node 1 is the root. A node is pinned in the FileSystem exactly while
 *   the kernel holds lookup references to it (sum of entries handed out minus FORGETs > 0), and is
 *   unpinned when the connection ends.
 * - fs.open once per OPEN/CREATE handle, fs.release exactly once per handle (at its first FLUSH,
 *   else at RELEASE, else when the connection ends), with `wrote` = that handle wrote.
 * - FSYNC, FSYNCDIR and SYNCFS return only after fs.fsync / fs.sync, i.e. after a durable commit.
 * - Every request gets exactly one reply (none for FORGET, BATCH_FORGET, INTERRUPT). A thrown
 *   FsError becomes -errno; an interrupt of a waiting lock becomes -EINTR; anything else becomes
 *   -EIO with a log line. Nothing a request does can crash the server.
 * - The serving process never blocks its event loop on anything that may touch the mount: all child
 *   processes are spawned asynchronously, and /dev/fuse is read in worker threads.
 * - Kernel caches: names and attributes for entryTimeoutMs/attrTimeoutMs (default 1 s), file data
 *   kept across opens (FOPEN_KEEP_CACHE + AUTO_INVAL_DATA). Whoever changes the FileSystem behind
 *   the kernel's back (another front end in this process) calls invalidateInode/invalidateEntry.
 */
import { closeSync } from 'node:fs';
import type { FileSystem } from '../fs/index.ts';
import { LockTable } from '../fs/index.ts';
import type { Logger } from '../util/index.ts';
import { FsBridge } from './bridge.ts';
import { cleanStaleMount, findMount, mountFuse, setReadAhead, unmountFuse, type MountOptions } from './mount.ts';
import { FuseSession, type ConnectionInfo } from './session.ts';

export { FsBridge, killSuidgid, type BridgeOptions, type Notifier } from './bridge.ts';
export { FuseSession, WANTED_INIT_FLAGS, type ConnectionInfo, type SessionOptions } from './session.ts';
export type { FuseRequest, RawFileSystem } from './raw.ts';
export {
  abortConnection,
  cleanStaleMount,
  findMount,
  listMounts,
  mountFuse,
  probeMount,
  setReadAhead,
  statWithTimeout,
  unmountFuse,
  type MountInfo,
  type MountOptions,
} from './mount.ts';
export { GroupCache, parseGroups } from './identity.ts';
export { errnoFor, Interrupted } from './errors.ts';
export { Op, Init, opName } from './wire.ts';

export interface ServeOptions extends MountOptions {
  logger: Logger;
  /** Default 1000 ms each. */
  entryTimeoutMs?: number;
  attrTimeoutMs?: number;
  negativeTimeoutMs?: number;
  /** Tell the bridge the engine commits on close (for writes after a handle's first close). */
  syncOnClose?: boolean;
  /** Largest WRITE (bytes). Default 1 MiB (max_pages 256). */
  maxWriteBytes?: number;
  /** 0: read /dev/fuse on the event loop (default); N: N blocking reader threads (session.ts). */
  readers?: number;
  /** Kernel read-ahead for the mount, KiB. Default 1024 (so READs arrive as 1 MiB). 0 leaves it. */
  readAheadKib?: number;
  /** Log every request at debug level. */
  trace?: boolean;
  locks?: LockTable;
}

export interface FuseServer {
  readonly mountpoint: string;
  readonly session: FuseSession;
  readonly bridge: FsBridge;
  readonly connection: ConnectionInfo;
  /** Resolves once the connection ended (any unmount) and all handles were released. */
  readonly closed: Promise<void>;
  /** umount (lazy if `lazy`); resolves after `closed`. Throws when busy and not lazy. */
  unmount(opts?: { lazy?: boolean }): Promise<void>;
  invalidateInode(ino: number, offset?: number, length?: number): Promise<void>;
  invalidateEntry(parent: number, name: string): Promise<void>;
  notifyDelete(parent: number, child: number, name: string): Promise<void>;
}

/**
 * Mount `fs` at `mountpoint` and serve it until unmounted. A stale mount (killed server) at the
 * mountpoint is cleaned first; a live one is an error.
 */
export async function serveFuse(fs: FileSystem, mountpoint: string, opts: ServeOptions): Promise<FuseServer> {
  const stale = await cleanStaleMount(mountpoint);
  if (stale === 'live') throw new Error(`${mountpoint} is already mounted`);
  if (stale === 'cleaned') opts.logger.warn('cleaned a stale FUSE mount', { mountpoint });
  const bridge = new FsBridge(fs, {
    logger: opts.logger,
    ...(opts.entryTimeoutMs !== undefined && { entryTimeoutMs: opts.entryTimeoutMs }),
    ...(opts.attrTimeoutMs !== undefined && { attrTimeoutMs: opts.attrTimeoutMs }),
    ...(opts.negativeTimeoutMs !== undefined && { negativeTimeoutMs: opts.negativeTimeoutMs }),
    ...(opts.syncOnClose !== undefined && { syncOnClose: opts.syncOnClose }),
    ...(opts.locks !== undefined && { locks: opts.locks }),
  });
  const fd = await mountFuse(mountpoint, opts);
  const session = new FuseSession(fd, bridge, {
    logger: opts.logger,
    ...(opts.maxWriteBytes !== undefined && { maxWriteBytes: opts.maxWriteBytes }),
    ...(opts.readers !== undefined && { readers: opts.readers }),
    ...(opts.trace !== undefined && { trace: opts.trace }),
  });
  bridge.notifier = session;
  // Readers start after mount(2) returned; the kernel queues INIT until one reads it.
  session.start();
  let connection: ConnectionInfo;
  try {
    connection = await session.initialized;
  } catch (e) {
    await unmountFuse(mountpoint, { lazy: true }).catch(() => {});
    throw e;
  }
  const ra = opts.readAheadKib ?? 1024;
  if (ra > 0 && !setReadAhead(mountpoint, ra)) opts.logger.debug('could not raise read-ahead', { mountpoint });
  const closed = session.closed.then(() => {
    if (session.ownsDevice) return; // closed by the session's event-loop reader
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  });
  return {
    mountpoint,
    session,
    bridge,
    connection,
    closed,
    async unmount(o?: { lazy?: boolean }): Promise<void> {
      if (findMount(mountpoint)) {
        const r = await unmountFuse(mountpoint, o);
        if (!r.ok) throw new Error(`umount ${mountpoint}: ${r.message}`);
      }
      await closed;
    },
    invalidateInode: (ino, offset, length) => session.invalidateInode(ino, offset, length),
    invalidateEntry: (parent, name) => session.invalidateEntry(parent, name),
    notifyDelete: (parent, child, name) => session.notifyDelete(parent, child, name),
  };
}
